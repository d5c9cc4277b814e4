"""The world of the lock-build tests: an upstream with test sdists, an index, a reader token.

The upstream holds closure-top 1.0 (it needs closure-base) and closure-base
0.1 as sdists and as wheels built "upstream" (marked, so an install of ours
can be told from theirs), closure-extra 2.0 (an sdist), and broken-pkg 1.0,
whose sdist cannot be built.  :func:`world` is module-scoped: one index per
module; import it (and ``local_index``) into the test module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fromsource.cli.main import main
from tests.conftest import IndexServer, start_server, stop_server
from tests.factories import make_wheel
from tests.lockfiles.conftest import UPSTREAM_MARK
from tests.packages import LocalIndex, make_sdist

BROKEN_BACKEND = """\
def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("this sdist is broken on purpose")
"""


@dataclass
class World:
    """The upstream (sdists and upstream-built wheels), the index and a reader token."""

    upstream: LocalIndex
    server: IndexServer
    reader: tuple[str, str]

    @property
    def upstream_root(self) -> str:
        return self.upstream.url.removesuffix("simple/")

    @property
    def host(self) -> str:
        return self.server.url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]

    def fromsource(self, *args: str) -> int:
        return main(["--data-dir", str(self.server.data_dir), *args])

    def build(
        self, capsys: pytest.CaptureFixture[str], *args: str
    ) -> tuple[int, dict[str, object]]:
        """``build ARGS --format json`` against the upstream; (exit code, the report)."""
        capsys.readouterr()
        code = self.fromsource(
            "build", *args, "--upstream", self.upstream.url, "--format", "json", "--quiet"
        )
        return code, json.loads(capsys.readouterr().out)

    def update(self, lock: Path, *extra: str) -> int:
        return main(
            [
                "lock",
                "update-hashes",
                str(lock),
                "--index",
                self.server.url,
                "--username",
                self.reader[0],
                "--password",
                self.reader[1],
                *extra,
            ]
        )


def upstream_files(folder: Path) -> list[Path]:
    """closure-top 1.0 (needs closure-base) and closure-base 0.1: sdists, and wheels built
    "upstream" (marked, so an install of ours can be told from theirs); broken-pkg 1.0,
    whose sdist cannot be built."""
    return [
        make_sdist(folder, "closure-base", "0.1", "flit-core"),
        make_sdist(folder, "closure-top", "1.0", "flit-core", dependencies=["closure-base"]),
        make_sdist(folder, "closure-extra", "2.0", "flit-core"),
        make_sdist(folder, "broken-pkg", "1.0", "in-tree", backend_code=BROKEN_BACKEND),
        make_wheel(
            folder, "closure-base", "0.1", files={"closure_base/__init__.py": UPSTREAM_MARK}
        ),
        make_wheel(
            folder,
            "closure-top",
            "1.0",
            requires_dist=["closure-base"],
            files={"closure_top/__init__.py": UPSTREAM_MARK},
        ),
    ]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, local_index: LocalIndex) -> Iterator[World]:
    """The upstream (the session's local index, with the files above) and a fresh index."""
    base = tmp_path_factory.mktemp("build-lock")
    local_index.add(*upstream_files(base / "upstream"))
    server = start_server(base / "data")
    try:
        yield World(local_index, server, server.token("python", "python-remediated"))
    finally:
        stop_server(server)
