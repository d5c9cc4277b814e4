"""The build-dependency wheel cache: digests checked, upstream rules kept, recorded wheels found."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from fromsource.build.deps import ResolvedWheel, Resolver
from fromsource.build.upstream import Upstream
from fromsource.build.wheelcache import WheelCache
from fromsource.dist.names import ProjectName, Sha256
from fromsource.errors import DependencyError, HashMismatchError, UpstreamError
from fromsource.store.blobs import FileBlobStore
from tests.factories import make_wheel
from tests.packages import LocalIndex, local_index  # noqa: F401


def test_wheel_cache_checks_digests_and_fetches_once(
    tmp_path: Path,
    local_index: LocalIndex,  # noqa: F811
) -> None:
    resolver = Resolver(upstream_url=local_index.url, work_dir=tmp_path / "resolve")
    (flit,) = resolver.resolve([Requirement("flit_core")], what="t")
    cache = WheelCache(tmp_path / "cache", Upstream(local_index.url, tries=1))
    requirements = cache.wheelhouse([flit], tmp_path / "house")
    assert (tmp_path / "house" / flit.filename).is_file()
    assert requirements.read_text() == f"flit-core=={flit.version} --hash=sha256:{flit.sha256}\n"

    before = len(local_index.requests)
    cache.wheelhouse([flit], tmp_path / "house2")
    assert local_index.requests[before:] == []

    wrong = ResolvedWheel(
        flit.project,
        flit.version,
        "other-" + flit.filename,
        Sha256("0" * 64),
        flit.url,
        "bootstrap",
    )
    with pytest.raises(HashMismatchError):
        cache.fetch(wrong)
    assert not cache.path(wrong).exists()

    # A damaged cached copy is not used: it is dropped and fetched again.
    cache.path(flit).chmod(0o644)
    cache.path(flit).write_bytes(b"damaged")
    assert hashlib.sha256(cache.fetch(flit).read_bytes()).hexdigest() == flit.sha256


def test_a_file_upstream_gives_build_deps_only_as_regular_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "demo_pipe-1.0-py3-none-any.whl")
    zero = ResolvedWheel(
        ProjectName("demo-zero"),
        "1.0",
        "demo_zero-1.0-py3-none-any.whl",
        Sha256("0" * 64),
        "file:///dev/zero",
        "bootstrap",
    )
    pipe = ResolvedWheel(
        ProjectName("demo-pipe"),
        "1.0",
        "demo_pipe-1.0-py3-none-any.whl",
        Sha256("0" * 64),
        (tmp_path / "demo_pipe-1.0-py3-none-any.whl").as_uri(),
        "bootstrap",
    )
    cache = WheelCache(tmp_path / "cache", Upstream((tmp_path / "simple").as_uri()))
    for wheel in (zero, pipe):
        with pytest.raises(UpstreamError, match="is not a regular file"):
            cache.fetch(wheel)
        assert not cache.path(wheel).exists()


def test_recorded_wheels_are_found_by_digest_or_said_to_be_gone(
    tmp_path: Path,
    local_index: LocalIndex,  # noqa: F811
) -> None:
    resolver = Resolver(upstream_url=local_index.url, work_dir=tmp_path / "resolve")
    (flit,) = resolver.resolve([Requirement("flit_core")], what="t")
    gone_url = local_index.url.replace("/simple/", "/files/gone/") + flit.filename
    moved = ResolvedWheel(
        flit.project, flit.version, flit.filename, flit.sha256, gone_url, "bootstrap"
    )
    blobs = FileBlobStore(tmp_path / "blobs")
    upstream = Upstream(local_index.url, tries=1)

    # The recorded URL answers 404, but the upstream lists the same file (name and digest).
    found = WheelCache(tmp_path / "one", upstream).fetch_recorded(moved, blobs)
    assert hashlib.sha256(found.read_bytes()).hexdigest() == flit.sha256

    # Only in our blob store (someone published exactly that file): taken from there.
    only_here = make_wheel(tmp_path / "w", "demo-only-here", "1.0")
    digest, _size = blobs.put_file(only_here)
    other = ResolvedWheel(
        ProjectName("demo-only-here"), "1.0", only_here.name, digest, gone_url, "bootstrap"
    )
    before = len(local_index.requests)
    assert WheelCache(tmp_path / "two", upstream).fetch_recorded(other, blobs).is_file()
    assert local_index.requests[before:] == []

    # Nowhere: said so, naming the wheel; never another file of that name.
    gone = ResolvedWheel(
        flit.project, flit.version, flit.filename, Sha256("1" * 64), gone_url, "bootstrap"
    )
    cache = WheelCache(tmp_path / "three", upstream)
    with pytest.raises(DependencyError) as info:
        cache.fetch_recorded(gone, blobs)
    assert info.value.facts["category"] == "inputs-unavailable"
    assert info.value.facts["filename"] == flit.filename
    assert flit.filename in info.value.message and "1" * 64 in info.value.message
    assert "404" in info.value.message
    assert not cache.path(gone).exists()
