"""Fixtures for lock-file tests: an upstream-like index and a reader token for the shared index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import IndexServer
from tests.factories import make_wheel
from tests.lockfiles.upstream import FolderIndex

UPSTREAM_MARK = "# built upstream\n"


def upstream_wheels(folder: Path) -> Path:
    """``demo-pkg`` 1.0 and ``dep-pkg`` 0.1 built differently from the shared index's copies."""
    make_wheel(folder, "dep-pkg", "0.1", files={"dep_pkg/__init__.py": UPSTREAM_MARK})
    make_wheel(folder, "demo-pkg", "1.0", requires_dist=["dep-pkg"],
               files={"demo_pkg/__init__.py": UPSTREAM_MARK})
    return folder


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FolderIndex]:
    """A PEP 503 index on loopback serving the upstream-like builds."""
    index = FolderIndex(upstream_wheels(tmp_path_factory.mktemp("upstream")))
    try:
        yield index
    finally:
        index.close()


@pytest.fixture(scope="module")
def reader(shared_index: IndexServer) -> tuple[str, str]:
    """A token that reads every repository of the shared index."""
    return shared_index.token("python", "python-remediated")
