"""Rust crates, the pure part: what a Cargo.lock pins, cargo's files, a CrateSet's answers."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest

from fromsource.build.crates import (
    CARGO_HOME_ROOT,
    CRATES_ROOT,
    RUST_ROOT,
    CrateSet,
    LockedCrate,
    cargo_config,
    cargo_wrapper,
    parse_cargo_lock,
    registry_crates,
    rust_backend,
    rustc_wrapper,
)
from fromsource.build.outcome import CATEGORIES, categorize
from fromsource.build.rust_toolchain import Toolchain, parse_rustc_version
from fromsource.build.sandbox import BUILD_ROOT
from fromsource.errors import CrateError
from fromsource.provenance.sbom import SbomInput, build_sbom

REGISTRY = "registry+https://registry.invalid/index"
SUM_A = "a" * 64
SUM_B = "b" * 64

LOCK_V4 = f"""\
version = 4

[[package]]
name = "mypkg"
version = "1.0.0"
dependencies = ["tinyadd", "helper", "gitdep"]

[[package]]
name = "helper"
version = "0.1.0"

[[package]]
name = "tinyadd"
version = "0.1.0"
source = "{REGISTRY}"
checksum = "{SUM_A}"

[[package]]
name = "gitdep"
version = "2.0.0"
source = "git+https://git.invalid/gitdep#0123456789abcdef"
"""

TOOLCHAIN = Toolchain(
    root=Path("/opt/rust"),
    rustc_version="rustc 1.95.0 (59807616e 2026-04-14)",
    cargo_version="cargo 1.95.0 (f2d3ce0bd 2026-03-21)",
    host="x86_64-unknown-linux-gnu",
    release="1.95.0",
    commit="59807616e1fa2540724bfbac14d7976d7e4a3860",
    llvm="22.1.2",
)


def test_a_lock_pins_registry_and_git_crates_but_not_path_ones() -> None:
    crates = parse_cargo_lock(LOCK_V4, "mypkg/Cargo.lock")
    assert crates == (
        LockedCrate("tinyadd", "0.1.0", REGISTRY, SUM_A),
        LockedCrate("gitdep", "2.0.0", "git+https://git.invalid/gitdep#0123456789abcdef", None),
    )
    assert [c.kind for c in crates] == ["registry", "git"]
    assert crates[0].purl == "pkg:cargo/tinyadd@0.1.0"
    assert crates[0].filename == "tinyadd-0.1.0.crate"


def test_a_version_1_lock_keeps_its_checksums_in_metadata() -> None:
    lock = (
        f'[[package]]\nname = "tinyadd"\nversion = "0.1.0"\nsource = "{REGISTRY}"\n\n'
        f'[metadata]\n"checksum tinyadd 0.1.0 ({REGISTRY})" = "{SUM_B}"\n'
    )
    assert parse_cargo_lock(lock, "Cargo.lock")[0].checksum == SUM_B


@pytest.mark.parametrize(
    "lock",
    [
        f'[[package]]\nname = "tinyadd"\nversion = "0.1.0"\nsource = "{REGISTRY}"\n',
        (
            f'[[package]]\nname = "tinyadd"\nversion = "0.1.0"\nsource = "{REGISTRY}"\n'
            'checksum = "not-a-digest"\n'
        ),
    ],
)
def test_a_registry_crate_without_a_checksum_is_unlocked(lock: str) -> None:
    with pytest.raises(CrateError) as info:
        parse_cargo_lock(lock, "pkg/Cargo.lock")
    assert info.value.facts["category"] == "unlocked-crates"
    assert "tinyadd 0.1.0" in info.value.message and "pkg/Cargo.lock" in info.value.message


def test_a_lock_that_is_not_toml_is_refused() -> None:
    with pytest.raises(CrateError) as info:
        parse_cargo_lock("[[package]\n", "pkg/Cargo.lock")
    assert info.value.facts["category"] == "unlocked-crates"


def test_crates_of_several_locks_are_merged_and_conflicts_refused() -> None:
    one = LockedCrate("tinyadd", "0.1.0", REGISTRY, SUM_A)
    other = LockedCrate("aaa", "1.0.0", REGISTRY, SUM_B)
    assert registry_crates([one, other, one], "pkg") == (other, one)
    with pytest.raises(CrateError) as info:
        registry_crates([one, LockedCrate("tinyadd", "0.1.0", REGISTRY, SUM_B)], "pkg")
    assert info.value.facts["category"] == "crate-checksum-mismatch"
    assert info.value.message.startswith("crate-checksum-mismatch: tinyadd 0.1.0")


def test_crates_from_a_second_registry_are_refused_naming_one() -> None:
    crates = [
        LockedCrate("tinyadd", "0.1.0", REGISTRY, SUM_A),
        LockedCrate("other", "3.0.0", "sparse+https://second.invalid/", SUM_B),
    ]
    with pytest.raises(CrateError) as info:
        registry_crates(crates, "pkg")
    assert info.value.facts["category"] == "crates-unavailable"
    assert info.value.message.startswith("crates-unavailable: ")
    assert info.value.facts["crate"] in {"tinyadd", "other"}


def test_rust_backends_are_told_by_the_build_requirements() -> None:
    assert rust_backend(["maturin>=1,<2"]) == "maturin"
    assert rust_backend(["setuptools>=62", "setuptools_rust>=1.5"]) == "setuptools-rust"
    assert rust_backend(["setuptools", "not a requirement!"]) is None


def test_the_cargo_config_replaces_the_default_registry_and_stays_offline() -> None:
    config = tomllib.loads(cargo_config("/fromsource/crates"))
    replacement = config["source"]["crates-io"]["replace-with"]
    assert config["source"][replacement] == {"directory": "/fromsource/crates"}
    assert config["net"] == {"offline": True}
    # When the sdist vendors with its own config, ours must not replace anything.
    assert tomllib.loads(cargo_config(None)) == {"net": {"offline": True}}
    assert tomllib.loads(cargo_config('/odd "path"'))["source"][replacement]["directory"] == (
        '/odd "path"'
    )


def _echo(path: Path) -> Path:
    path.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    path.chmod(0o755)
    return path


def test_the_cargo_wrapper_is_always_locked_and_offline(tmp_path: Path) -> None:
    cargo = _echo(tmp_path / "real cargo")
    wrapper = tmp_path / "cargo"
    wrapper.write_text(cargo_wrapper(str(cargo)))
    wrapper.chmod(0o755)
    out = subprocess.run(
        [wrapper, "build", "--release"], capture_output=True, text=True, check=True
    )
    assert out.stdout.split("\n")[:4] == ["--locked", "--offline", "build", "--release"]


def test_the_rustc_wrapper_adds_the_remaps_before_the_build_s_own_flags(tmp_path: Path) -> None:
    rustc = _echo(tmp_path / "rustc")
    wrapper = tmp_path / "rustc-remap"
    wrapper.write_text(rustc_wrapper([("/host/build dir", BUILD_ROOT), ("/h/crates", CRATES_ROOT)]))
    wrapper.chmod(0o755)
    out = subprocess.run(
        [wrapper, rustc, "--crate-name", "x"], capture_output=True, text=True, check=True
    )
    assert out.stdout.split("\n")[:4] == [
        f"--remap-path-prefix=/host/build dir={BUILD_ROOT}",
        f"--remap-path-prefix=/h/crates={CRATES_ROOT}",
        "--crate-name",
        "x",
    ]


def _crate_set(tmp_path: Path, *, fixed: bool, checksum: str = SUM_A) -> CrateSet:
    return CrateSet(
        backend="maturin",
        locks=("Cargo.lock",),
        crates=(LockedCrate("tinyadd", "0.1.0", REGISTRY, checksum),),
        origin="crate-source",
        toolchain=TOOLCHAIN,
        cargo_home=tmp_path / "cargo-home",
        vendor=tmp_path / "vendor",
        build_root=BUILD_ROOT if fixed else str(tmp_path / "build"),
        fixed=fixed,
    )


def test_a_crate_set_points_cargo_at_fixed_paths_in_bubblewrap(tmp_path: Path) -> None:
    crates = _crate_set(tmp_path, fixed=True)
    env = crates.env({"PATH": "/fromsource/tools/bin:/usr/bin", "SOURCE_DATE_EPOCH": "1"})
    assert env["PATH"] == f"{CARGO_HOME_ROOT}/bin:{RUST_ROOT}/bin:/fromsource/tools/bin:/usr/bin"
    assert env["CARGO_HOME"] == CARGO_HOME_ROOT and env["CARGO"] == f"{CARGO_HOME_ROOT}/bin/cargo"
    assert env["RUSTC"] == f"{RUST_ROOT}/bin/rustc"
    assert env["RUSTC_WRAPPER"] == f"{CARGO_HOME_ROOT}/bin/rustc-remap"
    assert env["CARGO_TARGET_DIR"] == f"{BUILD_ROOT}/cargo-target"
    assert env["SOURCE_DATE_EPOCH"] == "1" and env["CARGO_NET_OFFLINE"] == "true"
    binds = {b.target: b for b in crates.sandbox_binds()}
    assert binds[f"{RUST_ROOT}/bin"].source == Path("/opt/rust/bin")
    assert binds[f"{RUST_ROOT}/lib"].source == Path("/opt/rust/lib")
    assert binds[CRATES_ROOT].source == tmp_path / "vendor"
    assert not any(b.writable for b in binds.values())
    assert all(a == b for a, b in crates.remaps())


def test_without_fixed_paths_the_host_paths_are_remapped(tmp_path: Path) -> None:
    crates = _crate_set(tmp_path, fixed=False)
    assert crates.sandbox_binds() == ()
    assert crates.env({})["CARGO_HOME"] == str(tmp_path / "cargo-home")
    assert dict(crates.remaps()) == {
        str(tmp_path / "build"): BUILD_ROOT,
        str(tmp_path / "cargo-home"): CARGO_HOME_ROOT,
        "/opt/rust": RUST_ROOT,
        str(tmp_path / "vendor"): CRATES_ROOT,
    }


def test_crates_and_toolchain_are_part_of_the_build_key(tmp_path: Path) -> None:
    parts = dict(_crate_set(tmp_path, fixed=True).key_parts())
    assert parts["crate:tinyadd-0.1.0"] == SUM_A
    assert "59807616e1fa2540724bfbac14d7976d7e4a3860" in parts["rust:toolchain"]
    assert "cargo 1.95.0" in parts["rust:toolchain"]
    other = dict(_crate_set(tmp_path, fixed=True, checksum=SUM_B).key_parts())
    assert other["crate:tinyadd-0.1.0"] == SUM_B


def test_every_crate_is_an_sbom_component_and_a_resolved_dependency(tmp_path: Path) -> None:
    crates = _crate_set(tmp_path, fixed=True)
    sbom = json.loads(
        build_sbom(
            SbomInput(
                project="rustadd",
                version="1.0",
                wheel_filename="rustadd-1.0-cp311-cp311-linux_x86_64.whl",
                sdist_url="http://127.0.0.1/rustadd-1.0.tar.gz",
                sdist_sha256="c" * 64,
                dependencies=(),
                patches=(),
                epoch=1609459200,
                bundled=crates.sbom_components(),
            )
        )
    )
    (component,) = sbom["components"]
    assert component["purl"] == "pkg:cargo/tinyadd@0.1.0"
    assert component["hashes"] == [{"alg": "SHA-256", "content": SUM_A}]
    assert component["scope"] == "required"
    props = {p["name"]: p["value"] for p in component["properties"]}
    assert props["fromsource:crate-origin"] == "crate source"
    edges = {d["ref"]: d.get("dependsOn", []) for d in sbom["dependencies"]}
    assert edges[sbom["metadata"]["component"]["bom-ref"]] == [component["bom-ref"]]
    (bundled,) = crates.sbom_components()
    assert bundled.name == "tinyadd-0.1.0.crate"  # its name among the resolved dependencies
    assert "crates" not in crates.provenance_facts()
    assert crates.provenance_facts()["crate_origin"] == "crate-source"


def test_rustc_version_output_is_read() -> None:
    first, fields = parse_rustc_version(
        "rustc 1.95.0 (59807616e 2026-04-14)\nbinary: rustc\nhost: x86_64-unknown-linux-gnu\n"
        "LLVM version: 22.1.2\n"
    )
    assert first == "rustc 1.95.0 (59807616e 2026-04-14)"
    assert fields["host"] == "x86_64-unknown-linux-gnu" and fields["LLVM version"] == "22.1.2"


def test_the_new_categories_are_known_and_kept_by_categorize() -> None:
    for category in ("unlocked-crates", "crates-unavailable", "crate-checksum-mismatch"):
        assert category in CATEGORIES
        error = CrateError("x", category=category)
        assert categorize(error, "cargo build failed", ["maturin"]) == category
    assert "rust-toolchain-unavailable" in CATEGORIES
