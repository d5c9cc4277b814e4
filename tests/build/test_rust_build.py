"""Rust-backed packages built offline in the real sandbox (issue 13).

Each test package has a cdylib that depends on ``tinyadd``, a crate the test
writes and serves from a crate folder (or vendors in the sdist); maturin and
setuptools-rust come from the local index like every build dependency.  The
crates are prepared as :func:`fromsource.build.crate_fetch.prepare_crates`
does for the pipeline, and wired into the build environment by hand here the
way the pipeline's build step is to do it: binds, environment, SBOM.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from fromsource.build.crate_fetch import CrateFolder, CrateSource, prepare_crates
from fromsource.build.crates import CrateSet
from fromsource.build.deps import Resolver, check_requirements, uv_binary
from fromsource.build.normalize import normalize_wheel
from fromsource.build.pep517 import BuildEnvironment, read_build_system
from fromsource.build.rust_toolchain import find_toolchain
from fromsource.build.sandbox import SandboxLimits, tool_available
from fromsource.build.unpack import unpack_sdist
from fromsource.build.upstream import Upstream
from fromsource.build.wheelcache import WheelCache
from fromsource.config import Settings, upstream_url
from fromsource.errors import ToolchainError
from fromsource.provenance.sbom import SBOM_PATH, SbomInput, build_sbom
from tests.build.rust_packages import RustBackend, make_crate, rust_sdist, vendor_crate
from tests.packages import LocalIndex, local_index, wheel_from_installed  # noqa: F401

RUST_WHEELS = ("maturin", "setuptools-rust", "semantic-version", "cffi", "pycparser")
"""The Rust backends and what they need, as installed in the test venv (requirements/dev.lock)."""


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


def _build(
    work: Path, sdist: Path, index_url: str, sources: Sequence[CrateSource]
) -> tuple[Path, CrateSet, bytes]:
    """Build *sdist* in the bwrap sandbox as the pipeline does; the final wheel, crates, SBOM.

    Build dependencies are resolved against the index at *index_url*.
    """
    tree, epoch = unpack_sdist(sdist, work / "build" / "src")
    system = read_build_system(tree)
    requirements = check_requirements(system.requires, what=sdist.name)
    resolver = Resolver(
        upstream_url=index_url, work_dir=work / "resolve", uv_cache=work.parent / "uv-cache"
    )
    wheels = resolver.resolve(requirements, what=sdist.name)
    env = BuildEnvironment(
        work,
        tool="bwrap",
        limits=SandboxLimits(timeout_seconds=600),
        epoch=epoch,
        uv=uv_binary(),
    )
    crates = prepare_crates(
        tree, work / "rust", sandbox=env.sandbox, requires=system.requires, sources=sources
    )
    assert crates is not None
    # The wiring the pipeline's build step is to do (issue 13).
    env.sandbox.binds += crates.sandbox_binds()
    env.env = crates.env(env.env)
    cache = WheelCache(work.parent / "wheel-cache", Upstream(index_url, tries=1))
    env.create_venv()
    env.install(cache.wheelhouse(wheels, env.wheelhouse))
    extra = check_requirements(env.get_requires(tree, system), what=sdist.name)
    if extra:
        wheels = resolver.resolve([*requirements, *extra], what=sdist.name)
        env.install(cache.wheelhouse(wheels, env.wheelhouse))
    raw = env.build_wheel(tree, system, work / "dist" / "raw")
    sbom = build_sbom(
        SbomInput(
            project=sdist.name.split("-")[0],
            version="1.0",
            wheel_filename=raw.name,
            sdist_url=f"{index_url}{sdist.name}",
            sdist_sha256=hashlib.sha256(sdist.read_bytes()).hexdigest(),
            dependencies=tuple(w.dependency() for w in wheels),
            patches=(),
            epoch=epoch,
            bundled=crates.sbom_components(),
        )
    )
    final = normalize_wheel(raw, work / "dist" / "final", epoch=epoch, add_files={SBOM_PATH: sbom})
    return final, crates, sbom


def _install_and_run(
    venv_factory: Callable[[str], Path], wheel: Path, wheels: Path, code: str
) -> str:
    venv = venv_factory("rust-install")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index"]
    subprocess.run([*pip, "--find-links", str(wheels), str(wheel)], check=True)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


_IMPORT = {
    "maturin": "from rustadd_maturin import lib; print(lib.rustadd(2, 40))",
    "setuptools-rust": "from rustadd_setuptools import add; print(add(2, 40))",
}


@pytest.mark.parametrize("backend", ["maturin", "setuptools-rust"])
def test_a_rust_package_builds_offline_installs_and_is_reproducible(
    tmp_path: Path,
    rust_index: LocalIndex,
    crate_folder: tuple[Path, str],
    venv_factory: Callable[[str], Path],
    backend: RustBackend,
) -> None:
    folder, digest = crate_folder
    name = "rustadd-maturin" if backend == "maturin" else "rustadd-setuptools"
    sdist = rust_sdist(tmp_path / "sdist", name, backend, pins=[("tinyadd", "0.1.0", digest)])
    sources = [CrateFolder(folder)]
    first, crates, sbom = _build(tmp_path / "one", sdist, rust_index.url, sources)
    # Another host path, the same fixed paths inside: the same bytes.
    second, _, _ = _build(tmp_path / "elsewhere" / "two", sdist, rust_index.url, sources)
    assert first.name == second.name
    assert first.read_bytes() == second.read_bytes()

    assert [(c.name, c.version, c.checksum) for c in crates.crates] == [
        ("tinyadd", "0.1.0", digest)
    ]
    components = json.loads(sbom)["components"]
    (crate,) = [c for c in components if c["purl"].startswith("pkg:cargo/")]
    assert crate["purl"] == "pkg:cargo/tinyadd@0.1.0"
    assert crate["hashes"] == [{"alg": "SHA-256", "content": digest}]
    with zipfile.ZipFile(first) as wheel:
        embedded = [n for n in wheel.namelist() if n.endswith(SBOM_PATH)]
        assert embedded and wheel.read(embedded[0]) == sbom

    wheels = tmp_path / "runtime-wheels"
    wheels.mkdir()
    for runtime in ("cffi", "pycparser"):
        wheel_from_installed(runtime, wheels)
    assert _install_and_run(venv_factory, first, wheels, _IMPORT[backend]) == "42"


def test_crates_vendored_in_the_sdist_build_with_no_crate_source(
    tmp_path: Path, rust_index: LocalIndex, crate_folder: tuple[Path, str]
) -> None:
    _, digest = crate_folder
    config = (
        '[source.crates-io]\nreplace-with = "vendored-sources"\n\n'
        '[source.vendored-sources]\ndirectory = "include/cargo"\n'
    )
    source = tmp_path / "source"
    sdist = rust_sdist(
        source,
        "rustadd-setuptools",
        "setuptools-rust",
        pins=[("tinyadd", "0.1.0", digest)],
        extra_files={".cargo/config.toml": config},
    )
    # Re-pack the sdist with the crate vendored, as orjson ships its crates.
    tree = unpack_sdist(sdist, tmp_path / "unpacked").root
    vendor_crate(tree / "include" / "cargo", "tinyadd", "0.1.0", digest)
    sdist.unlink()
    shutil.make_archive(str(sdist).removesuffix(".tar.gz"), "gztar", tree.parent, tree.name)
    wheel, crates, _ = _build(tmp_path / "work", sdist, rust_index.url, sources=[])
    assert crates.origin == "sdist" and crates.vendored == "include/cargo"
    assert wheel.name.startswith("rustadd_setuptools-1.0-")


@pytest.mark.network
def test_orjson_builds_from_the_crates_its_sdist_vendors(
    tmp_path: Path, venv_factory: Callable[[str], Path]
) -> None:
    """orjson's sdist vendors its crates (include/cargo): built offline, reproducible, imported.

    Measured by hand on orjson 3.13.0 (2 shared cores): 82 s and 54 s, the same sha256.
    """
    url = upstream_url(Settings())
    with Upstream(url) as upstream:
        version = upstream.latest_version("orjson")
        sdist = upstream.download(upstream.find_sdist("orjson", version), tmp_path / "sdist")
    first, crates, sbom = _build(tmp_path / "one", sdist, url, sources=[])
    second, _, _ = _build(tmp_path / "elsewhere" / "two", sdist, url, sources=[])
    assert crates.origin == "sdist" and crates.vendored == "include/cargo"
    assert first.read_bytes() == second.read_bytes()
    purls = {c["purl"] for c in json.loads(sbom)["components"]}
    assert {c.purl for c in crates.crates} <= purls
    code = "import orjson; print(orjson.dumps({'a': [1, None]}).decode())"
    assert _install_and_run(venv_factory, first, tmp_path, code) == '{"a":[1,null]}'
