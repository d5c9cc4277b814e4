"""Rust builds: the crates a Cargo.lock pins, and how cargo is pointed at them offline.

Pure values and decisions (issue 13).  :func:`parse_cargo_lock` reads what a
lock pins; :func:`rust_backend` tells a Rust build by its build requirements;
:func:`cargo_config`, :func:`cargo_wrapper` and :func:`rustc_wrapper` write
the few files cargo is given; :class:`CrateSet` is one build's prepared crates
and toolchain, with everything the pipeline asks of it: the sandbox binds
(:meth:`CrateSet.sandbox_binds`), the environment (:meth:`CrateSet.env`), the
SBOM components (:meth:`CrateSet.sbom_components`), the build-key parts
(:meth:`CrateSet.key_parts`; the crates are resolved dependencies of the
provenance too) and the provenance facts (:meth:`CrateSet.provenance_facts`).

The I/O lives elsewhere: :mod:`fromsource.build.crate_fetch` finds the locks
and the vendored folder of an sdist and fetches crates from the configured
crate sources; :mod:`fromsource.build.rust_toolchain` finds cargo and rustc.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packageurl import PackageURL
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from fromsource.build.rust_toolchain import Toolchain
from fromsource.build.sandbox import BUILD_ROOT, Bind
from fromsource.errors import CrateError
from fromsource.provenance.sbom import BundledComponent

__all__ = [
    "CARGO_HOME_ROOT",
    "CRATES_ROOT",
    "RUST_BACKENDS",
    "RUST_ROOT",
    "TARGET_DIR",
    "CrateOrigin",
    "CrateSet",
    "LockedCrate",
    "cargo_config",
    "cargo_wrapper",
    "checksum_document",
    "parse_cargo_lock",
    "registry_crates",
    "rust_backend",
    "rustc_wrapper",
]

RUST_ROOT = "/fromsource/rust"
"""Where the toolchain (its ``bin/`` and ``lib/``) is seen inside the sandbox, read-only."""

CARGO_HOME_ROOT = "/fromsource/cargo"
"""CARGO_HOME inside the sandbox, read-only: ``config.toml`` and the cargo and rustc wrappers."""

CRATES_ROOT = "/fromsource/crates"
"""The build's vendor folder of crates from a crate source, read-only (cargo directory source)."""

TARGET_DIR = "cargo-target"
"""CARGO_TARGET_DIR, relative to the build root: one fixed place under the fixed build path."""

RUST_BACKENDS = frozenset({"maturin", "setuptools-rust"})
"""Build requirements (PEP 503 names) that mean the package compiles Rust."""

CrateOrigin = Literal["sdist", "crate-source"]
"""Where a build's crates came from: vendored in the sdist, or fetched from a crate source."""

_HEX64 = re.compile(r"[0-9a-f]{64}")
_VENDOR_SOURCE = "fromsource-crates"
_V1_CHECKSUM = re.compile(r"checksum (?P<name>\S+) (?P<version>\S+) \((?P<source>[^)]+)\)")


@dataclass(frozen=True)
class LockedCrate:
    """One package a Cargo.lock pins from outside the source tree.

    *source* is the lock's source id (``registry+URL``, ``sparse+URL`` or
    ``git+URL#rev``); *checksum* the sha256 of the registry's ``.crate``
    archive (None for git sources, which have none).
    """

    name: str
    version: str
    source: str
    checksum: str | None

    @property
    def kind(self) -> Literal["registry", "git", "other"]:
        """What sort of source the crate comes from."""
        if self.source.startswith(("registry+", "sparse+")):
            return "registry"
        return "git" if self.source.startswith("git+") else "other"

    @property
    def filename(self) -> str:
        """The crate archive's file name, ``NAME-VERSION.crate``."""
        return f"{self.name}-{self.version}.crate"

    @property
    def label(self) -> str:
        """``NAME VERSION``, as messages name a crate."""
        return f"{self.name} {self.version}"

    @property
    def purl(self) -> str:
        """The package URL ``pkg:cargo/NAME@VERSION``."""
        return PackageURL(type="cargo", name=self.name, version=self.version).to_string()


def rust_backend(requires: Iterable[str]) -> str | None:
    """The Rust build backend among the build *requires* (``maturin``, ``setuptools-rust``).

    None when no requirement names one; unparsable requirements are skipped
    (the deps step refuses them with its own category).
    """
    for text in requires:
        try:
            name = canonicalize_name(Requirement(text).name)
        except InvalidRequirement:
            continue
        if name in RUST_BACKENDS:
            return name
    return None


def parse_cargo_lock(text: str, what: str) -> tuple[LockedCrate, ...]:
    """The crates the Cargo.lock *text* pins from outside the tree, in lock order.

    Path dependencies and workspace members (no ``source``) are left out.
    Checksums are read from each package (lock versions 2 to 4) or from the
    ``[metadata]`` table (version 1).  *what* names the lock in messages.
    Raises CrateError (``unlocked-crates``) for a lock that is not TOML, a
    package without a name or version, or a registry package without a
    sha256 checksum: such a lock does not pin the crates' bytes.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CrateError(
            f"{what} is not valid TOML ({exc}); without a usable lock the crates cannot be "
            "pinned, so the build was refused",
            category="unlocked-crates",
        ) from exc
    packages = document.get("package", [])
    metadata = document.get("metadata", {})
    if not isinstance(packages, list) or not isinstance(metadata, dict):
        raise CrateError(
            f"{what}: [[package]] is not a list of tables; the crates cannot be pinned",
            category="unlocked-crates",
        )
    old_sums: dict[tuple[str, str, str], str] = {}
    for key, value in metadata.items():
        if (match := _V1_CHECKSUM.fullmatch(key)) and isinstance(value, str):
            old_sums[(match["name"], match["version"], match["source"])] = value
    crates = []
    for package in packages:
        if not isinstance(package, dict):
            raise CrateError(f"{what}: a package is not a table", category="unlocked-crates")
        name, version = package.get("name"), package.get("version")
        if not isinstance(name, str):
            raise CrateError(f"{what}: a package has no name", category="unlocked-crates")
        if not isinstance(version, str):
            raise CrateError(f"{what}: package {name} has no version", category="unlocked-crates")
        source = package.get("source")
        if not isinstance(source, str):
            continue  # a path dependency or workspace member: part of the source tree
        checksum = package.get("checksum", old_sums.get((name, version, source)))
        crate = LockedCrate(name, version, source, checksum if isinstance(checksum, str) else None)
        if crate.kind == "registry" and (
            crate.checksum is None or not _HEX64.fullmatch(crate.checksum)
        ):
            raise CrateError(
                f"{what} pins {crate.label} from {source} without a sha256 checksum "
                f"({crate.checksum!r}); its bytes are not pinned, so the build was refused",
                category="unlocked-crates",
                crate=name,
                version=version,
            )
        crates.append(crate)
    return tuple(crates)


def registry_crates(crates: Iterable[LockedCrate], what: str) -> tuple[LockedCrate, ...]:
    """The registry crates of *crates*, de-duplicated and sorted by name and version.

    Raises CrateError: ``crate-checksum-mismatch`` when two locks pin one
    crate version with different checksums, ``crates-unavailable`` when the
    crates come from more than one registry (a build's vendor folder stands
    for the default registry only; the first crate of another is named).
    """
    seen: dict[tuple[str, str], LockedCrate] = {}
    registries: dict[str, LockedCrate] = {}
    for crate in crates:
        if crate.kind != "registry":
            continue
        registries.setdefault(crate.source, crate)
        prior = seen.setdefault((crate.name, crate.version), crate)
        if prior.checksum != crate.checksum:
            raise CrateError(
                f"crate-checksum-mismatch: {crate.label}: the Cargo.lock files of {what} pin it "
                f"with two checksums ({prior.checksum}, {crate.checksum}); nothing was built",
                category="crate-checksum-mismatch",
                crate=crate.name,
                version=crate.version,
            )
    if len(registries) > 1:
        first, *others = sorted(registries)
        other = registries[others[0]]
        raise CrateError(
            f"crates-unavailable: {other.label}: {what} takes crates from more than one registry "
            f"({first}, {', '.join(others)}); fromsource vendors the crates of one registry "
            "only, so the build was refused",
            category="crates-unavailable",
            crate=other.name,
            version=other.version,
        )
    return tuple(sorted(seen.values(), key=lambda c: (c.name, c.version)))


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's for the characters a path holds)."""
    return json.dumps(value, ensure_ascii=False)


def cargo_config(vendor: str | None) -> str:
    """The ``config.toml`` of the build's CARGO_HOME.

    Offline always; with *vendor* (a folder as the build sees it) the default
    registry is replaced by that directory source.  Without it the sdist's
    own ``.cargo/config.toml`` does the replacement (a project's config takes
    precedence over CARGO_HOME's, so ours must not name one then).
    """
    lines = ["# Written by fromsource for one build (docs/building.md, Rust).", ""]
    if vendor is not None:
        lines += [
            "[source.crates-io]",
            f'replace-with = "{_VENDOR_SOURCE}"',
            "",
            f"[source.{_VENDOR_SOURCE}]",
            f"directory = {_toml_string(vendor)}",
            "",
        ]
    lines += ["[net]", "offline = true", ""]
    return "\n".join(lines)


def cargo_wrapper(cargo: str) -> str:
    """A ``cargo`` that is always ``--locked --offline`` (cargo has no setting for ``--locked``).

    Both are global options, accepted again after the subcommand, so a build
    that passes them itself still works.
    """
    return f'#!/bin/sh\nexec {shlex.quote(cargo)} --locked --offline "$@"\n'


def rustc_wrapper(remaps: Sequence[tuple[str, str]]) -> str:
    """A RUSTC_WRAPPER that adds ``--remap-path-prefix`` for each (*from*, *to*) of *remaps*.

    A wrapper rather than RUSTFLAGS: cargo uses RUSTFLAGS *instead of* the
    ``rustflags`` a package's own ``.cargo/config.toml`` sets (orjson sets
    target features there), while a wrapper adds to them.  Ours come first,
    so a remap the build passes itself (later) wins for its paths.
    """
    flags = " ".join(shlex.quote(f"--remap-path-prefix={a}={b}") for a, b in remaps)
    return f'#!/bin/sh\nrustc="$1"\nshift\nexec "$rustc" {flags} "$@"\n'


def checksum_document(files: Mapping[str, str], package: str | None) -> str:
    """The ``.cargo-checksum.json`` of a vendored crate: each file's sha256, the archive's."""
    return json.dumps({"files": dict(sorted(files.items())), "package": package}, indent=None)


@dataclass(frozen=True)
class CrateSet:
    """One Rust build's crates and toolchain, prepared on the host before the sandbox.

    *crates* are the registry (and, when the sdist vendors them, git) crates
    the locks pin, each checked against its lock; *origin* says where they
    are: ``sdist`` (vendored in it, built as shipped) or ``crate-source``
    (fetched, checked, unpacked into *vendor*).  Host folders: *toolchain*
    (``bin/``, ``lib/``), *cargo_home* (``config.toml``, ``bin/cargo``,
    ``bin/rustc-remap``), *vendor*.  *fixed* says whether the sandbox sees
    them at the fixed paths (bubblewrap) or at their host paths;
    *build_root* is the build root as the build sees it.  *archives* are the
    fetched ``.crate`` files, to be archived as blobs like the sdist.
    """

    backend: str | None
    locks: tuple[str, ...]
    crates: tuple[LockedCrate, ...]
    origin: CrateOrigin
    toolchain: Toolchain
    cargo_home: Path
    vendor: Path | None
    build_root: str
    fixed: bool
    vendored: str | None = None
    """The sdist's vendor folder, relative to the source tree, when *origin* is ``sdist``."""
    archives: tuple[tuple[LockedCrate, Path], ...] = ()

    def _inside(self, host: Path | None, fixed: str) -> str:
        return fixed if self.fixed else str(host)

    @property
    def toolchain_inside(self) -> str:
        """The toolchain root as the build sees it."""
        return self._inside(self.toolchain.root, RUST_ROOT)

    @property
    def cargo_home_inside(self) -> str:
        """CARGO_HOME as the build sees it."""
        return self._inside(self.cargo_home, CARGO_HOME_ROOT)

    @property
    def vendor_inside(self) -> str | None:
        """The vendor folder of fetched crates as the build sees it (None: the sdist vendors)."""
        return None if self.vendor is None else self._inside(self.vendor, CRATES_ROOT)

    def remaps(self) -> tuple[tuple[str, str], ...]:
        """The ``--remap-path-prefix`` pairs: each folder the build reads, to its fixed name.

        Under bubblewrap each maps onto itself (the paths are fixed already);
        with host paths they make the compiled output independent of them.
        """
        pairs = [
            (self.build_root, BUILD_ROOT),
            (self.cargo_home_inside, CARGO_HOME_ROOT),
            (self.toolchain_inside, RUST_ROOT),
        ]
        if (vendor := self.vendor_inside) is not None:
            pairs.append((vendor, CRATES_ROOT))
        return tuple(pairs)

    def sandbox_binds(self) -> tuple[Bind, ...]:
        """Read-only binds for the sandbox: toolchain, CARGO_HOME, vendor folder.

        Empty when the sandbox has no fixed paths (it then sees the host's).
        Only the toolchain's ``bin/`` and ``lib/`` are bound (its docs are
        tens of thousands of files nobody reads).
        """
        if not self.fixed:
            return ()
        binds = [
            Bind(self.toolchain.root / "bin", f"{RUST_ROOT}/bin"),
            Bind(self.toolchain.root / "lib", f"{RUST_ROOT}/lib"),
            Bind(self.cargo_home, CARGO_HOME_ROOT),
        ]
        if self.vendor is not None:
            binds.append(Bind(self.vendor, CRATES_ROOT))
        return tuple(binds)

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """The build environment *base* with cargo pointed at the toolchain and crates.

        ``cargo`` (on PATH and as CARGO) is the ``--locked --offline``
        wrapper; RUSTC is the toolchain's, RUSTC_WRAPPER adds the path
        remaps; CARGO_HOME holds the offline config; CARGO_TARGET_DIR is one
        fixed folder under the build root; CARGO_INCREMENTAL=0 (incremental
        state is not reproducible); maturin may not download Rust.
        SOURCE_DATE_EPOCH and CARGO_NET_OFFLINE stay as *base* sets them.
        """
        home, toolchain = self.cargo_home_inside, self.toolchain_inside
        env = dict(base)
        path = env.get("PATH", "")
        env.update(
            {
                "PATH": f"{home}/bin:{toolchain}/bin" + (f":{path}" if path else ""),
                "CARGO_HOME": home,
                "CARGO": f"{home}/bin/cargo",
                "RUSTC": f"{toolchain}/bin/rustc",
                "RUSTDOC": f"{toolchain}/bin/rustdoc",
                "RUSTC_WRAPPER": f"{home}/bin/rustc-remap",
                "CARGO_TARGET_DIR": f"{self.build_root}/{TARGET_DIR}",
                "CARGO_INCREMENTAL": "0",
                "CARGO_NET_OFFLINE": "true",
                "CARGO_TERM_COLOR": "never",
                "CARGO_TERM_PROGRESS_WHEN": "never",
                "MATURIN_NO_INSTALL_RUST": "1",
            }
        )
        return env

    def sbom_components(self) -> tuple[BundledComponent, ...]:
        """Every crate as a bundled component: ``pkg:cargo/NAME@VERSION`` with its sha256.

        The SBOM lists them as components, the provenance as resolved dependencies.
        """
        origin = "vendored in the sdist" if self.origin == "sdist" else "crate source"
        return tuple(
            BundledComponent(
                purl=crate.purl,
                sha256=crate.checksum,
                name=crate.filename,
                properties=(
                    ("fromsource:crate-origin", origin),
                    ("fromsource:cargo-source", crate.source),
                ),
            )
            for crate in self.crates
        )

    def key_parts(self) -> tuple[tuple[str, str], ...]:
        """Build-key inputs, as (name, value) pairs like the pinned wheels: crates, toolchain.

        Each crate by its archive digest (git crates by their locked source,
        which names the commit), then rustc's and cargo's exact versions and
        where the crates came from.
        """
        parts = [
            (f"crate:{crate.name}-{crate.version}", crate.checksum or crate.source)
            for crate in self.crates
        ]
        parts.append(("rust:toolchain", self.toolchain.key))
        parts.append(("rust:crate-origin", self.origin))
        return tuple(parts)

    def provenance_facts(self) -> dict[str, object]:
        """The provenance's ``internalParameters.rust``: backend, locks, origin, toolchain.

        The crates themselves are resolved dependencies
        (:meth:`sbom_components`), not repeated here.
        """
        facts = self.to_json()
        del facts["crates"]
        return facts

    def log_lines(self) -> list[str]:
        """What the build's log says of it: origin, toolchain, then one line per crate."""
        where = (
            f"vendored in the sdist ({self.vendored})"
            if self.origin == "sdist"
            else "from the crate sources"
        )
        tools = f"{self.toolchain.rustc_version}, {self.toolchain.cargo_version}"
        lines = [f"rust: {len(self.crates)} crates {where}; {tools}"]
        lines += [f"crate {c.label} sha256 {c.checksum or c.source}" for c in self.crates]
        return lines

    def to_json(self) -> dict[str, object]:
        """The build row's ``rust`` facts (JSON-ready): :meth:`provenance_facts` and the crates.

        With origin ``crate-source`` every crate's sha256 names a blob (archived like the
        sdist); ``fromsource fsck`` counts them as referenced.
        """
        return {
            "backend": self.backend,
            "cargo_locks": list(self.locks),
            "crate_origin": self.origin,
            "vendored": self.vendored,
            "crates": [
                {"name": c.name, "version": c.version, "sha256": c.checksum, "source": c.source}
                for c in self.crates
            ],
            "toolchain": self.toolchain.to_json(),
        }
