"""Fixtures for verify: attested test wheels, key files and real venvs (pip and uv).

Everything is made offline: wheels with ``tests.factories.make_wheel``, statements
with the real ``build_statement``/``sign_statement``, installs with real pip/uv
from local files.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fromsource.dist.record import parse_record
from fromsource.provenance.dsse import parse_envelope
from fromsource.provenance.keys import SigningKey, keys_document
from fromsource.provenance.keystore import load_or_create_signing_key
from fromsource.provenance.pep740 import to_pep740
from fromsource.provenance.statement import BuildFacts, PatchInfo, build_statement, sign_statement
from tests.factories import make_wheel

BIN = Path(sys.executable).parent
UV = shutil.which("uv", path=str(BIN)) or shutil.which("uv")


@dataclass(frozen=True)
class Attested:
    """A test wheel and its signed envelope."""

    wheel: Path
    envelope: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.wheel.read_bytes()).hexdigest()


def attest(
    wheel: Path,
    key: SigningKey,
    *,
    repository: str = "python",
    patches: Sequence[PatchInfo] = (),
    build_id: str = "build-1",
) -> bytes:
    """Sign a statement for *wheel* as the build pipeline would."""
    with zipfile.ZipFile(wheel) as archive:
        record_name = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
        record = parse_record(archive.read(record_name).decode())
    name, version = wheel.name.split("-")[:2]
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    facts = BuildFacts(
        project=name.replace("_", "-"),
        version=version,
        repository=repository,
        sdist_url=f"https://upstream.invalid/{name}-{version}.tar.gz",
        sdist_sha256=hashlib.sha256(f"{name}-{version}".encode()).hexdigest(),
        patches=tuple(patches),
        dependencies=(),
        build_key="0" * 64,
        python="3.11.7",
        platform="linux-x86_64",
        source_date_epoch=1700000000,
        sandbox={"isolated": True},
        invocation_id=build_id,
        started=moment,
        finished=moment,
    )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return sign_statement(build_statement(wheel.name, digest, record, facts), key)


def write_attestation(folder: Path, item: Attested, form: str = "pep740") -> Path:
    """Store *item*'s envelope in *folder* the way ``--attestations`` expects."""
    folder.mkdir(parents=True, exist_ok=True)
    if form == "pep740":
        target = folder / f"{item.wheel.name}.provenance.json"
        doc = to_pep740(parse_envelope(item.envelope), "urn:fromsource:builder")
        target.write_text(json.dumps(doc))
    else:
        target = folder / f"{item.wheel.name}.dsse.json"
        target.write_bytes(item.envelope)
    return target


def write_keys(path: Path, key: SigningKey) -> Path:
    """A keys.json trusting *key*."""
    path.write_text(json.dumps(keys_document({key.keyid: key.public}, key.keyid)))
    return path


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    return load_or_create_signing_key(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    return load_or_create_signing_key(tmp_path_factory.mktemp("other-keys"))


MakeAttested = Callable[..., Attested]


@pytest.fixture(scope="session")
def make_attested(signing_key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> MakeAttested:
    """Build and sign a test wheel: ``make_attested(name, version, **make_wheel_kwargs)``."""
    base = tmp_path_factory.mktemp("attested-wheels")

    def make(
        name: str, version: str, *, patches: Sequence[PatchInfo] = (),
        repository: str = "python", files: Mapping[str, str | bytes] | None = None,
        console_scripts: Mapping[str, str] | None = None, tag: str = "py3-none-any",
        key: SigningKey | None = None,
    ) -> Attested:
        wheel = make_wheel(base / f"{name}-{version}", name, version, files=files,
                           console_scripts=console_scripts, tag=tag)
        return Attested(wheel, attest(wheel, key or signing_key, repository=repository,
                                      patches=patches))

    return make


def make_venv(path: Path, installer: str, wheels: Sequence[Path]) -> Path:
    """A fresh venv at *path* with *wheels* installed by real pip or uv (no index, no deps)."""
    if installer == "uv":
        assert UV, "uv is a project dependency and should be installed"
        subprocess.run([UV, "venv", "-q", str(path)], check=True)
        if wheels:
            subprocess.run(
                [UV, "pip", "install", "-q", "--offline", "--no-deps", "--python",
                 str(path / "bin" / "python"), *map(str, wheels)],
                check=True,
            )
    else:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
        if wheels:
            subprocess.run(
                [sys.executable, "-m", "pip", "--python", str(path / "bin" / "python"),
                 "install", "-q", "--no-index", "--no-deps", "--disable-pip-version-check",
                 *map(str, wheels)],
                check=True,
            )
    return path


def site_packages(venv: Path) -> Path:
    return next(venv.glob("lib/python*/site-packages"))
