"""Tests for fromsource.build.normalize: reproducible wheels from messy ones."""

from __future__ import annotations

import hashlib
import stat
import zipfile
from pathlib import Path

import pytest

from fromsource.bounded import OutputLimits
from fromsource.build.normalize import normalize_wheel
from fromsource.dist.distinfo import read_record
from fromsource.dist.record import RecordEntry
from fromsource.errors import InvalidDistributionError, OversizedError

NAME = "demo-1.0-py3-none-any.whl"
DIST_INFO = "demo-1.0.dist-info"
EPOCH = 1_620_000_000  # 2021-05-03T00:00:00Z

FILES: dict[str, tuple[bytes, int]] = {
    "demo/__init__.py": (b"VALUE = 1\n" * 50, 0o644),
    "demo/tool.sh": (b"#!/bin/sh\necho hi\n", 0o744),
    "demo/data/blob.bin": (bytes(range(256)) * 8, 0o600),
    "demo-1.0.data/scripts/run": (b"#!python\nprint(1)\n", 0o775),
    f"{DIST_INFO}/METADATA": (b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n", 0o644),
    f"{DIST_INFO}/WHEEL": (
        b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        0o644,
    ),
}


def make_wheel(
    folder: Path,
    *,
    order: list[str],
    date_time: tuple[int, int, int, int, int, int],
    compression: int,
    record: bytes = b"garbage,,\n",
    extra: dict[str, bytes] | None = None,
    dirs: bool = False,
) -> Path:
    """A wheel holding FILES in *order*, with the given timestamps and compression."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / NAME
    with zipfile.ZipFile(path, "w") as archive:
        archive.comment = b"built by a messy backend"
        if dirs:
            archive.writestr(zipfile.ZipInfo("demo/", date_time), b"")
        for name in order:
            data, mode = FILES[name]
            info = zipfile.ZipInfo(name, date_time)
            info.compress_type = compression
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.extra = b""
            archive.writestr(info, data)
        for name, data in (extra or {}).items():
            archive.writestr(zipfile.ZipInfo(name, date_time), data)
        archive.writestr(zipfile.ZipInfo(f"{DIST_INFO}/RECORD", date_time), record)
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_two_messy_builds_normalize_to_the_same_bytes(tmp_path: Path) -> None:
    first = make_wheel(
        tmp_path / "a",
        order=list(FILES),
        date_time=(2024, 1, 2, 3, 4, 6),
        compression=zipfile.ZIP_STORED,
        dirs=True,
    )
    second = make_wheel(
        tmp_path / "b",
        order=sorted(FILES, reverse=True),
        date_time=(1999, 12, 31, 23, 59, 58),
        compression=zipfile.ZIP_DEFLATED,
        record=b"",
    )
    out_a = normalize_wheel(first, tmp_path / "out-a", epoch=EPOCH)
    out_b = normalize_wheel(second, tmp_path / "out-b", epoch=EPOCH)
    assert out_a.name == out_b.name == NAME
    assert out_a.read_bytes() == out_b.read_bytes()
    # Normalizing a normalized wheel changes nothing.
    again = normalize_wheel(out_a, tmp_path / "again", epoch=EPOCH)
    assert again.read_bytes() == out_a.read_bytes()


def test_normalized_layout(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "in",
        order=sorted(FILES, reverse=True),
        date_time=(2030, 1, 1, 0, 0, 0),
        compression=zipfile.ZIP_STORED,
        dirs=True,
    )
    out = normalize_wheel(wheel, tmp_path / "out", epoch=EPOCH)
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
        assert archive.comment == b""
        infos = archive.infolist()
        names = [i.filename for i in infos]
        assert names == [
            "demo-1.0.data/scripts/run",
            "demo/__init__.py",
            "demo/data/blob.bin",
            "demo/tool.sh",
            f"{DIST_INFO}/METADATA",
            f"{DIST_INFO}/WHEEL",
            f"{DIST_INFO}/RECORD",
        ]
        for info in infos:
            assert info.date_time == (2021, 5, 3, 0, 0, 0)
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert info.extra == b""
            assert info.comment == b""
            mode = info.external_attr >> 16
            assert stat.S_ISREG(mode)
            executable = info.filename in {"demo/tool.sh", "demo-1.0.data/scripts/run"}
            assert stat.S_IMODE(mode) == (0o755 if executable else 0o644)
        for name, (data, _mode) in FILES.items():
            assert archive.read(name) == data
    record = read_record(out)
    assert record[-1] == RecordEntry(f"{DIST_INFO}/RECORD", None, None)
    assert {e.path: (e.sha256, e.size) for e in record[:-1]} == {
        name: (sha(data), len(data)) for name, (data, _mode) in FILES.items()
    }


def test_add_files_land_in_record(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path / "in",
        order=list(FILES),
        date_time=(2024, 1, 1, 0, 0, 0),
        compression=zipfile.ZIP_DEFLATED,
        extra={f"{DIST_INFO}/sboms/fromsource.cdx.json": b"stale"},
    )
    sbom = b'{"bomFormat": "CycloneDX"}\n'
    out = normalize_wheel(
        wheel,
        tmp_path / "out",
        epoch=EPOCH,
        add_files={"sboms/fromsource.cdx.json": sbom, "licenses/NOTICE": b"n"},
    )
    record = {e.path: e for e in read_record(out)}
    assert record[f"{DIST_INFO}/sboms/fromsource.cdx.json"] == RecordEntry(
        f"{DIST_INFO}/sboms/fromsource.cdx.json", sha(sbom), len(sbom)
    )
    assert record[f"{DIST_INFO}/licenses/NOTICE"].sha256 == sha(b"n")
    with zipfile.ZipFile(out) as archive:
        assert archive.read(f"{DIST_INFO}/sboms/fromsource.cdx.json") == sbom
        assert archive.namelist()[-1] == f"{DIST_INFO}/RECORD"
        for entry in record.values():
            if entry.sha256 is not None:
                assert sha(archive.read(entry.path)) == entry.sha256


def test_epoch_before_1980_is_clamped_and_in_place_works(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, order=list(FILES), date_time=(2024, 1, 1, 0, 0, 0), compression=0)
    out = normalize_wheel(wheel, tmp_path, epoch=0)
    assert out == wheel
    with zipfile.ZipFile(out) as archive:
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME]


@pytest.mark.parametrize("bad", ["../evil.py", "/etc/evil.py", "demo/../../evil.py", "C:/x.py"])
def test_rejects_escaping_members(tmp_path: Path, bad: str) -> None:
    wheel = make_wheel(
        tmp_path / "in",
        order=list(FILES),
        date_time=(2024, 1, 1, 0, 0, 0),
        compression=0,
        extra={bad: b"x"},
    )
    with pytest.raises(InvalidDistributionError, match="absolute path or contains"):
        normalize_wheel(wheel, tmp_path / "out", epoch=EPOCH)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_rejects_bad_add_files_key(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, order=list(FILES), date_time=(2024, 1, 1, 0, 0, 0), compression=0)
    for key in ("../escape", "RECORD"):
        with pytest.raises(InvalidDistributionError):
            normalize_wheel(wheel, tmp_path / "out", epoch=EPOCH, add_files={key: b""})


def test_a_wheel_without_one_dist_info_or_not_a_zip_is_refused(tmp_path: Path) -> None:
    no_dist_info = tmp_path / "bare-1.0-py3-none-any.whl"
    with zipfile.ZipFile(no_dist_info, "w") as archive:
        archive.writestr("bare.py", b"")
    with pytest.raises(InvalidDistributionError, match="exactly one top-level .dist-info"):
        normalize_wheel(no_dist_info, tmp_path / "out", epoch=EPOCH)
    not_zip = tmp_path / "junk-1.0-py3-none-any.whl"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(InvalidDistributionError, match="not a readable zip"):
        read_record(not_zip)


def test_members_past_the_wheel_cap_are_refused_and_nothing_is_left(tmp_path: Path) -> None:
    # Issue 18: the members a backend put in the wheel are rewritten here, so their
    # decompressed total is capped (OutputLimits.wheel_bytes; 1 MiB stands in for 4 GiB).
    wheel = make_wheel(
        tmp_path / "in",
        order=list(FILES),
        date_time=(2024, 1, 2, 3, 4, 6),
        compression=zipfile.ZIP_DEFLATED,
        extra={"demo/zeros.bin": bytes(2 << 20)},
    )
    out = tmp_path / "out"
    with pytest.raises(OversizedError, match=f"{NAME} decompressed") as info:
        normalize_wheel(wheel, out, epoch=EPOCH, limits=OutputLimits(wheel_bytes=1 << 20))
    assert info.value.facts["category"] == "oversized-output"
    assert list(out.iterdir()) == []
    assert normalize_wheel(wheel, out, epoch=EPOCH).name == NAME  # the default cap is far off
