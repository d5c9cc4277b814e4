"""Rust-backed packages through ``fromsource build`` and ``rebuild --check`` (issue 13).

In-process CLI runs against a local upstream (:class:`tests.packages.LocalIndex`)
serving sdists the tests write (:mod:`tests.build.rust_packages`): each has a
cdylib that depends on ``tinyadd``, a crate the test writes and serves from a
crate folder (``FROMSOURCE_CRATES``) or vendors in the sdist.  maturin and
setuptools-rust come from the local index like every build dependency.  The
builds run in the bubblewrap sandbox with no network; the wheels are
installed with pip from the real index on loopback and imported.  One
target only (``FROMSOURCE_BUILD_PYTHONS``: the running Python) bounds the time.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fromsource.build.rust_toolchain import find_toolchain
from fromsource.build.sandbox import tool_available
from fromsource.build.unpack import unpack_sdist
from fromsource.cli.main import main
from fromsource.config import Settings, upstream_url
from fromsource.dist.names import Sha256
from fromsource.errors import ToolchainError
from fromsource.provenance.keystore import load_or_create_signing_key
from fromsource.provenance.sbom import SBOM_PATH
from fromsource.provenance.statement import Attestation, verify_attestation
from fromsource.store.blobs import FileBlobStore
from fromsource.store.catalog import project_files
from fromsource.store.db import open_database
from tests.build.rust_packages import RustBackend, make_crate, rust_sdist, vendor_crate
from tests.conftest import start_server, stop_server
from tests.packages import (  # noqa: F401
    LocalIndex,
    _minimal_backend,
    local_index,
    make_sdist,
    wheel_from_installed,
)

RUST_WHEELS = ("maturin", "setuptools-rust", "semantic-version", "cffi", "pycparser")
"""The Rust backends and what they need, as installed in the test venv (requirements/dev.lock)."""

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _has_rust() -> bool:
    try:
        find_toolchain()
    except ToolchainError:
        return False
    return True


def _missing_wheels() -> list[str]:
    missing = []
    for name in RUST_WHEELS:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


pytestmark = [
    pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here"),
    pytest.mark.skipif(not _has_rust(), reason="no Rust toolchain (cargo, rustc) on this host"),
    pytest.mark.skipif(
        bool(_missing_wheels()),
        reason=f"not installed in the test venv: {', '.join(_missing_wheels())} "
        "(dev dependencies, requirements/dev.lock)",
    ),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def rust_index(
    local_index: LocalIndex,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> LocalIndex:
    """The local index, with maturin, setuptools-rust and their dependencies added."""
    folder = tmp_path_factory.mktemp("rust-wheels")
    local_index.add(*(wheel_from_installed(name, folder) for name in RUST_WHEELS))
    return local_index


@pytest.fixture(scope="module")
def crate_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A crate folder holding ``tinyadd-0.1.0.crate``, and the crate's sha256."""
    folder = tmp_path_factory.mktemp("crates")
    _, digest = make_crate(folder)
    return folder, digest


@pytest.fixture
def one_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build for the running Python only."""
    monkeypatch.setenv("FROMSOURCE_BUILD_PYTHONS", PYTHON)
    monkeypatch.delenv("FROMSOURCE_CRATES", raising=False)


def run(data: Path, *args: str) -> int:
    return main(["--data-dir", str(data), *args])


def _build(
    data: Path, requirement: str, upstream: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    """``fromsource build REQUIREMENT --format json``: its exit code and the one build."""
    code = run(data, "build", requirement, "--upstream", upstream, "--format", "json")
    (built,) = json.loads(capsys.readouterr().out)["builds"]
    return code, built


def _published(data: Path, project: str) -> tuple[Path, Attestation, dict[str, Any]]:
    """The published wheel of *project*, its verified attestation and its SBOM."""
    db = open_database(f"sqlite:///{data / 'fromsource.db'}")
    try:
        (info,) = [f for f in project_files(db, "python", project) if f.kind == "wheel"]
    finally:
        db.dispose()
    blobs = FileBlobStore(data / "blobs")
    assert info.provenance_sha256 and info.sbom_sha256
    key = load_or_create_signing_key(data / "keys")
    attestation, _ = verify_attestation(
        blobs.read_bytes(info.provenance_sha256), {key.keyid: key.public}
    )
    wheel = blobs.local_path(info.sha256)
    assert wheel is not None
    return wheel, attestation, json.loads(blobs.read_bytes(info.sbom_sha256))


@pytest.fixture
def serve() -> Iterator[Callable[[Path], str]]:
    """Start the real index over a data dir; its ``python`` simple URL with a token in it."""
    servers = []

    def start(data: Path) -> str:
        server = start_server(data)
        servers.append(server)
        return server.cred_url("python", server.token("python"))

    yield start
    for server in servers:
        stop_server(server)


def _install_and_run(
    venv_factory: Callable[[str], Path], index: str, wheels: Path, requirement: str, code: str
) -> str:
    """pip-install *requirement* from *index* (runtime dependencies from *wheels*) and run *code*."""
    python = str(venv_factory("rust-install") / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-cache-dir", "--index-url", index,
         "--find-links", str(wheels), requirement],
        check=True,
    )  # fmt: skip
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


_IMPORT = {
    "maturin": "from rustadd_maturin import lib; print(lib.rustadd(2, 40))",
    "setuptools-rust": "from rustadd_setuptools import add; print(add(2, 40))",
}


@pytest.mark.parametrize("backend", ["maturin", "setuptools-rust"])
def test_a_rust_package_builds_offline_installs_and_rebuilds_bit_for_bit(
    tmp_path: Path,
    rust_index: LocalIndex,
    crate_folder: tuple[Path, str],
    venv_factory: Callable[[str], Path],
    serve: Callable[[Path], str],
    one_target: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    backend: RustBackend,
) -> None:
    folder, digest = crate_folder
    name = "rustadd-maturin" if backend == "maturin" else "rustadd-setuptools"
    rust_index.add(
        rust_sdist(tmp_path / "sdist", name, backend, pins=[("tinyadd", "0.1.0", digest)])
    )
    data = tmp_path / "data"
    monkeypatch.setenv("FROMSOURCE_CRATES", str(folder))

    code, built = _build(data, f"{name}==1.0", rust_index.url, capsys)
    assert (code, built["status"]) == (0, "succeeded"), built["message"]
    wheel, attestation, sbom = _published(data, name)

    # Every crate is an SBOM component and a resolved dependency, the toolchain is recorded.
    crates = [c for c in sbom["components"] if c["purl"].startswith("pkg:cargo/")]
    assert [(c["purl"], c["hashes"]) for c in crates] == [
        ("pkg:cargo/tinyadd@0.1.0", [{"alg": "SHA-256", "content": digest}])
    ]
    (crate,) = attestation.bundled
    assert (crate.purl, crate.sha256, crate.name) == (
        "pkg:cargo/tinyadd@0.1.0",
        digest,
        "tinyadd-0.1.0.crate",
    )
    rust = attestation.raw["predicate"]["buildDefinition"]["internalParameters"]["rust"]
    assert rust["crate_origin"] == "crate-source" and rust["backend"] == backend
    assert rust["toolchain"]["rustc"].startswith("rustc ") and rust["toolchain"]["cargo"]
    assert attestation.sandbox["network"] == "none"
    with zipfile.ZipFile(wheel) as archive:
        (embedded,) = [n for n in archive.namelist() if n.endswith(SBOM_PATH)]
        assert json.loads(archive.read(embedded)) == sbom
    # The .crate is kept like the sdist: fsck counts it as referenced, not an orphan.
    assert run(data, "fsck", "--format", "json", "--skip-digests") == 0
    assert digest not in {o["digest"] for o in json.loads(capsys.readouterr().out)["orphans"]}

    # rebuild --check takes the crate from the blob store: no crate source is set now.
    monkeypatch.delenv("FROMSOURCE_CRATES")
    args = ["rebuild", "--check", f"{name}==1.0", "--upstream", rust_index.url, "--format", "json"]
    assert run(data, *args) == 0
    report = json.loads(capsys.readouterr().out)
    (check,) = report["checks"]
    assert report["identical"] is True, check
    assert check["rebuilt_sha256"] == check["reference_sha256"] == built["sha256"]

    runtime = tmp_path / "runtime-wheels"
    for distribution in ("cffi", "pycparser"):
        wheel_from_installed(distribution, runtime)
    index = serve(data)
    assert _install_and_run(venv_factory, index, runtime, f"{name}==1.0", _IMPORT[backend]) == "42"

    # A recorded crate gone from the blob store: the check says so before building anything.
    FileBlobStore(data / "blobs").delete(Sha256(digest))
    assert run(data, *args) == 2
    assert f"crate tinyadd 0.1.0 (sha256 {digest})" in capsys.readouterr().err


def test_crates_vendored_in_the_sdist_build_with_no_crate_source(
    tmp_path: Path,
    rust_index: LocalIndex,
    crate_folder: tuple[Path, str],
    one_target: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, digest = crate_folder
    config = (
        '[source.crates-io]\nreplace-with = "vendored-sources"\n\n'
        '[source.vendored-sources]\ndirectory = "include/cargo"\n'
    )
    source = tmp_path / "source"
    name = "rustadd-vendored"
    sdist = rust_sdist(
        source,
        name,
        "setuptools-rust",
        pins=[("tinyadd", "0.1.0", digest)],
        extra_files={".cargo/config.toml": config},
    )
    # Re-pack the sdist with the crate vendored, as orjson ships its crates.
    tree = unpack_sdist(sdist, tmp_path / "unpacked").root
    vendor_crate(tree / "include" / "cargo", "tinyadd", "0.1.0", digest)
    sdist.unlink()
    shutil.make_archive(str(sdist).removesuffix(".tar.gz"), "gztar", tree.parent, tree.name)
    rust_index.add(sdist)
    data = tmp_path / "data"
    code, built = _build(data, f"{name}==1.0", rust_index.url, capsys)
    assert (code, built["status"]) == (0, "succeeded"), built["message"]
    _, attestation, _ = _published(data, name)
    rust = attestation.raw["predicate"]["buildDefinition"]["internalParameters"]["rust"]
    assert rust["crate_origin"] == "sdist" and rust["vendored"] == "include/cargo"
    (crate,) = attestation.bundled
    assert crate.sha256 == digest
    assert dict(crate.properties)["fromsource:crate-origin"] == "vendored in the sdist"


def _refused(
    tmp_path: Path,
    index: LocalIndex,
    name: str,
    capsys: pytest.CaptureFixture[str],
    **sdist: object,
) -> dict[str, Any]:
    """Build *name* (written with *sdist* options); the failed build, after checking nothing
    was published."""
    index.add(rust_sdist(tmp_path / "sdist", name, "maturin", **sdist))  # type: ignore[arg-type]
    data = tmp_path / "data"
    code, built = _build(data, f"{name}==1.0", index.url, capsys)
    assert (code, built["status"]) == (1, "failed")
    assert "build" not in built["steps"]  # refused before the sandbox
    db = open_database(f"sqlite:///{data / 'fromsource.db'}")
    try:
        assert project_files(db, "python", name) == []
    finally:
        db.dispose()
    return built


def test_a_crate_whose_checksum_is_not_the_locks_is_refused_naming_it(
    tmp_path: Path,
    rust_index: LocalIndex,
    crate_folder: tuple[Path, str],
    one_target: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, digest = crate_folder
    monkeypatch.setenv("FROMSOURCE_CRATES", str(folder))
    wrong = "0" * 64
    built = _refused(
        tmp_path, rust_index, "rustadd-badsum", capsys, pins=[("tinyadd", "0.1.0", wrong)]
    )
    assert built["category"] == "crate-checksum-mismatch"
    message = str(built["message"])
    assert message.startswith("crate-checksum-mismatch: tinyadd 0.1.0: ")
    assert digest in message and wrong in message


def test_a_crate_missing_from_the_source_is_refused_as_crates_unavailable(
    tmp_path: Path,
    rust_index: LocalIndex,
    crate_folder: tuple[Path, str],
    one_target: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, _ = crate_folder
    monkeypatch.setenv("FROMSOURCE_CRATES", str(folder))
    built = _refused(
        tmp_path,
        rust_index,
        "rustadd-missing",
        capsys,
        crate=("tinymul", "0.2.0"),
        pins=[("tinymul", "0.2.0", "ab" * 32)],
    )
    assert built["category"] == "crates-unavailable"
    assert str(built["message"]).startswith("crates-unavailable: tinymul 0.2.0: ")
    assert "FROMSOURCE_CRATES" in str(built["message"])


def test_a_rust_backend_only_the_backend_asks_for_without_a_lock_is_unlocked_crates(
    tmp_path: Path,
    rust_index: LocalIndex,
    one_target: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "rustadd-dynamic"
    hooks = _minimal_backend(name, "1.0").replace(
        "def get_requires_for_build_wheel(config_settings=None):\n    return []",
        "def get_requires_for_build_wheel(config_settings=None):\n    return ['maturin>=1']",
    )
    assert "maturin" in hooks
    cargo = '[package]\nname = "rustadd_dynamic"\nversion = "1.0.0"\nedition = "2021"\n'
    sdist = make_sdist(
        tmp_path / "sdist",
        name,
        backend="in-tree",
        backend_code=hooks,
        extra_files={"Cargo.toml": cargo, "src/lib.rs": ""},
    )
    rust_index.add(sdist)
    code, built = _build(tmp_path / "data", f"{name}==1.0", rust_index.url, capsys)
    assert (code, built["status"], built["category"]) == (1, "failed", "unlocked-crates")
    assert "ships no Cargo.lock" in built["message"]


@pytest.mark.network
def test_orjson_builds_from_the_crates_its_sdist_vendors(
    tmp_path: Path,
    venv_factory: Callable[[str], Path],
    serve: Callable[[Path], str],
    one_target: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """orjson's sdist vendors its crates (include/cargo): built offline, reproducible, imported.

    Through the pipeline, for one target, with the upstream of the settings.
    """
    data = tmp_path / "data"
    code, built = _build(data, "orjson", upstream_url(Settings()), capsys)
    assert (code, built["status"]) == (0, "succeeded"), built["message"]
    _, attestation, sbom = _published(data, "orjson")
    rust = attestation.raw["predicate"]["buildDefinition"]["internalParameters"]["rust"]
    assert rust["crate_origin"] == "sdist" and rust["vendored"] == "include/cargo"
    purls = {c["purl"] for c in sbom["components"]}
    assert attestation.bundled and {c.purl for c in attestation.bundled} <= purls

    version = built["version"]
    args = ["rebuild", "--check", f"orjson=={version}", "--format", "json"]
    assert run(data, *args, "--upstream", upstream_url(Settings())) == 0
    assert json.loads(capsys.readouterr().out)["identical"] is True

    script = "import orjson; print(orjson.dumps({'a': [1, None]}).decode())"
    index = serve(data)
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    assert _install_and_run(venv_factory, index, empty, f"orjson=={version}", script) == (
        '{"a":[1,null]}'
    )
