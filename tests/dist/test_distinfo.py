"""A wheel's .dist-info is held to its filename before anything signs or publishes it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from fromsource.bounded import DEFAULT_LIMITS, OutputLimits
from fromsource.dist.distinfo import (
    WheelFields,
    check_wheel,
    check_wheel_file,
    find_dist_info,
    parse_wheel_file,
    read_record,
)
from fromsource.errors import InvalidDistributionError, OversizedError
from tests.factories import declared_zip64, make_wheel

WHEEL = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _wheel(folder: Path, filename: str, members: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _meta(name: str, version: str = "1.0") -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode()


def _refused(path: Path, category: str, limits: OutputLimits = DEFAULT_LIMITS) -> str:
    with pytest.raises(InvalidDistributionError) as info:
        check_wheel(path, limits)
    assert info.value.facts["category"] == category, info.value.message
    return info.value.message


def test_an_honest_wheel_passes(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "Demo.Pkg", "1.0", requires_python=">=3.8")
    info = check_wheel(wheel)
    assert info.folder == "Demo_Pkg-1.0.dist-info" and info.name == "Demo.Pkg"
    assert info.requires_python == ">=3.8" and info.root_is_purelib
    assert {str(t) for t in info.tags} == {"py3-none-any"}
    # A compressed tag set in the filename is the set of WHEEL's Tag lines.
    two = make_wheel(tmp_path / "two", "two", "1.0", tag="py2.py3-none-any")
    with zipfile.ZipFile(two) as archive:
        text = archive.read("two-1.0.dist-info/WHEEL").decode()
    assert "Tag: py2.py3-none-any" in text  # the factory writes it compressed ...
    assert (
        check_wheel_file(
            two.name,
            "two-1.0.dist-info",
            b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py2-none-any\nTag: py3-none-any\n",
        )[1]
        == check_wheel(two).tags
    )  # ... and expanded lines are the same set


def test_a_dist_info_folder_of_another_project_is_refused(tmp_path: Path) -> None:
    # Issue 18: filename and METADATA are honest, only the folder names another project.
    wheel = _wheel(
        tmp_path,
        "other-1.0-py3-none-any.whl",
        {
            "other/__init__.py": b"",
            "honest-1.0.dist-info/METADATA": _meta("other"),
            "honest-1.0.dist-info/WHEEL": WHEEL,
        },
    )
    message = _refused(wheel, "wheel-mismatch")
    assert "'honest-1.0.dist-info'" in message and "other 1.0" in message


@pytest.mark.parametrize(
    "folder", ["other-2.0.dist-info", "other.dist-info", "other-x.y.dist-info", "oth-1.0.dist-info"]
)
def test_a_folder_with_another_version_or_no_version_is_refused(
    tmp_path: Path, folder: str
) -> None:
    wheel = _wheel(
        tmp_path,
        "other-1.0-py3-none-any.whl",
        {f"{folder}/METADATA": _meta("other"), f"{folder}/WHEEL": WHEEL},
    )
    assert repr(folder) in _refused(wheel, "wheel-mismatch")


def test_the_folder_name_is_compared_normalized(tmp_path: Path) -> None:
    wheel = _wheel(
        tmp_path,
        "zope_interface-5.0.0-py3-none-any.whl",
        {
            "zope.interface-5.0.dist-info/METADATA": _meta("zope.interface", "5.0.0"),
            "zope.interface-5.0.dist-info/WHEEL": WHEEL,
        },
    )
    assert check_wheel(wheel).folder == "zope.interface-5.0.dist-info"


def test_exactly_one_dist_info_and_a_matching_data_folder(tmp_path: Path) -> None:
    two = _wheel(
        tmp_path / "a",
        "other-1.0-py3-none-any.whl",
        {
            "other-1.0.dist-info/METADATA": _meta("other"),
            "other-1.0.dist-info/WHEEL": WHEEL,
            "honest-1.0.dist-info/METADATA": _meta("honest"),
        },
    )
    assert "exactly one top-level .dist-info" in _refused(two, "invalid-wheel")
    with pytest.raises(InvalidDistributionError, match="found none"):
        find_dist_info("x-1.0-py3-none-any.whl", ["x/__init__.py", "x/y.dist-info/METADATA"])
    data = _wheel(
        tmp_path / "b",
        "other-1.0-py3-none-any.whl",
        {
            "other-1.0.dist-info/METADATA": _meta("other"),
            "other-1.0.dist-info/WHEEL": WHEEL,
            "honest-1.0.data/purelib/honest.py": b"",
        },
    )
    assert "'honest-1.0.data'" in _refused(data, "wheel-mismatch")


@pytest.mark.parametrize(
    ("wheel_file", "expected"),
    [
        (None, "WHEEL is missing"),
        (b"Wheel-Version: 2.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n", "not 1.x"),
        (b"Generator: x\nRoot-Is-Purelib: true\nTag: py3-none-any\n", "'(none)', not 1.x"),
        (b"Wheel-Version: 1.0\nRoot-Is-Purelib: yes\nTag: py3-none-any\n", "not true or false"),
        (b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: cp311-cp311-linux_x86_64\n", "tags"),
        (b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\n", "(none)"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_the_wheel_file_must_agree_with_the_filename(
    tmp_path: Path, wheel_file: bytes | None, expected: str
) -> None:
    members = {"other-1.0.dist-info/METADATA": _meta("other")}
    if wheel_file is not None:
        members["other-1.0.dist-info/WHEEL"] = wheel_file
    wheel = _wheel(tmp_path, "other-1.0-py3-none-any.whl", members)
    assert expected in _refused(wheel, "invalid-wheel")


def test_metadata_must_name_the_release(tmp_path: Path) -> None:
    liar = _wheel(
        tmp_path / "a",
        "other-1.0-py3-none-any.whl",
        {"other-1.0.dist-info/METADATA": _meta("honest"), "other-1.0.dist-info/WHEEL": WHEEL},
    )
    assert "METADATA says honest 1.0" in _refused(liar, "wheel-mismatch")
    nameless = _wheel(
        tmp_path / "b",
        "other-1.0-py3-none-any.whl",
        {"other-1.0.dist-info/METADATA": b"Version: 1.0\n", "other-1.0.dist-info/WHEEL": WHEEL},
    )
    assert "lacks Name or Version" in _refused(nameless, "invalid-wheel")
    # Installers differ on which of two Names wins: such a wheel names no one release.
    twice = _wheel(
        tmp_path / "c",
        "other-1.0-py3-none-any.whl",
        {
            "other-1.0.dist-info/METADATA": b"Name: other\nName: honest\nVersion: 1.0\n",
            "other-1.0.dist-info/WHEEL": WHEEL,
        },
    )
    message = _refused(twice, "invalid-wheel")
    assert "Name is given 2 times with different values ['other', 'honest']" in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (WHEEL, WheelFields("1.0", "true", ("py3-none-any",))),
        (
            b"Wheel-Version: 1.0\r\nRoot-Is-Purelib:false \r\n"
            + b"Tag: cp311-cp311-manylinux_2_17_x86_64\r\n"
            + b"Tag:  cp311-cp311-manylinux2014_x86_64 \r\n",
            WheelFields(
                "1.0",
                "false",
                ("cp311-cp311-manylinux_2_17_x86_64", "cp311-cp311-manylinux2014_x86_64"),
            ),
        ),
        (b"Generator: x\n", WheelFields(None, None, ())),
        (b"Wheel-Version: 1.\xff\n\nTag: py3-none-any\n", WheelFields("1.\ufffd", None, ())),
        (b"", WheelFields(None, None, ())),
    ],
)
def test_the_wheel_file_is_read_as_written(raw: bytes, expected: WheelFields) -> None:
    assert parse_wheel_file(raw) == expected


@pytest.mark.parametrize("member", ["METADATA", "WHEEL", "entry_points.txt", "RECORD"])
def test_a_bomb_in_any_small_file_is_refused_over_its_cap(tmp_path: Path, member: str) -> None:
    members = {
        "other-1.0.dist-info/METADATA": _meta("other"),
        "other-1.0.dist-info/WHEEL": WHEEL,
        "other-1.0.dist-info/RECORD": b"",
        "other-1.0.dist-info/entry_points.txt": b"[console_scripts]\n",
    }
    members[f"other-1.0.dist-info/{member}"] += b"\n" + b" " * (2 << 20)
    wheel = _wheel(tmp_path, "other-1.0-py3-none-any.whl", members)
    small = OutputLimits(
        metadata_bytes=1 << 20,
        wheel_file_bytes=1 << 20,
        entry_points_bytes=1 << 20,
        record_bytes=1 << 20,
    )
    with pytest.raises(OversizedError) as info:
        check_wheel(wheel, small) if member != "RECORD" else read_record(wheel, small)
    assert info.value.facts["category"] == "oversized-output"
    assert f"other-1.0.dist-info/{member}" in info.value.message
    if member == "RECORD":
        check_wheel(wheel, small)  # RECORD is read where it is used, not by the check


def test_a_wheel_declaring_a_billion_members_is_refused_before_its_directory_is_read(
    tmp_path: Path,
) -> None:
    path = declared_zip64(tmp_path / "bomb-1.0-py3-none-any.whl", 10**9, 1000)
    with pytest.raises(OversizedError, match="declares 1000000000 members"):
        check_wheel(path)
