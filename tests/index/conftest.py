"""Fixtures of the index tests: a live index populated for the web UI."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import IndexServer, start_server, stop_server
from tests.index.ui_data import Published, populate


@pytest.fixture(scope="module")
def ui_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[IndexServer, Published]]:
    """A live index with signed, documented builds and an advisory (see tests/index/ui_data.py)."""
    base = tmp_path_factory.mktemp("ui-index")
    server = start_server(base / "data")
    try:
        yield server, populate(server, base / "wheels")
    finally:
        stop_server(server)
