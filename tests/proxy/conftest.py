"""A local upstream the tests make, and an index serving it as ``python-upstream``.

The upstream (a :class:`~tests.packages.LocalIndex` on loopback, JSON pages
with PEP 700 upload times and sizes) holds, for the cases of issue 15:

- ``fresh-pkg`` 1.0 (a normal release) and 2.0 (younger than the cooldown);
- ``evil-pkg`` 1.0 (normal) and 1.1 (named by a test-made ``MAL-`` record);
- ``hashed-pkg`` 1.0, whose wheel's sha256 is the ``package_integrity`` of a
  record about another name;
- ``blocked-pkg`` 0.9 (normal) and 1.0 (blocked by a rule on its purl);
- ``mixed-pkg`` 1.0 (wheel and sdist, which the index also built) and 1.1.

The index has built ``mixed-pkg`` 1.0 itself (published into ``python``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fromsource.cli.main import main
from fromsource.store.blobs import sha256_file
from tests.conftest import IndexServer, start_server, stop_server, wait_for_generation
from tests.factories import make_wheel
from tests.packages import LocalIndex, make_sdist
from tests.policy.malware_records import fake_record

EVIL_MAL = "MAL-2026-9101"
HASH_MAL = "MAL-2026-9102"
OLD = datetime.now(UTC) - timedelta(days=40)
YOUNG = datetime.now(UTC) - timedelta(days=1)


@dataclass
class Proxied:
    """The upstream, the index in front of it, and what the tests need to know about them."""

    upstream: LocalIndex
    index: IndexServer
    files: dict[str, Path]
    block_rule: int
    built: Path

    def cli(self, *args: str) -> int:
        """Run ``fromsource`` on the index's data dir, in-process."""
        return main(["--data-dir", str(self.index.data_dir), *args])

    def fetched(self, filename: str) -> int:
        """How often the upstream was asked for *filename*."""
        return sum(1 for r in self.upstream.requests if r.endswith(f"/files/{filename}"))


def make_upstream(folder: Path, upstream: LocalIndex) -> dict[str, Path]:
    """Write the upstream's files into *folder*, list them with their upload times."""
    wheels = folder / "upstream"
    made: list[tuple[Path, datetime]] = [
        (make_wheel(wheels, "fresh-pkg", "1.0"), OLD),
        (make_wheel(wheels, "fresh-pkg", "2.0"), YOUNG),
        (make_wheel(wheels, "evil-pkg", "1.0"), OLD),
        (make_wheel(wheels, "evil-pkg", "1.1"), OLD),
        (make_wheel(wheels, "hashed-pkg", "1.0"), OLD),
        (make_wheel(wheels, "blocked-pkg", "0.9"), OLD),
        (make_wheel(wheels, "blocked-pkg", "1.0"), OLD),
        (make_wheel(wheels, "mixed-pkg", "1.0", files={"mixed_pkg/__init__.py": "# up\n"}), OLD),
        (make_sdist(wheels, "mixed-pkg", "1.0", "in-tree"), OLD),
        (make_wheel(wheels, "mixed-pkg", "1.1"), OLD),
    ]
    for path, when in made:
        upstream.add(path)
        upstream.upload_times[path.name] = when
    return {path.name: path for path, _when in made}


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    """The upstream on loopback and an index serving it (``serve --upstream``), policy set."""
    base = tmp_path_factory.mktemp("proxied")
    upstream = LocalIndex()
    files = make_upstream(base, upstream)
    with upstream.serve():
        index = start_server(base / "data", "--upstream", upstream.url)
        try:
            built = make_wheel(base / "built", "mixed-pkg", "1.0")
            index.publish(built)
            records = base / "records"
            records.mkdir()
            hashed = sha256_file(files["hashed_pkg-1.0-py3-none-any.whl"])[0]
            for record in (
                fake_record(EVIL_MAL, "evil-pkg", versions=("1.1",)),
                fake_record(
                    HASH_MAL, "hashed-typo", sha256=hashed, filename="hashed_typo-1.0.tar.gz"
                ),
            ):
                (records / f"{record.id}.json").write_text(json.dumps(record.to_json()))
            run = ["--data-dir", str(index.data_dir)]
            assert main([*run, "advisories", "import", str(records)]) == 0
            assert (
                main([*run, "policy", "add", "block", "pkg:pypi/blocked-pkg@1.0", "--reason", "t"])
                == 0
            )
            wait_for_generation(index)
            yield Proxied(upstream, index, files, 1, built)
        finally:
            stop_server(index)
