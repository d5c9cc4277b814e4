"""Tests for fromsource.build.unpack: hostile archives made here are refused."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaging.version import Version

from fromsource.build.unpack import (
    EPOCH_FLOOR,
    UnpackLimits,
    read_pkg_info,
    unpack_sdist,
)
from fromsource.errors import BuildError, InvalidDistributionError, UnsafeArchiveError

PKG_INFO = b"Metadata-Version: 2.1\nName: Demo_Pkg\nVersion: 1.0\nSummary: demo\n"
T_INFO = 1_620_000_000  # mtime of PKG-INFO: the expected epoch
T_OTHER = 1_700_000_000  # newer mtime of other members, which must not win

Entry = tuple[str, str, bytes | str, int]  # name, kind, data or link target, mode


def _normal_entries(top: str = "demo_pkg-1.0") -> list[Entry]:
    return [
        (f"{top}/", "dir", b"", 0o755),
        (f"{top}/PKG-INFO", "file", PKG_INFO, 0o644),
        (f"{top}/setup.py", "file", b"from setuptools import setup\nsetup()\n", 0o644),
        (f"{top}/demo_pkg/__init__.py", "file", b"VALUE = 1\n", 0o644),
        (f"{top}/bin/tool", "file", b"#!/bin/sh\necho hi\n", 0o4755),  # setuid dropped
        (f"{top}/docs/LICENSE", "symlink", "../setup.py", 0o777),
    ]


def make_tar(path: Path, entries: list[Entry], mode: str = "w:gz") -> Path:
    """A tar archive with exactly *entries* (kinds: file, dir, symlink, hardlink,
    chr, fifo)."""
    types = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "chr": tarfile.CHRTYPE,
        "fifo": tarfile.FIFOTYPE,
    }
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
        for name, kind, data, perm in entries:
            info = tarfile.TarInfo(name)
            info.type = types[kind]
            info.mode = perm
            info.mtime = T_INFO if name.endswith("PKG-INFO") else T_OTHER
            if kind in ("symlink", "hardlink"):
                info.linkname = str(data)
                tf.addfile(info)
            elif kind == "file":
                assert isinstance(data, bytes)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def make_zip(path: Path, entries: list[Entry]) -> Path:
    """A zip archive; unix file types go in the high bits of external_attr."""
    kinds = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "symlink": stat.S_IFLNK}
    kinds |= {"fifo": stat.S_IFIFO, "chr": stat.S_IFCHR, "sock": stat.S_IFSOCK}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, kind, data, perm in entries:
            when = (2021, 5, 3, 0, 0, 0) if name.endswith("PKG-INFO") else (2023, 11, 14, 0, 0, 0)
            info = zipfile.ZipInfo(name, date_time=when)
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (kinds[kind] | (perm & 0o7777)) << 16
            payload = data.encode() if isinstance(data, str) else data
            zf.writestr(info, payload)
    return path


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "work" / "unpacked"


def _assert_rejected(
    archive: Path, dest: Path, member: str | None, words: str, limits: UnpackLimits | None = None
) -> None:
    """Unpacking is refused with our message and leaves nothing anywhere."""
    before = sorted(p for p in archive.parent.rglob("*"))
    with pytest.raises(UnsafeArchiveError) as info:
        unpack_sdist(archive, dest, limits or UnpackLimits())
    message = str(info.value)
    assert archive.name in message
    if member is not None:
        assert repr(member) in message
        assert info.value.facts["member"] == member
    assert words in message
    assert f"the sdist was rejected, nothing was extracted outside {dest}" in message
    assert not dest.exists()
    assert sorted(p for p in archive.parent.rglob("*")) == before


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz", "w"])
def test_normal_tar_sdist_is_unpacked(tmp_path: Path, dest: Path, mode: str) -> None:
    archive = make_tar(tmp_path / "demo_pkg-1.0.tar.x", _normal_entries(), mode)
    root = unpack_sdist(archive, dest).root
    assert root == dest / "demo_pkg-1.0"
    assert (root / "demo_pkg" / "__init__.py").read_bytes() == b"VALUE = 1\n"
    assert stat.S_IMODE((root / "bin" / "tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "setup.py").stat().st_mode) == 0o644
    assert os.readlink(root / "docs" / "LICENSE") == "../setup.py"
    assert (root / "docs" / "LICENSE").read_bytes().startswith(b"from setuptools")
    assert read_pkg_info(root) == ("Demo_Pkg", Version("1.0"), T_INFO)


def test_normal_zip_sdist_is_unpacked(tmp_path: Path, dest: Path) -> None:
    archive = make_zip(tmp_path / "demo_pkg-1.0.zip", _normal_entries())
    unpacked = unpack_sdist(archive, dest)
    root = unpacked.root
    assert root == dest / "demo_pkg-1.0"
    assert (root / "setup.py").read_bytes().startswith(b"from setuptools")
    assert stat.S_IMODE((root / "bin" / "tool").stat().st_mode) == 0o755
    assert os.readlink(root / "docs" / "LICENSE") == "../setup.py"
    assert unpacked.epoch == 1_620_000_000


def test_epoch_is_pkg_info_mtime_raised_to_1980(tmp_path: Path, dest: Path) -> None:
    archive = tmp_path / "flat-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        for name, when in (("flat-1.0/PKG-INFO", 0), ("flat-1.0/a.py", T_OTHER)):
            info = tarfile.TarInfo(name)
            info.mtime = when
            tf.addfile(info, io.BytesIO(b""))
    root, epoch = unpack_sdist(archive, dest)
    assert epoch == EPOCH_FLOOR
    assert int((root / "PKG-INFO").stat().st_mtime) == EPOCH_FLOOR


def test_without_single_top_directory_dest_is_returned(tmp_path: Path, dest: Path) -> None:
    entries: list[Entry] = [("PKG-INFO", "file", PKG_INFO, 0o644), ("a/b.py", "file", b"", 0o644)]
    archive = make_tar(tmp_path / "odd.tar.gz", entries)
    assert unpack_sdist(archive, dest).root == dest
    assert read_pkg_info(dest).name == "Demo_Pkg"


def test_hardlink_inside_tree_is_copied(tmp_path: Path, dest: Path) -> None:
    entries = [*_normal_entries(), ("demo_pkg-1.0/copy.py", "hardlink", "demo_pkg-1.0/setup.py", 0)]
    root = unpack_sdist(make_tar(tmp_path / "h.tar.gz", entries), dest).root
    assert (root / "copy.py").read_bytes() == (root / "setup.py").read_bytes()
    assert not (root / "copy.py").is_symlink()


def test_dest_must_be_empty(tmp_path: Path, dest: Path) -> None:
    archive = make_tar(tmp_path / "demo_pkg-1.0.tar.gz", _normal_entries())
    dest.mkdir(parents=True)
    (dest / "keep").write_text("x")
    with pytest.raises(BuildError, match="not an empty folder"):
        unpack_sdist(archive, dest)
    assert (dest / "keep").read_text() == "x"


def test_failure_while_writing_removes_partial_tree(
    tmp_path: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk cannot be had here; fail the last step (symlinks) instead.
    archive = make_tar(tmp_path / "demo_pkg-1.0.tar.gz", _normal_entries())

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "symlink", no_space)
    with pytest.raises(BuildError, match="nothing was kept"):
        unpack_sdist(archive, dest)
    assert not dest.exists()


TOP = "evil-1.0"

HOSTILE_TAR: dict[str, tuple[list[Entry], str, str]] = {
    "traversal": (
        [(f"{TOP}/../../evil.txt", "file", b"x", 0o644)],
        f"{TOP}/../../evil.txt",
        "'..'",
    ),
    "absolute": (
        [("/tmp/fromsource-evil.txt", "file", b"x", 0o644)],
        "/tmp/fromsource-evil.txt",
        "absolute path",
    ),
    "symlink-escape": (
        [(f"{TOP}/link", "symlink", "../../outside", 0o777)],
        f"{TOP}/link",
        "leaves the tree",
    ),
    "symlink-absolute": (
        [(f"{TOP}/link", "symlink", "/etc/passwd", 0o777)],
        f"{TOP}/link",
        "absolute path",
    ),
    "symlink-chain": (
        [
            (f"{TOP}/d/", "dir", b"", 0o755),
            (f"{TOP}/d/l", "symlink", "..", 0o777),
            (f"{TOP}/m", "symlink", "d/l/../..", 0o777),
        ],
        f"{TOP}/m",
        "leaves the tree",
    ),
    "symlink-loop": (
        [(f"{TOP}/a", "symlink", "b", 0o777), (f"{TOP}/b", "symlink", "a/x", 0o777)],
        f"{TOP}/a",
        "loop",
    ),
    "write-through-symlink": (
        [(f"{TOP}/sub", "symlink", ".", 0o777), (f"{TOP}/sub/x.py", "file", b"x", 0o644)],
        f"{TOP}/sub/x.py",
        "which is a symlink",
    ),
    "symlink-replaces-dir": (
        [(f"{TOP}/sub/x.py", "file", b"x", 0o644), (f"{TOP}/sub", "symlink", ".", 0o777)],
        f"{TOP}/sub",
        "replace a directory",
    ),
    "duplicate-kinds": (
        [(f"{TOP}/a", "file", b"x", 0o644), (f"{TOP}/a", "symlink", "b", 0o777)],
        f"{TOP}/a",
        "appears twice",
    ),
    "hardlink-escape": (
        [(f"{TOP}/h", "hardlink", "../../etc/passwd", 0)],
        f"{TOP}/h",
        "outside the tree",
    ),
    "hardlink-absolute": (
        [(f"{TOP}/h", "hardlink", "/etc/passwd", 0)],
        f"{TOP}/h",
        "absolute path",
    ),
    "hardlink-missing": (
        [(f"{TOP}/h", "hardlink", f"{TOP}/nothing", 0)],
        f"{TOP}/h",
        "not a regular file",
    ),
    "device": ([(f"{TOP}/dev", "chr", b"", 0o644)], f"{TOP}/dev", "device file"),
    "fifo": ([(f"{TOP}/pipe", "fifo", b"", 0o644)], f"{TOP}/pipe", "FIFO"),
    "backslash": (
        [(f"{TOP}\\..\\evil.txt", "file", b"x", 0o644)],
        f"{TOP}\\..\\evil.txt",
        "backslash",
    ),
    "control-char": ([(f"{TOP}/a\nb", "file", b"x", 0o644)], f"{TOP}/a\nb", "control character"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TAR))
def test_hostile_tar_is_refused(tmp_path: Path, dest: Path, case: str) -> None:
    extra, member, words = HOSTILE_TAR[case]
    entries = [*_normal_entries(TOP), *extra]
    (tmp_path / "src").mkdir()
    archive = make_tar(tmp_path / "src" / f"{TOP}.tar.gz", entries)
    _assert_rejected(archive, dest, member, words)
    assert not list(tmp_path.glob("**/evil*.txt"))


def _limited(**kw: int) -> UnpackLimits:
    return UnpackLimits(**{"ratio_floor_bytes": 0, **kw})


@pytest.mark.parametrize(
    ("limits", "member", "words"),
    [
        (_limited(max_ratio=20), f"{TOP}/zeros.bin", "compression bomb"),
        (_limited(max_member_bytes=100_000), f"{TOP}/zeros.bin", "100000-byte limit"),
        (_limited(max_total_bytes=150_000), f"{TOP}/zeros.bin", "past the 150000-byte limit"),
        (_limited(max_members=4), f"{TOP}/bin/tool", "limit of 4 members"),
    ],
    ids=["ratio", "member-size", "total-size", "member-count"],
)
def test_tar_over_limits_is_refused(
    tmp_path: Path, dest: Path, limits: UnpackLimits, member: str, words: str
) -> None:
    entries = [*_normal_entries(TOP), (f"{TOP}/zeros.bin", "file", bytes(200_000), 0o644)]
    archive = make_tar(tmp_path / f"{TOP}.tar.gz", entries)
    _assert_rejected(archive, dest, member, words, limits)


HOSTILE_ZIP: dict[str, tuple[list[Entry], str, str]] = {
    "traversal": (
        [(f"{TOP}/../../evil.txt", "file", b"x", 0o644)],
        f"{TOP}/../../evil.txt",
        "'..'",
    ),
    "absolute": (
        [("/tmp/fromsource-evil.txt", "file", b"x", 0o644)],
        "/tmp/fromsource-evil.txt",
        "absolute path",
    ),
    "symlink-escape": (
        [(f"{TOP}/link", "symlink", "../../outside", 0o777)],
        f"{TOP}/link",
        "leaves the tree",
    ),
    "symlink-absolute": (
        [(f"{TOP}/link", "symlink", "/etc", 0o777)],
        f"{TOP}/link",
        "absolute path",
    ),
    "fifo": ([(f"{TOP}/pipe", "fifo", b"", 0o644)], f"{TOP}/pipe", "FIFO"),
    "device": ([(f"{TOP}/dev", "chr", b"", 0o644)], f"{TOP}/dev", "device file"),
    "socket": ([(f"{TOP}/sock", "sock", b"", 0o644)], f"{TOP}/sock", "socket"),
    "duplicate-dir-link": (
        [(f"{TOP}/demo_pkg", "symlink", "..", 0o777)],
        f"{TOP}/demo_pkg",
        "replace a directory",
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIP))
def test_hostile_zip_is_refused(tmp_path: Path, dest: Path, case: str) -> None:
    extra, member, words = HOSTILE_ZIP[case]
    archive = make_zip(tmp_path / f"{TOP}.zip", [*_normal_entries(TOP), *extra])
    _assert_rejected(archive, dest, member, words)
    assert not list(tmp_path.glob("**/evil*.txt"))


def test_zip_name_with_nul_is_refused(tmp_path: Path, dest: Path) -> None:
    archive = make_zip(tmp_path / f"{TOP}.zip", [(f"{TOP}/aQb.py", "file", b"x", 0o644)])
    archive.write_bytes(archive.read_bytes().replace(b"aQb.py", b"a\x00b.py"))
    _assert_rejected(archive, dest, f"{TOP}/a\x00b.py", "control character")


@pytest.mark.parametrize(
    ("limits", "words"),
    [
        (_limited(max_ratio=20), "compression bomb"),
        (_limited(max_total_bytes=150_000), "past the 150000-byte limit"),
    ],
    ids=["ratio", "total-size"],
)
def test_zip_bomb_is_refused(tmp_path: Path, dest: Path, limits: UnpackLimits, words: str) -> None:
    entries = [*_normal_entries(TOP), (f"{TOP}/zeros.bin", "file", bytes(200_000), 0o644)]
    archive = make_zip(tmp_path / f"{TOP}.zip", entries)
    _assert_rejected(archive, dest, f"{TOP}/zeros.bin", words, limits)


def test_a_zip_declaring_more_members_than_the_limit_is_refused_before_it_is_read(
    tmp_path: Path, dest: Path
) -> None:
    archive = make_zip(tmp_path / f"{TOP}.zip", _normal_entries(TOP))
    _assert_rejected(archive, dest, None, "members, past the limit of 2",
                     _limited(max_members=2))


def test_garbage_is_refused(tmp_path: Path, dest: Path) -> None:
    archive = tmp_path / "broken-1.0.tar.gz"
    archive.write_bytes(b"\x1f\x8b" + os.urandom(64))
    _assert_rejected(archive, dest, None, "cannot be read as a tar or zip archive")


def test_truncated_archive_is_refused(tmp_path: Path, dest: Path) -> None:
    archive = make_tar(tmp_path / "demo_pkg-1.0.tar.gz", _normal_entries())
    archive.write_bytes(archive.read_bytes()[:-40])
    _assert_rejected(archive, dest, None, "cannot be read")


@pytest.mark.parametrize(
    ("pkg_info", "expected"),
    [
        (None, "no readable PKG-INFO at the top of the sdist"),
        (b"Metadata-Version: 1.0\nName: demo\n", "lacks Name or Version (no Version field)"),
        (b"Name: a\nName: b\nVersion: 1.0\n", "Name is given 2 times with different values"),
        (b"Name: demo\nVersion: 1.0-but-not\n", "version '1.0-but-not' is not PEP 440"),
    ],
)
def test_a_pkg_info_without_one_name_and_pep440_version_is_refused(
    tmp_path: Path, pkg_info: bytes | None, expected: str
) -> None:
    if pkg_info is not None:
        (tmp_path / "PKG-INFO").write_bytes(pkg_info)
    with pytest.raises(InvalidDistributionError) as info:
        read_pkg_info(tmp_path)
    assert expected in info.value.message
    assert info.value.facts["tree"] == str(tmp_path)


def test_pkg_info_of_metadata_1_0_with_a_long_description(tmp_path: Path) -> None:
    (tmp_path / "PKG-INFO").write_bytes(
        b"Metadata-Version: 1.0\nName: Old.Pkg\nVersion: 0.9 \nSummary: UNKNOWN\n"
        b"Description: line one\n        |line two\nPlatform: UNKNOWN\n\nbody\xff text\n"
    )
    assert read_pkg_info(tmp_path)[:2] == ("Old.Pkg", Version("0.9"))
