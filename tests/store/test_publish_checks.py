"""The operator's publish path checks a wheel's .dist-info and caps before storing anything."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from fromsource.bounded import OutputLimits
from fromsource.errors import FromsourceError, InvalidDistributionError, OversizedError
from fromsource.store.blobs import FileBlobStore
from fromsource.store.catalog import all_files
from fromsource.store.db import Database, open_database
from fromsource.store.publish import publish_file
from tests.factories import make_wheel


@pytest.fixture
def store(tmp_path: Path) -> tuple[Database, FileBlobStore]:
    return open_database(f"sqlite:///{tmp_path / 'db.sqlite'}"), FileBlobStore(tmp_path / "blobs")


def _rename_dist_info(wheel: Path, folder: str) -> Path:
    """A copy of *wheel* whose .dist-info folder is called *folder* (nothing else changes)."""
    target = wheel.parent / "renamed" / wheel.name
    target.parent.mkdir()
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w") as out:
        for info in source.infolist():
            top, _, rest = info.filename.partition("/")
            name = f"{folder}/{rest}" if top.endswith(".dist-info") else info.filename
            out.writestr(name, source.read(info))
    return target


def _nothing_stored(db: Database, blobs: FileBlobStore) -> None:
    assert all_files(db) == []
    assert list(blobs.digests()) == []


def test_a_wheel_whose_dist_info_names_another_project_is_not_published(
    store: tuple[Database, FileBlobStore], tmp_path: Path
) -> None:
    db, blobs = store
    wheel = _rename_dist_info(make_wheel(tmp_path, "other", "1.0"), "honest-1.0.dist-info")
    with pytest.raises(InvalidDistributionError, match="'honest-1.0.dist-info'") as info:
        publish_file(db, blobs, wheel, "python", provenance=b"{}", sbom=b"{}")
    assert info.value.facts["category"] == "wheel-mismatch"
    _nothing_stored(db, blobs)


def test_a_metadata_bomb_is_not_published(
    store: tuple[Database, FileBlobStore], tmp_path: Path
) -> None:
    db, blobs = store
    wheel = make_wheel(tmp_path, "bomb", "1.0", requires_dist=["x" * (8 << 20)])
    with pytest.raises(OversizedError, match="bomb-1.0.dist-info/METADATA") as info:
        publish_file(db, blobs, wheel, "python", limits=OutputLimits(metadata_bytes=1 << 20))
    assert info.value.facts["category"] == "oversized-output"
    _nothing_stored(db, blobs)
    # Under the default cap (16 MiB) the same wheel is an honest, if large, one.
    published = publish_file(db, blobs, wheel, "python")
    assert not published.already_present


def test_an_honest_wheel_is_published(
    store: tuple[Database, FileBlobStore], tmp_path: Path
) -> None:
    db, blobs = store
    try:
        publish_file(db, blobs, make_wheel(tmp_path, "Honest.Pkg", "2.0"), "python")
    except FromsourceError as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(exc.message)
    assert [f.filename for f in all_files(db)] == ["Honest_Pkg-2.0-py3-none-any.whl"]
