"""An index with what the web UI shows: signed provenance, SBOMs, build logs, advisories.

``populate(server)`` publishes, into a running test index:

- ``demo-pkg`` 1.0 and 1.1 in ``python`` (1.1 needs Python >=3.8), signed
  with the index's own key, each with an SBOM and a build record; 1.1 was
  made by two independent builds that agreed (issue 17);
- ``demo-pkg`` 1.0+fs.1 in ``python-remediated``, built with a patch that
  fixes PYSEC-2099-1 (an advisory stored in the database that affects <1.1);
- ``evil-pkg`` 0.1 in ``python`` whose provenance is signed by a key the index
  never published (the UI must say not to trust it);
- ``plain-pkg`` 2.0 in ``python``, published without any documents, then yanked.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fromsource.dist.record import parse_record
from fromsource.provenance.agreement import AgreeingBuild, Agreement
from fromsource.provenance.keys import SigningKey, key_id
from fromsource.provenance.keystore import load_or_create_signing_key
from fromsource.provenance.sbom import SbomInput, build_sbom
from fromsource.provenance.statement import (
    BuildFacts,
    PatchInfo,
    ResolvedDependency,
    build_statement,
    sign_statement,
)
from fromsource.remediate.osv import parse_advisory
from fromsource.remediate.store import import_advisories
from fromsource.store.db import open_database
from fromsource.store.models import BuildRow
from fromsource.store.publish import set_yanked
from tests.conftest import IndexServer, wait_for_generation
from tests.factories import make_wheel

ADVISORY = {
    "id": "PYSEC-2099-1",
    "aliases": ["CVE-2099-0001"],
    "summary": "demo-pkg leaks cookies to other hosts",
    "modified": "2099-01-01T00:00:00Z",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "demo-pkg"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1"}]}],
        }
    ],
}
PATCH = PatchInfo("0001-cookie-scope.patch", "4" * 64, ("PYSEC-2099-1", "CVE-2099-0001"))
SETUPTOOLS = ResolvedDependency(
    filename="setuptools-80.9.0-py3-none-any.whl",
    project="setuptools",
    version="80.9.0",
    sha256="5" * 64,
    source="fromsource",
    uri="http://127.0.0.1:9/python/files/setuptools/80.9.0/setuptools-80.9.0-py3-none-any.whl",
)
LOG_MARKER = "Successfully built demo_pkg"


@dataclass(frozen=True)
class Published:
    """What the UI tests look for."""

    sha256: dict[str, str]
    """wheel filename -> sha256"""


def _agreement(digest: str, started: datetime) -> Agreement:
    """Two builds on two workers that made the wheel *digest*."""
    builds = tuple(
        AgreeingBuild(
            invocation_id=f"build-{n}", worker=f"worker@builder-{n}:{1000 + n}", started=started,
            finished=started + timedelta(seconds=40 + n), wheel_sha256=digest, build_key="f" * 64,
            builder_id="urn:fromsource:builder", builder_version="0.1.0",
            sandbox={"variant": n - 7, "build_uid": 200_000 + n},
        )
        for n in (7, 8)
    )
    return Agreement(required=2, builds=builds, agreed=True)


def _sign(
    wheel: Path, key: SigningKey, repo: str, patches: tuple[PatchInfo, ...], agreed: bool = False
) -> tuple[bytes, bytes, str]:
    data = wheel.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    with zipfile.ZipFile(wheel) as archive:
        record_name = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
        record = parse_record(archive.read(record_name).decode())
    name, version = wheel.name.split("-")[:2]
    project = name.replace("_", "-")
    sdist = f"http://127.0.0.1:9/upstream/{name}-{version.split('+')[0]}.tar.gz"
    started = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    facts = BuildFacts(
        project=project, version=version, repository=repo, sdist_url=sdist, sdist_sha256="3" * 64,
        patches=patches, dependencies=(SETUPTOOLS,), build_key="f" * 64, python="3.11.9",
        platform="linux-x86_64", source_date_epoch=1_700_000_000,
        sandbox={"isolated": True, "tool": "bwrap", "network": "none"},
        invocation_id=f"build-{project}-{version}", started=started,
        finished=started + timedelta(seconds=42),
        agreement=_agreement(digest, started) if agreed else None,
    )
    envelope = sign_statement(build_statement(wheel.name, digest, record, facts), key)
    sbom = build_sbom(SbomInput(
        project=project, version=version, wheel_filename=wheel.name, sdist_url=sdist,
        sdist_sha256="3" * 64, dependencies=(SETUPTOOLS,), patches=patches, epoch=1_700_000_000,
    ))
    return envelope, sbom, digest


def _build_row(server: IndexServer, project: str, version: str, repo: str) -> int:
    db = open_database(server.database_url)
    now = datetime.now(UTC)
    with db.session() as session, session.begin():
        row = BuildRow(
            project=project, version=version, repo=repo, status="succeeded", error=None,
            log=f"* Building wheel for {project} {version}...\n{LOG_MARKER}-{version}\n",
            details={}, created_at=now, started_at=now, finished_at=now + timedelta(seconds=3),
        )
        session.add(row)
        session.flush()
        build_id = row.id
    db.dispose()
    return build_id


def populate(server: IndexServer, work: Path) -> Published:
    """Publish the demo projects (see the module docstring) into *server*."""
    key = load_or_create_signing_key(server.data_dir / "keys")
    stranger = Ed25519PrivateKey.generate()
    forged = SigningKey(stranger, key_id(stranger.public_key()))
    digests: dict[str, str] = {}
    specs = [
        ("demo-pkg", "1.0", "python", (), key, {}),
        ("demo-pkg", "1.1", "python", (), key, {"requires_python": ">=3.8"}),
        ("demo-pkg", "1.0+fs.1", "python-remediated", (PATCH,), key, {}),
        ("evil-pkg", "0.1", "python", (), forged, {}),
    ]
    for project, version, repo, patches, signer, extra in specs:
        wheel = make_wheel(work, project, version, **extra)  # type: ignore[arg-type]
        envelope, sbom, digest = _sign(wheel, signer, repo, patches, agreed=version == "1.1")
        build_id = _build_row(server, project, version, repo)
        server.publish(wheel, repo, provenance=envelope, sbom=sbom, build_id=build_id)
        digests[wheel.name] = digest
    plain = make_wheel(work, "plain-pkg", "2.0")
    server.publish(plain, "python")
    db = open_database(server.database_url)
    set_yanked(db, "python", plain.name, "broken metadata", True)
    import_advisories(db, [parse_advisory(ADVISORY)])
    db.dispose()
    wait_for_generation(server)
    return Published(digests)
