"""Rust crates on the host: found in a crate folder or the sdist, checked against Cargo.lock."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import tomllib
from pathlib import Path

import pytest

from fromsource.build.crate_fetch import BlobCrates, CrateFolder, archive_crates, prepare_crates
from fromsource.build.crates import CARGO_HOME_ROOT, CRATES_ROOT, RUST_ROOT, CrateSet
from fromsource.build.rust_toolchain import Toolchain
from fromsource.build.sandbox import BUILD_ROOT, Sandbox, Tool
from fromsource.build.unpack import unpack_sdist
from fromsource.dist.names import Sha256
from fromsource.errors import CrateError, UnsafeArchiveError
from fromsource.store.blobs import FileBlobStore
from tests.build.rust_packages import (
    RustBackend,
    cargo_lock,
    make_crate,
    registry_source,
    rust_sdist,
    vendor_crate,
)

TOOLCHAIN = Toolchain(
    root=Path("/opt/rust"),
    rustc_version="rustc 1.95.0 (59807616e 2026-04-14)",
    cargo_version="cargo 1.95.0 (f2d3ce0bd 2026-03-21)",
    host="x86_64-unknown-linux-gnu",
    release="1.95.0",
    commit="59807616e1fa2540724bfbac14d7976d7e4a3860",
    llvm="22.1.2",
)
WRONG = "0" * 64


def _tree(tmp_path: Path, backend: RustBackend = "maturin", **kwargs: object) -> Path:
    sdist = rust_sdist(tmp_path / "sdist", "rustadd", backend, **kwargs)  # type: ignore[arg-type]
    return unpack_sdist(sdist, tmp_path / "work" / "build" / "src").root


def _prepare(
    tmp_path: Path, tree: Path, *sources: CrateFolder | BlobCrates, tool: Tool = "bwrap"
) -> CrateSet | None:
    work = tmp_path / "work"
    return prepare_crates(
        tree,
        work / "rust",
        sandbox=Sandbox(work / "build", tool=tool),
        requires=["maturin>=1,<2"],
        sources=sources,
        toolchain=TOOLCHAIN,
    )


def test_crates_come_from_the_crate_folder_checked_and_vendored(tmp_path: Path) -> None:
    crate, digest = make_crate(tmp_path / "crates")
    tree = _tree(tmp_path, pins=[("tinyadd", "0.1.0", digest)])
    crates = _prepare(tmp_path, tree, CrateFolder(tmp_path / "crates"))
    assert crates is not None
    assert [(c.name, c.version, c.checksum) for c in crates.crates] == [
        ("tinyadd", "0.1.0", digest)
    ]
    assert crates.origin == "crate-source" and crates.backend == "maturin"
    assert crates.archives == ((crates.crates[0], crate),)
    vendored = tmp_path / "work" / "rust" / "vendor" / "tinyadd-0.1.0"
    sums = json.loads((vendored / ".cargo-checksum.json").read_text())
    assert sums["package"] == digest and set(sums["files"]) == {"Cargo.toml", "src/lib.rs"}
    home = tmp_path / "work" / "rust" / "cargo-home"
    config = tomllib.loads((home / "config.toml").read_text())
    assert config["source"]["fromsource-crates"]["directory"] == CRATES_ROOT
    assert f"{RUST_ROOT}/bin/cargo --locked --offline" in (home / "bin" / "cargo").read_text()
    assert (home / "bin" / "rustc-remap").stat().st_mode & 0o111
    assert crates.vendor_inside == CRATES_ROOT and crates.cargo_home_inside == CARGO_HOME_ROOT


def test_without_a_fixed_path_cargo_is_given_host_paths(tmp_path: Path) -> None:
    _, digest = make_crate(tmp_path / "crates")
    tree = _tree(tmp_path, pins=[("tinyadd", "0.1.0", digest)])
    crates = _prepare(tmp_path, tree, CrateFolder(tmp_path / "crates"), tool="none")
    assert crates is not None and crates.build_root == str((tmp_path / "work" / "build").resolve())
    home = tmp_path / "work" / "rust" / "cargo-home"
    config = tomllib.loads((home / "config.toml").read_text())
    assert config["source"]["fromsource-crates"]["directory"] == str(
        tmp_path / "work" / "rust" / "vendor"
    )
    assert "/opt/rust/bin/cargo" in (home / "bin" / "cargo").read_text()
    remaps = (home / "bin" / "rustc-remap").read_text()
    assert f"--remap-path-prefix={crates.build_root}={BUILD_ROOT}" in remaps


def test_a_lock_whose_checksum_does_not_match_is_refused_naming_the_crate(
    tmp_path: Path,
) -> None:
    make_crate(tmp_path / "crates")
    tree = _tree(tmp_path, pins=[("tinyadd", "0.1.0", WRONG)])
    with pytest.raises(CrateError) as info:
        _prepare(tmp_path, tree, CrateFolder(tmp_path / "crates"))
    assert info.value.facts["category"] == "crate-checksum-mismatch"
    assert info.value.message.startswith("crate-checksum-mismatch: tinyadd 0.1.0: ")
    assert WRONG in info.value.message
    assert (info.value.facts["crate"], info.value.facts["version"]) == ("tinyadd", "0.1.0")


def test_a_crate_missing_from_every_source_is_refused_naming_it(tmp_path: Path) -> None:
    _, digest = make_crate(tmp_path / "elsewhere")
    tree = _tree(tmp_path, pins=[("tinyadd", "0.1.0", digest), ("zzz", "9.9.9", WRONG)])
    (tmp_path / "crates").mkdir()
    blobs = FileBlobStore(tmp_path / "blobs")
    with pytest.raises(CrateError) as info:
        _prepare(tmp_path, tree, BlobCrates(blobs), CrateFolder(tmp_path / "crates"))
    assert info.value.facts["category"] == "crates-unavailable"
    assert info.value.message.startswith(
        "crates-unavailable: tinyadd 0.1.0 (and 1 more: zzz 9.9.9)"
    )
    assert "the blob store or the crate folder" in info.value.message
    assert info.value.facts["missing"] == [
        {"name": "tinyadd", "version": "0.1.0"},
        {"name": "zzz", "version": "9.9.9"},
    ]
    assert not (tmp_path / "work" / "rust" / "cargo-home").exists()


def test_a_crate_archived_in_the_blob_store_is_used_again(tmp_path: Path) -> None:
    crate, digest = make_crate(tmp_path / "crates")
    blobs = FileBlobStore(tmp_path / "blobs")
    tree = _tree(tmp_path / "first", pins=[("tinyadd", "0.1.0", digest)])
    first = _prepare(tmp_path / "first", tree, BlobCrates(blobs), CrateFolder(tmp_path / "crates"))
    assert first is not None and archive_crates(first, blobs) == 1
    crate.unlink()  # gone from the crate folder: the blob store still has it
    tree = _tree(tmp_path / "again", pins=[("tinyadd", "0.1.0", digest)])
    again = _prepare(tmp_path / "again", tree, BlobCrates(blobs), CrateFolder(tmp_path / "crates"))
    assert again is not None and again.archives[0][1] == blobs.local_path(Sha256(digest))
    assert archive_crates(again, blobs) == 0  # kept already


@pytest.mark.parametrize("backend", ["maturin", "setuptools-rust"])
def test_a_rust_build_without_a_cargo_lock_is_refused(tmp_path: Path, backend: RustBackend) -> None:
    tree = _tree(tmp_path, backend, pins=None)
    with pytest.raises(CrateError) as info:
        prepare_crates(
            tree,
            tmp_path / "rust",
            sandbox=Sandbox(tmp_path / "work" / "build", tool="bwrap"),
            requires=["setuptools", "setuptools-rust"] if backend != "maturin" else ["maturin"],
            toolchain=TOOLCHAIN,
        )
    assert info.value.facts["category"] == "unlocked-crates"
    assert "no Cargo.lock" in info.value.message


def test_a_tree_without_rust_is_not_a_rust_build(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "setup.py").write_text("")
    assert _prepare(tmp_path, tmp_path / "plain") is None
    # Cargo files with no Rust backend and no lock: not ours to refuse.
    (tmp_path / "plain" / "Cargo.toml").write_text('[package]\nname = "x"\n')
    box = Sandbox(tmp_path / "work" / "build", tool="bwrap")
    assert (
        prepare_crates(tmp_path / "plain", tmp_path / "r", sandbox=box, toolchain=TOOLCHAIN) is None
    )


def test_a_git_crate_is_built_only_when_the_sdist_vendors_it(tmp_path: Path) -> None:
    lock = (
        cargo_lock("rustadd", "1.0.0", []) + '\n[[package]]\nname = "gitdep"\nversion = "2.0.0"\n'
        'source = "git+https://git.invalid/gitdep#0123abcd"\n'
    )
    tree = _tree(tmp_path, pins=[], extra_files={"Cargo.lock": lock})
    with pytest.raises(CrateError) as info:
        _prepare(tmp_path, tree, CrateFolder(tmp_path))
    assert info.value.message.startswith("crates-unavailable: gitdep 2.0.0")
    assert "git dependencies are built only when the sdist vendors them" in info.value.message


def _unsafe_crate(folder: Path) -> tuple[Path, str]:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        data = b"pwned"
        info = tarfile.TarInfo("../escape.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tinyadd-0.1.0.crate"
    path.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    import hashlib

    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_crate_archive_is_unpacked_by_the_safe_unpacker(tmp_path: Path) -> None:
    _, digest = _unsafe_crate(tmp_path / "crates")
    tree = _tree(tmp_path, pins=[("tinyadd", "0.1.0", digest)])
    with pytest.raises(UnsafeArchiveError):
        _prepare(tmp_path, tree, CrateFolder(tmp_path / "crates"))
    assert not (tmp_path / "work" / "rust" / "escape.txt").exists()


# -- crates vendored in the sdist (orjson's layout: include/cargo) ----------------------


_VENDOR_CONFIG = (
    '[source.crates-io]\nreplace-with = "vendored-sources"\n\n'
    '[source.vendored-sources]\ndirectory = "include/cargo"\n'
)


def _vendored_tree(tmp_path: Path, *, config: bool, package: str | None = None) -> tuple[Path, str]:
    """An sdist tree vendoring tinyadd under include/cargo; returns it and the crate digest."""
    _, digest = make_crate(tmp_path / "registry")
    extra = {".cargo/config.toml": _VENDOR_CONFIG} if config else {}
    tree = _tree(tmp_path, pins=[("tinyadd", "0.1.0", digest)], extra_files=extra)
    vendor_crate(tree / "include" / "cargo", "tinyadd", "0.1.0", package or digest)
    return tree, digest


def test_crates_vendored_with_a_cargo_config_are_checked_and_built_as_shipped(
    tmp_path: Path,
) -> None:
    tree, digest = _vendored_tree(tmp_path, config=True)
    crates = _prepare(tmp_path, tree)  # no crate source at all
    assert crates is not None and crates.origin == "sdist"
    assert crates.vendored == "include/cargo" and crates.vendor is None
    assert [(c.name, c.checksum) for c in crates.crates] == [("tinyadd", digest)]
    assert crates.archives == ()
    # The sdist's own config does the replacement: ours only keeps cargo offline.
    home = tmp_path / "work" / "rust" / "cargo-home"
    assert tomllib.loads((home / "config.toml").read_text()) == {"net": {"offline": True}}
    assert dict(crates.sbom_components()[0].properties)["fromsource:crate-origin"] == (
        "vendored in the sdist"
    )


def test_a_vendor_folder_without_a_config_is_found_and_replaced_by_ours(tmp_path: Path) -> None:
    tree, _ = _vendored_tree(tmp_path, config=False)
    crates = _prepare(tmp_path, tree)
    assert crates is not None and crates.origin == "sdist"
    assert crates.vendor == tree / "include" / "cargo"
    assert {b.target: b.source for b in crates.sandbox_binds()}[CRATES_ROOT] == crates.vendor
    home = tmp_path / "work" / "rust" / "cargo-home"
    config = tomllib.loads((home / "config.toml").read_text())
    assert config["source"]["fromsource-crates"]["directory"] == CRATES_ROOT


def test_a_vendored_crate_with_another_checksum_is_refused(tmp_path: Path) -> None:
    tree, _ = _vendored_tree(tmp_path, config=True, package=WRONG)
    with pytest.raises(CrateError) as info:
        _prepare(tmp_path, tree)
    assert info.value.facts["category"] == "crate-checksum-mismatch"
    assert info.value.message.startswith("crate-checksum-mismatch: tinyadd 0.1.0: ")
    assert "include/cargo" in info.value.message


def test_a_vendored_crate_whose_files_were_changed_is_refused(tmp_path: Path) -> None:
    tree, _ = _vendored_tree(tmp_path, config=True)
    (tree / "include" / "cargo" / "tinyadd-0.1.0" / "src" / "lib.rs").write_text("// changed\n")
    with pytest.raises(CrateError) as info:
        _prepare(tmp_path, tree)
    assert info.value.facts["category"] == "crate-checksum-mismatch"
    assert info.value.facts["file"] == "src/lib.rs"


def test_a_crate_the_sdist_does_not_vendor_is_unavailable(tmp_path: Path) -> None:
    tree, _ = _vendored_tree(tmp_path, config=True)
    lock = cargo_lock("rustadd", "1.0.0", [("tinyadd", "0.1.0", WRONG), ("extra", "1.0.0", WRONG)])
    (tree / "Cargo.lock").write_text(lock.replace(WRONG, _digest_of(tree), 1))
    with pytest.raises(CrateError) as info:
        _prepare(tmp_path, tree, CrateFolder(tmp_path / "registry"))
    assert info.value.message.startswith("crates-unavailable: extra 1.0.0")
    assert "does not vendor all the crates it locks" in info.value.message


def _digest_of(tree: Path) -> str:
    sums = json.loads(
        (tree / "include" / "cargo" / "tinyadd-0.1.0" / ".cargo-checksum.json").read_text()
    )
    return str(sums["package"])


def test_a_vendor_config_pointing_outside_the_sdist_is_refused(tmp_path: Path) -> None:
    config = _VENDOR_CONFIG.replace('"include/cargo"', '"../../../elsewhere"')
    tree = _tree(tmp_path, pins=[], extra_files={".cargo/config.toml": config})
    with pytest.raises(CrateError) as info:
        _prepare(tmp_path, tree)
    assert info.value.facts["category"] == "crates-unavailable"
    assert "outside the sdist" in info.value.message


def test_the_registry_source_is_what_cargo_writes() -> None:
    assert registry_source().startswith(("registry+", "sparse+"))
