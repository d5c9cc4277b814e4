"""Reading an sdist's PKG-INFO without unpacking it, and holding it to the filename."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from fromsource.bounded import OutputLimits
from fromsource.dist.sdistinfo import check_sdist
from fromsource.errors import InvalidDistributionError, OversizedError, UnsafeArchiveError
from fromsource.store.blobs import FileBlobStore
from fromsource.store.catalog import project_files
from fromsource.store.db import open_database
from fromsource.store.publish import publish_file
from tests.packages import make_sdist


def _tar(path: Path, members: dict[str, bytes], *, link: tuple[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            tar.addfile(info)
    return path


def test_pkg_info_gives_requires_python(tmp_path: Path) -> None:
    sdist = make_sdist(tmp_path, "Demo.Pkg", "1.0", "in-tree", pkg_info="Requires-Python: >=3.9\n")
    info = check_sdist(sdist)
    assert (info.name, info.version, info.requires_python) == ("Demo.Pkg", "1.0", ">=3.9")
    assert info.raw.startswith(b"Metadata-Version: 2.1\n")


def test_the_top_pkg_info_wins_over_an_egg_info_one(tmp_path: Path) -> None:
    sdist = _tar(
        tmp_path / "demo-2.0.tar.gz",
        {
            "demo-2.0/src/demo.egg-info/PKG-INFO": b"Name: demo\nVersion: 0.0\n",
            "demo-2.0/PKG-INFO": b"Metadata-Version: 2.2\nName: demo\nVersion: 2.0\n",
        },
    )
    assert check_sdist(sdist).version == "2.0"


def test_a_zip_sdist(tmp_path: Path) -> None:
    path = tmp_path / "demo-3.0.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("demo-3.0/PKG-INFO", "Name: demo\nVersion: 3.0\nRequires-Python: >=3.10\n")
    assert check_sdist(path).requires_python == ">=3.10"


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ({"demo-1.0/PKG-INFO": b"Name: other\nVersion: 1.0\n"}, "PKG-INFO says other 1.0"),
        ({"demo-1.0/PKG-INFO": b"Name: demo\nVersion: 1.1\n"}, "PKG-INFO says demo 1.1"),
        ({"demo-1.0/setup.py": b""}, "no PKG-INFO at the top"),
        ({"demo-1.0/PKG-INFO": b"Version: 1.0\n"}, "no Name or Version"),
    ],
)
def test_a_lying_or_missing_pkg_info_is_refused(
    tmp_path: Path, members: dict[str, bytes], message: str
) -> None:
    with pytest.raises(InvalidDistributionError, match=message):
        check_sdist(_tar(tmp_path / "demo-1.0.tar.gz", members))


def test_pkg_info_is_read_within_its_cap_and_members_are_checked(tmp_path: Path) -> None:
    big = _tar(tmp_path / "demo-1.0.tar.gz", {"demo-1.0/PKG-INFO": b"Name: demo\n" + b"x" * 5000})
    with pytest.raises(OversizedError):
        check_sdist(big, OutputLimits(metadata_bytes=1024))
    escaping = tmp_path / "evil" / "demo-1.0.tar.gz"
    escaping.parent.mkdir()
    _tar(
        escaping,
        {"demo-1.0/PKG-INFO": b"Name: demo\nVersion: 1.0\n"},
        link=("demo-1.0/leak", "/etc/passwd"),
    )
    with pytest.raises(UnsafeArchiveError):
        check_sdist(escaping)


def test_publish_lists_requires_python_and_refuses_a_lying_sdist(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    blobs = FileBlobStore(tmp_path / "blobs")
    good = make_sdist(
        tmp_path / "good", "demo", "1.0", "in-tree", pkg_info="Requires-Python: >=3.9\n"
    )
    publish_file(db, blobs, good, "python")
    liar = _tar(tmp_path / "demo-2.0.tar.gz", {"demo-2.0/PKG-INFO": b"Name: demo\nVersion: 9\n"})
    with pytest.raises(InvalidDistributionError):
        publish_file(db, blobs, liar, "python")
    (info,) = project_files(db, "python", "demo")
    assert (info.kind, info.requires_python, info.metadata_sha256) == ("sdist", ">=3.9", None)
    db.dispose()
