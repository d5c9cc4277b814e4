"""A Rust build's crates, found and checked on the host before the sandbox (issue 13).

:func:`prepare_crates` looks at an unpacked sdist: no Rust (no Rust backend
and no Cargo.lock): None.  Otherwise every ``Cargo.lock`` of the tree (not
those of vendored crates) is read, and its crates come from one of two places:

- **vendored in the sdist** (a ``.cargo/config.toml`` replacing the default
  registry with a ``directory`` source, or a folder such as orjson's
  ``include/cargo`` of crates with ``.cargo-checksum.json``): every locked
  crate must be there, its package checksum the lock's, its files those its
  checksum file lists; it is then built as shipped;
- **a crate source** otherwise (:class:`CrateSource`: the blob store, where
  earlier builds archived their crates, then the configured crate folders):
  each ``NAME-VERSION.crate`` is checked against the lock's sha256 and
  unpacked (through the sdist's safe unpacker) into the build's own vendor
  folder with a ``.cargo-checksum.json``.

Either way a CARGO_HOME is written (offline config, the ``--locked`` cargo
wrapper and the path-remapping rustc wrapper) and the toolchain is found; the
result is a :class:`~fromsource.build.crates.CrateSet`.  Nothing here runs
package code or touches the network.
"""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse
from urllib.request import url2pathname

from fromsource.build.crate_registry import SparseRegistry
from fromsource.build.crates import (
    RUST_ROOT,
    CrateOrigin,
    CrateSet,
    LockedCrate,
    cargo_config,
    cargo_wrapper,
    checksum_document,
    parse_cargo_lock,
    registry_crates,
    rust_backend,
    rustc_wrapper,
)
from fromsource.build.rust_toolchain import Toolchain, find_toolchain
from fromsource.build.sandbox import Sandbox
from fromsource.build.unpack import unpack_sdist
from fromsource.dist.names import Sha256
from fromsource.errors import CrateError
from fromsource.store.blobs import BlobStore, copy_blob, sha256_file

__all__ = [
    "BlobCrates",
    "CrateFolder",
    "CrateSource",
    "RustTree",
    "Vendored",
    "archive_crates",
    "crate_sources",
    "find_vendored",
    "prepare_crates",
    "scan_tree",
]

_SKIPPED_DIRS = frozenset({".git", "target"})
_CHECKSUM_FILE = ".cargo-checksum.json"
_VENDOR_GUESSES = ("include/cargo", "vendor", "cargo-vendor")
"""Folders where sdists ship vendored crates without a cargo config (orjson: include/cargo)."""
_MAX_CHAIN = 16
_NAMED = 5  # crates a message names besides the first; the error's facts list them all


class CrateSource(Protocol):
    """Somewhere ``.crate`` archives can be found by name, version and digest."""

    def describe(self) -> str:
        """What the source is, for messages (``the crate folder /srv/crates``)."""
        ...

    def fetch(self, crate: LockedCrate, dest: Path) -> Path | None:
        """The path of *crate*'s archive (copied into the folder *dest* if need be), or None.

        The digest is not checked here: :func:`prepare_crates` checks it.
        """
        ...


@dataclass(frozen=True)
class CrateFolder:
    """A local folder of ``NAME-VERSION.crate`` files (a registry mirror's, ``cargo vendor``'s)."""

    folder: Path

    def describe(self) -> str:
        """The folder, for messages."""
        return f"the crate folder {self.folder}"

    def fetch(self, crate: LockedCrate, dest: Path) -> Path | None:
        """``folder/NAME-VERSION.crate`` when it is a file (read in place)."""
        path = self.folder / crate.filename
        return path if path.is_file() else None


@dataclass(frozen=True)
class BlobCrates:
    """Crate archives earlier builds kept in the blob store, found by their sha256."""

    blobs: BlobStore

    def describe(self) -> str:
        """The blob store, for messages."""
        return "the blob store"

    def fetch(self, crate: LockedCrate, dest: Path) -> Path | None:
        """The blob with the crate's locked sha256, read in place or copied into *dest*."""
        if crate.checksum is None or not self.blobs.exists(Sha256(crate.checksum)):
            return None
        local = self.blobs.local_path(Sha256(crate.checksum))
        if local is not None:
            return local
        dest.mkdir(parents=True, exist_ok=True)
        copy_blob(self.blobs, Sha256(crate.checksum), dest / crate.filename)
        return dest / crate.filename


def crate_sources(entries: Sequence[str], blobs: BlobStore | None = None) -> list[CrateSource]:
    """The crate sources of the ``crates`` setting, after the blob store when given.

    Each entry is a sparse registry (``sparse+`` followed by the registry URL, or an ``http(s)``
    URL), a ``file:`` URL or a local folder of ``.crate`` files.
    """
    sources: list[CrateSource] = [BlobCrates(blobs)] if blobs is not None else []
    for entry in entries:
        if entry.startswith(("sparse+", "http://", "https://")):
            sources.append(SparseRegistry(entry))
        elif entry.startswith("file:"):
            sources.append(CrateFolder(Path(url2pathname(urlparse(entry).path))))
        else:
            sources.append(CrateFolder(Path(entry).expanduser()))
    return sources


def archive_crates(crates: CrateSet, blobs: BlobStore) -> int:
    """Keep each fetched ``.crate`` of *crates* as a blob, like the sdist; return how many
    were not kept yet.

    A later build, or ``rebuild --check``, then finds them in the blob store
    (:class:`BlobCrates`) even when the crate folder or registry no longer has them.
    """
    added = 0
    for crate, path in crates.archives:
        # Most builds of a release after the first read their crates from the store itself.
        if crate.checksum is not None and blobs.exists(Sha256(crate.checksum)):
            continue
        blobs.put_file(path, expected=Sha256(crate.checksum) if crate.checksum else None)
        added += 1
    return added


@dataclass(frozen=True)
class RustTree:
    """The Rust files of a source tree: manifests, locks and cargo configs (host paths)."""

    manifests: tuple[Path, ...]
    locks: tuple[Path, ...]
    configs: tuple[Path, ...]


@dataclass(frozen=True)
class Vendored:
    """A folder of vendored crates in the sdist; *configured*: its own cargo config uses it."""

    folder: Path
    configured: bool


def scan_tree(tree: Path) -> RustTree:
    """Every ``Cargo.toml``, ``Cargo.lock`` and ``.cargo/config[.toml]`` of *tree*.

    Links are not followed; ``target/`` and ``.git/`` are skipped, and so are
    vendored crates (folders holding a ``.cargo-checksum.json``): their
    manifests are dependencies, not the package's.
    """
    manifests, locks, configs = [], [], []
    for folder, dirs, files in os.walk(tree):
        here = Path(folder)
        if _CHECKSUM_FILE in files:
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
        if here.name == ".cargo":
            configs += [here / n for n in ("config.toml", "config") if n in files]
        if "Cargo.toml" in files:
            manifests.append(here / "Cargo.toml")
        if "Cargo.lock" in files:
            locks.append(here / "Cargo.lock")
    return RustTree(tuple(manifests), tuple(locks), tuple(configs))


def _read_toml(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _replacement(config: Path, tree: Path) -> Path | None:
    """The directory the default registry is replaced with in *config*, if any."""
    sources = _read_toml(config).get("source")
    if not isinstance(sources, dict):
        return None
    name = "crates-io"
    for _ in range(_MAX_CHAIN):
        table = sources.get(name)
        if not isinstance(table, dict):
            return None
        directory = table.get("directory")
        if isinstance(directory, str):
            # cargo: relative paths in a config are relative to the folder holding .cargo/.
            folder = (config.parent.parent / directory).resolve()
            if not folder.is_relative_to(tree.resolve()):
                raise CrateError(
                    f"crates-unavailable: {config.relative_to(tree)} vendors crates from "
                    f"{directory}, outside the sdist; only crates inside it are built",
                    category="crates-unavailable",
                )
            return folder
        following = table.get("replace-with")
        if not isinstance(following, str):
            return None
        name = following
    return None


def _has_crates(folder: Path) -> bool:
    return folder.is_dir() and any((child / _CHECKSUM_FILE).is_file() for child in folder.iterdir())


def find_vendored(tree: Path, rust: RustTree) -> Vendored | None:
    """The sdist's vendored crates: named by a cargo config, else a conventional folder."""
    for config in rust.configs:
        folder = _replacement(config, tree)
        if folder is not None:
            return Vendored(folder, configured=True)
    bases = dict.fromkeys([tree, *(lock.parent for lock in rust.locks)])
    for base in bases:
        for guess in _VENDOR_GUESSES:
            if _has_crates(base / guess):
                return Vendored(base / guess, configured=False)
    return None


def _sha256(path: Path) -> str:
    return str(sha256_file(path)[0])


@dataclass(frozen=True)
class _VendoredCrate:
    folder: Path
    package: str | None
    files: dict[str, str]


def _vendored_index(folder: Path) -> dict[tuple[str, str], _VendoredCrate]:
    """The crates in a vendor *folder* by (name, version), from their manifests."""
    index: dict[tuple[str, str], _VendoredCrate] = {}
    for child in sorted(folder.iterdir()):
        if child.is_symlink() or not (child / _CHECKSUM_FILE).is_file():
            continue
        package = _read_toml(child / "Cargo.toml").get("package")
        if not isinstance(package, dict):
            continue
        name, version = package.get("name"), package.get("version")
        try:
            sums = json.loads((child / _CHECKSUM_FILE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            sums = None
        if not isinstance(name, str) or not isinstance(version, str) or not isinstance(sums, dict):
            continue
        files = sums.get("files")
        digest = sums.get("package")
        index[(name, version)] = _VendoredCrate(
            child,
            digest if isinstance(digest, str) else None,
            {k: v for k, v in files.items() if isinstance(v, str)}
            if isinstance(files, dict)
            else {},
        )
    return index


def _mismatch(crate: LockedCrate, where: str, got: str | None, detail: str = "") -> CrateError:
    return CrateError(
        f"crate-checksum-mismatch: {crate.label}: {where} has sha256 {got}, Cargo.lock pins "
        f"{crate.checksum}{detail}; the crate was refused and nothing was built",
        category="crate-checksum-mismatch",
        crate=crate.name,
        version=crate.version,
        expected=crate.checksum,
        actual=got,
    )


def _unavailable(missing: Sequence[LockedCrate], where: str, hint: str) -> CrateError:
    first, others = missing[0], missing[1:]
    more = ""
    if others:
        names = ", ".join(c.label for c in others[:_NAMED])
        more = f" (and {len(others)} more: {names}{', ...' if len(others) > _NAMED else ''})"
    return CrateError(
        f"crates-unavailable: {first.label}{more}: pinned by Cargo.lock but not in {where}; "
        f"{hint}; nothing was built",
        category="crates-unavailable",
        crate=first.name,
        version=first.version,
        missing=[{"name": c.name, "version": c.version} for c in missing],
    )


def _check_vendored(
    tree: Path, vendored: Vendored, crates: Sequence[LockedCrate]
) -> tuple[LockedCrate, ...]:
    """Every locked crate is in the vendor folder with the lock's checksum and its own files."""
    index = _vendored_index(vendored.folder)
    where = f"the sdist's vendored crates ({vendored.folder.relative_to(tree)})"
    missing = [c for c in crates if (c.name, c.version) not in index]
    if missing:
        raise _unavailable(missing, where, "the sdist does not vendor all the crates it locks")
    for crate in crates:
        entry = index[(crate.name, crate.version)]
        if crate.kind == "registry" and entry.package != crate.checksum:
            raise _mismatch(crate, f"{where}: {entry.folder.name}/{_CHECKSUM_FILE}", entry.package)
        root = entry.folder.resolve()
        for rel, expected in sorted(entry.files.items()):
            path = (entry.folder / rel).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                raise CrateError(
                    f"crate-checksum-mismatch: {crate.label}: {entry.folder.name}/{rel}, listed "
                    f"in its {_CHECKSUM_FILE}, is missing from {where} or leaves the crate; "
                    "nothing was built",
                    category="crate-checksum-mismatch",
                    crate=crate.name,
                    version=crate.version,
                    file=rel,
                )
            if (actual := _sha256(path)) != expected:
                raise CrateError(
                    f"crate-checksum-mismatch: {crate.label}: {entry.folder.name}/{rel} in "
                    f"{where} has sha256 {actual}, its {_CHECKSUM_FILE} says {expected}; the "
                    "vendored crate was changed, nothing was built",
                    category="crate-checksum-mismatch",
                    crate=crate.name,
                    version=crate.version,
                    file=rel,
                )
    return tuple(crates)


def _fetch(
    crates: Sequence[LockedCrate], sources: Sequence[CrateSource], downloads: Path
) -> list[tuple[LockedCrate, Path]]:
    """Each crate's archive from the first source that has it, checked against the lock."""
    found: list[tuple[LockedCrate, Path]] = []
    missing: list[LockedCrate] = []
    for crate in crates:
        for source in sources:
            path = source.fetch(crate, downloads)
            if path is None:
                continue
            if (digest := _sha256(path)) != crate.checksum:
                raise _mismatch(crate, f"{crate.filename} in {source.describe()}", digest)
            found.append((crate, path))
            break
        else:
            missing.append(crate)
    if missing:
        where = " or ".join(s.describe() for s in sources) or "any crate source (none is set)"
        raise _unavailable(
            missing,
            where,
            "put NAME-VERSION.crate files into the crate folder (FROMSOURCE_CRATES) and build "
            "again",
        )
    return found


def _vendor(found: Sequence[tuple[LockedCrate, Path]], vendor: Path, scratch: Path) -> None:
    """Unpack each checked archive into ``vendor/NAME-VERSION`` with its checksum file."""
    vendor.mkdir(parents=True, exist_ok=True)
    for crate, archive in found:
        top = unpack_sdist(archive, scratch / f"{crate.name}-{crate.version}").root
        target = vendor / f"{crate.name}-{crate.version}"
        top.rename(target)
        files = {
            str(path.relative_to(target)): _sha256(path)
            for path in sorted(target.rglob("*"))
            if path.is_file() and not path.is_symlink() and path.name != _CHECKSUM_FILE
        }
        (target / _CHECKSUM_FILE).write_text(checksum_document(files, crate.checksum))
    shutil.rmtree(scratch, ignore_errors=True)


def _write_cargo_home(
    home: Path, vendor: str | None, cargo: str, remaps: Sequence[tuple[str, str]]
) -> None:
    (home / "bin").mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(cargo_config(vendor))
    for name, text in (("cargo", cargo_wrapper(cargo)), ("rustc-remap", rustc_wrapper(remaps))):
        path = home / "bin" / name
        path.write_text(text)
        path.chmod(0o755)


def prepare_crates(
    tree: Path,
    work: Path,
    *,
    sandbox: Sandbox,
    requires: Sequence[str] = (),
    sources: Sequence[CrateSource] = (),
    toolchain: Toolchain | None = None,
    toolchain_dir: Path | None = None,
) -> CrateSet | None:
    """Find, check and vendor the crates of the unpacked sdist *tree*; None when it has no Rust.

    *work* is an empty folder of the build's own, outside the build root
    (the vendor folder and CARGO_HOME go there, bound read-only into
    *sandbox*); *requires* are the build requirements (a Rust backend among
    them makes it a Rust build); *sources* are tried in order for crates the
    sdist does not vendor; *toolchain* defaults to :func:`find_toolchain` of
    *toolchain_dir* (the ``rust_toolchain`` setting), asked only for a Rust build.

    Raises CrateError: ``unlocked-crates`` (a Rust backend but no Cargo.lock,
    or a lock that does not pin checksums), ``crates-unavailable: NAME
    VERSION`` (a crate in no source, a git crate not vendored, crates from a
    second registry), ``crate-checksum-mismatch`` (naming the crate and
    version); ToolchainError when there is no toolchain.  Nothing is left
    half-made that the build could use: on error the caller removes *work*.
    """
    tree, work = tree.resolve(), work.resolve()
    backend = rust_backend(requires)
    rust = scan_tree(tree)
    if not rust.locks:
        if backend is None or not rust.manifests:
            return None
        raise CrateError(
            f"{tree.name} builds Rust with {backend} but ships no Cargo.lock; crates are never "
            "resolved at build time, so it was refused (ask upstream to include Cargo.lock in "
            "the sdist)",
            category="unlocked-crates",
            backend=backend,
        )
    pinned: list[LockedCrate] = []
    for lock in rust.locks:
        what = str(lock.relative_to(tree.parent))
        pinned += parse_cargo_lock(lock.read_text(encoding="utf-8", errors="replace"), what)
    crates = list(registry_crates(pinned, tree.name))
    git = sorted({c for c in pinned if c.kind != "registry"}, key=lambda c: (c.name, c.version))
    vendored = find_vendored(tree, rust)
    toolchain = toolchain or find_toolchain(toolchain_dir)
    fixed = sandbox.tool == "bwrap"
    home, vendor = work / "cargo-home", None
    archives: tuple[tuple[LockedCrate, Path], ...] = ()
    origin: CrateOrigin
    if vendored is not None:
        checked = _check_vendored(tree, vendored, [*crates, *git])
        if not vendored.configured:
            vendor = vendored.folder
        origin = "sdist"
    else:
        if git:
            raise _unavailable(
                git,
                "any crate source",
                f"it comes from {git[0].source}; git dependencies are built only when the sdist "
                "vendors them",
            )
        found = _fetch(crates, sources, work / "downloads")
        vendor = work / "vendor"
        _vendor(found, vendor, work / "unpack")
        checked, archives, origin = tuple(crates), tuple(found), "crate-source"
    crate_set = CrateSet(
        backend=backend,
        locks=tuple(str(lock.relative_to(tree)) for lock in rust.locks),
        crates=tuple(sorted(checked, key=lambda c: (c.name, c.version))),
        origin=origin,
        toolchain=toolchain,
        cargo_home=home,
        vendor=vendor,
        build_root=sandbox.root,
        fixed=fixed,
        vendored=str(vendored.folder.relative_to(tree)) if vendored else None,
        archives=archives,
    )
    real_cargo = f"{RUST_ROOT if fixed else toolchain.root}/bin/cargo"
    _write_cargo_home(home, crate_set.vendor_inside, real_cargo, crate_set.remaps())
    return crate_set
