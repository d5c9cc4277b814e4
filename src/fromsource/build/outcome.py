"""What a build reports: steps, progress events, outcomes and failure categories.

Pure values and decisions: :func:`categorize` names the reason a build
failed (so no failure is left without one), :func:`compare_wheels` says
which members of two wheels differ.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fromsource.errors import (
    FromsourceError,
    HashMismatchError,
    InvalidDistributionError,
    ProvenanceError,
    PublishError,
    SandboxError,
    UnsafeArchiveError,
    UpstreamError,
)

__all__ = [
    "CATEGORIES",
    "REMEMBERED",
    "STEPS",
    "BuildOutcome",
    "ProgressEvent",
    "RebuildReport",
    "Status",
    "categorize",
    "compare_wheels",
    "explain",
]

STEPS = (
    "fetch",
    "unpack",
    "patch",
    "deps",
    "build",
    "repair",
    "sbom",
    "normalize",
    "agree",
    "attest",
    "publish",
)
"""The pipeline's steps in order (DESIGN.md "The build pipeline"); ``agree`` runs only when two
independent builds must agree before publishing (:mod:`fromsource.build.agree`)."""

Status = Literal["queued", "running", "succeeded", "failed", "skipped"]

CATEGORIES = {
    "no-sdist": "the release has no sdist upstream",
    "not-found": "the project or a matching version is not on the upstream index",
    "upstream-error": "the upstream index failed or answered something unusable",
    "hash-mismatch": "a download did not have the sha256 the index promised",
    "unsafe-archive": "the sdist holds members that would escape or abuse the work tree",
    "sdist-mismatch": "the sdist's PKG-INFO names another project or version",
    "patch-failed": "a remediation patch did not apply",
    "bad-pyproject": "pyproject.toml is unreadable or its [build-system] is malformed",
    "bad-build-requirement": "a build requirement is a URL or not PEP 508",
    "build-deps-unresolvable": "the build requirements cannot be resolved to wheels",
    "inputs-unavailable": "a rebuild's recorded build dependency is gone everywhere",
    "needs-rust": "the build needs Rust, but its sdist is not a Rust build fromsource "
    "recognizes (no maturin or setuptools-rust build requirement, no Cargo.lock), so the "
    "sandbox had no Rust toolchain or crates",
    "unlocked-crates": "a Rust build ships no Cargo.lock, or one that does not pin every "
    "crate's sha256 (crates are never resolved at build time)",
    "crates-unavailable": "a crate the Cargo.lock pins is in no crate source, or cargo asked "
    "for one the locks do not pin (the message names it: crates-unavailable: NAME VERSION)",
    "crate-checksum-mismatch": "a crate's archive or vendored files do not have the sha256 "
    "the Cargo.lock pins (the message names the crate and version)",
    "rust-toolchain-unavailable": "the build needs Rust and no cargo/rustc is installed or "
    "configured (FROMSOURCE_RUST_TOOLCHAIN)",
    "missing-system-library": "a C header, library or pkg-config package is not installed",
    "timeout": "the build ran past its wall-clock limit and was killed",
    "process-limit": "the build started too many processes and was killed",
    "out-of-memory": "the build ran out of memory under the sandbox's limit",
    "sandbox-permission-denied": "the build was denied access to a path inside the sandbox",
    "build-failed": "the build backend failed (see the log)",
    "wheel-mismatch": "the wheel's filename, .dist-info folder or METADATA names another "
    "project or version",
    "sandbox-unavailable": "no sandbox could be set up and unsandboxed builds are not allowed",
    "invalid-wheel": "the built wheel is malformed",
    "oversized-output": "the build's output (the wheel, its METADATA, RECORD, WHEEL or "
    "entry points, a hook's result) is over its size cap",
    "unsafe-output": "the build left a link, FIFO, device or other non-regular file where "
    "the host reads its output",
    "irreproducible": "two independent builds of the same inputs made different wheels; "
    "nothing was published (the log shows the members that differ)",
    "attest-failed": "the SBOM or attestation could not be made",
    "publish-failed": "the wheel could not be published",
    "worker-lost": "the process building it died (killed or crashed); a fleet build is retried",
    "blocked-by-policy": "policy refuses the release (a malware record or a block rule: "
    "fromsource policy test explains); nothing was fetched or built",
    "internal": "fromsource itself failed (a bug: see the log)",
}
"""Every failure category, with what it means."""

_RUST = re.compile(r"setuptools[-_]rust|maturin|\bcargo\b|\brustc\b|Rust compiler", re.IGNORECASE)
_SYSTEM_LIBRARY = re.compile(
    r"fatal error: [^\s:]+\.h(pp)?: No such file or directory"
    r"|was not found in the pkg-config search path"
    r"|Dependency \S+ found: NO"
    r"|cannot find -l\w+"
    r"|Did not find pkg-config"
    r"|pg_config executable not found"
    r"|Please make sure the libxml2 and libxslt development packages"
)
# Where a build says it was denied a path (EACCES): Python's errors, then the C
# tools' "<path>: Permission denied" (gcc, ld, ar, make, sh, coreutils; a bare
# word before it, "Error: Permission denied", is not taken for a path).
_DENIED = (
    re.compile(r"\[Errno 13\] Permission denied: '(?P<path>[^'\n]+)'"),
    re.compile(
        r"(?:cannot (?:create|open|touch|access|remove|write|make|mkdir|stat)|"
        r"couldn't (?:create|open|write))[^\n]*?"
        r"['`\"]?(?P<path>/?[\w.@+~-][^\s'`\":]*)['`\"]?: Permission denied"
    ),
    re.compile(r"(?P<path>(?=[^\s'`\":]*[/.])/?[\w.@+~-][^\s'`\":]*)['`\"]?: Permission denied"),
    re.compile(r"\[Errno 13\] Permission denied(?!:)"),
)
_DENIED_LINES = 100
_SEMAPHORE = re.compile(r"SemLock|sem_open|multiprocessing")
_MEMORY = re.compile(r"MemoryError|out of memory|Cannot allocate memory|virtual memory exhausted")
# The build looked for a Rust compiler and found none: the sandbox of a build fromsource
# prepared for Rust has one, so this says the build was not recognized as one.
_NO_RUST = re.compile(
    r"can't find Rust compiler[^\n]*"
    r"|Rust not found, installing[^\n]*"
    r"|\b(?:cargo|rustc)\b[^\n]{0,40}(?:command )?not found[^\n]*"
    r"|No such file or directory[^\n]{0,20}'(?:cargo|rustc)'[^\n]*"
    r"|Do you have cargo in your PATH[^\n]*",
    re.IGNORECASE,
)
# cargo, offline in the sandbox, wanted a crate the locks do not pin (or the network).
_CRATE_MISSING = (
    re.compile(r"failed to download `(?P<name>[\w-]+) v(?P<version>[^`\s]+)`"),
    re.compile(r"no matching package named `(?P<name>[\w-]+)` found"),
    re.compile(r"failed to get `(?P<name>[\w-]+)` as a dependency"),
    re.compile(r"attempting to make an HTTP request, but --offline was specified"),
    re.compile(r"Unable to update registry[^\n]*"),
)
_LOCK_STALE = re.compile(r"lock file [^\n]{0,300}needs to be updated but --locked was passed")
_MISSING = (
    re.compile(r"fatal error: (?P<name>[^\s:]+\.h(?:pp)?): No such file or directory"),
    re.compile(r"Package '?(?P<name>[\w.+-]+)'?,? (?:\S+ )?was not found in the pkg-config"),
    re.compile(r"cannot find -l(?P<name>\w+)"),
    re.compile(r"Dependency (?P<name>\S+) found: NO"),
    re.compile(r"(?P<name>pg_config) executable not found"),
    re.compile(r"Did not find (?P<name>pkg-config)"),
    re.compile(r"Please make sure the (?P<name>libxml2 and libxslt) development packages"),
)
_DEBIAN = {
    "libxml": "libxml2-dev",
    "libxslt": "libxslt1-dev",
    "libexslt": "libxslt1-dev",
    "jpeglib": "libjpeg-dev",
    "jpeg": "libjpeg-dev",
    "zlib": "zlib1g-dev",
    "z": "zlib1g-dev",
    "ffi": "libffi-dev",
    "libffi": "libffi-dev",
    "pg_config": "libpq-dev",
    "libpq": "libpq-dev",
    "pq": "libpq-dev",
    "yaml": "libyaml-dev",
    "openssl": "libssl-dev",
    "ssl": "libssl-dev",
    "crypto": "libssl-dev",
    "pkg-config": "pkg-config",
    "tiff": "libtiff-dev",
    "webp": "libwebp-dev",
    "lcms2": "liblcms2-dev",
    "openjpeg": "libopenjp2-7-dev",
}

REMEMBERED = frozenset(
    {
        "needs-rust",
        "build-failed",
        "wheel-mismatch",
        "invalid-wheel",
        "bad-pyproject",
        "unsafe-output",
        "irreproducible",
    }
)
"""Categories a build with the same key fails with again: such a failure is not retried
(``--retry-failed`` does).  Timeouts, memory, missing system libraries, upstream and
internal errors depend on the machine or the moment, and are always retried."""


@dataclass(frozen=True)
class ProgressEvent:
    """One step of one build changed state."""

    project: str
    version: str
    step: str
    state: Literal["start", "done", "succeeded", "failed", "skipped"]
    message: str = ""


@dataclass(frozen=True)
class BuildOutcome:
    """What became of one requested build."""

    project: str
    version: str
    status: Status
    build_id: int | None = None
    category: str | None = None
    message: str = ""
    wheel: str | None = None
    sha256: str | None = None
    file_id: int | None = None
    key: str | None = None
    seconds: float = 0.0
    step_seconds: tuple[tuple[str, float], ...] = ()
    requires_dist: tuple[str, ...] = ()
    target: str | None = None
    """The wheel tag of the target built for (``cp312-cp312-linux_x86_64``)."""

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping with stable keys."""
        return {
            "project": self.project,
            "version": self.version,
            "target": self.target,
            "status": self.status,
            "build_id": self.build_id,
            "category": self.category,
            "message": self.message,
            "wheel": self.wheel,
            "sha256": self.sha256,
            "key": self.key,
            "seconds": round(self.seconds, 3),
            "steps": {name: round(sec, 3) for name, sec in self.step_seconds},
        }


@dataclass(frozen=True)
class RebuildReport:
    """The result of ``rebuild --check``: two builds of one release compared."""

    project: str
    version: str
    identical: bool
    reference: str
    reference_sha256: str
    rebuilt_sha256: str
    differing: tuple[str, ...] = ()
    only_in_reference: tuple[str, ...] = ()
    only_in_rebuild: tuple[str, ...] = ()
    seconds: float = 0.0
    outcomes: tuple[BuildOutcome, ...] = field(default=())
    target: str | None = None
    """The wheel tag of the target the wheel was built for (``cp312-cp312-linux_x86_64``)."""
    wheel: str | None = None
    """The file name of the reference wheel."""

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping with stable keys."""
        return {
            "schema_version": 1,
            "project": self.project,
            "version": self.version,
            "target": self.target,
            "wheel": self.wheel,
            "identical": self.identical,
            "reference": self.reference,
            "reference_sha256": self.reference_sha256,
            "rebuilt_sha256": self.rebuilt_sha256,
            "differing_members": list(self.differing),
            "only_in_reference": list(self.only_in_reference),
            "only_in_rebuild": list(self.only_in_rebuild),
            "seconds": round(self.seconds, 3),
        }


def categorize(exc: BaseException, log: str = "", requirements: Iterable[str] = ()) -> str:
    """The failure category (a key of :data:`CATEGORIES`) for *exc*.

    A category set on the error wins (a Rust build's crates are checked before
    the sandbox: ``unlocked-crates``, ``crates-unavailable``,
    ``crate-checksum-mismatch``, ``rust-toolchain-unavailable``); a generic
    build failure is refined from the build *log*: cargo asking for a crate
    the locks do not pin (``crates-unavailable``) or for a change to a lock
    (``unlocked-crates``) first, then a build that wanted a Rust compiler and
    had none (``needs-rust``: not recognized as a Rust build), system
    libraries, a path denied inside the sandbox, memory.  *requirements*
    (the build requirements) only help explain.
    """
    category: str | None = None
    if isinstance(exc, FromsourceError):
        given = exc.facts.get("category")
        category = str(given) if given else None
    if category is None:
        category = _by_type(exc)
    if category == "build-failed":
        if _missing_crate(log) is not None:
            return "crates-unavailable"
        if _LOCK_STALE.search(log):
            return "unlocked-crates"
        if _NO_RUST.search(log):
            return "needs-rust"
        if _SYSTEM_LIBRARY.search(log):
            return "missing-system-library"
        if _denied_path(log) is not None:
            return "sandbox-permission-denied"
        if _MEMORY.search(log):
            return "out-of-memory"
    return category


def explain(category: str, log: str = "", requirements: Iterable[str] = ()) -> str:
    """A one-line reason for a refined *category*, naming what is missing ("" if none).

    ``needs-rust``: the Rust build requirement and the line of the *log*
    that shows it; ``crates-unavailable`` and ``unlocked-crates`` found in
    the *log*: ``crates-unavailable: NAME VERSION`` (as far as cargo names
    it) and cargo's line; ``missing-system-library``: the header, library or
    pkg-config package the *log* names, with the Debian package that
    provides it when known; ``sandbox-permission-denied``: the path the
    *log* says was denied.
    """
    if category == "needs-rust":
        tools = sorted({m.group(0).lower() for r in requirements if (m := _RUST.search(r))})
        evidence = _NO_RUST.search(log)
        parts = []
        if tools:
            parts.append(f"it builds with {', '.join(tools)}")
        if evidence:
            parts.append(f"the build said {evidence.group(0).strip()!r}")
        why = f" ({'; '.join(parts)})" if parts else ""
        return (
            f"needs Rust{why}, but the sandbox had no Rust toolchain: cargo, rustc and the "
            "locked crates are given only to a build whose build requirements name maturin or "
            "setuptools-rust or whose sdist ships a Cargo.lock"
        )
    if category == "crates-unavailable" and (found := _missing_crate(log)) is not None:
        label, line = found
        return (
            f"crates-unavailable: {label}: cargo, offline in the sandbox, asked for a crate the "
            f"sdist's Cargo.lock files do not pin (the build said {line!r})"
        )
    if category == "unlocked-crates" and (stale := _LOCK_STALE.search(log)) is not None:
        return (
            "unlocked-crates: a Cargo.lock of the sdist does not match its Cargo.toml, and "
            f"crates are never resolved at build time (the build said {stale.group(0)!r})"
        )
    if category == "missing-system-library":
        for pattern in _MISSING:
            if match := pattern.search(log):
                name = match.group("name")
                stem = re.split(r"[/.\-]", name.removeprefix("lib"), maxsplit=1)[0]
                debian = _DEBIAN.get(name.split("/")[0].removesuffix(".h")) or _DEBIAN.get(stem)
                hint = f"; install the Debian package {debian}" if debian else ""
                return f"missing system library: {name} is not installed{hint}"
        return "missing system library (see the log)"
    if category == "out-of-memory":
        return "ran out of memory under the sandbox's limit; raise --memory"
    if category == "sandbox-permission-denied":
        path = _denied_path(log)
        if path:
            where = path
        elif _SEMAPHORE.search(log):
            where = "a path the log does not name (multiprocessing: a semaphore in /dev/shm)"
        else:
            where = "a path the log does not name"
        return (
            f"permission denied inside the sandbox on {where}: the build runs as an "
            "unprivileged user that may write only its build tree (/fromsource/build, with "
            "HOME and TMPDIR), /tmp and /dev/shm; if the package needs more, report it with "
            "the log"
        )
    return ""


def _missing_crate(log: str) -> tuple[str, str] | None:
    """The crate cargo wanted and could not have (``NAME VERSION``, ``NAME`` or "the crates
    it needed") and the line saying so; None when the *log* shows none."""
    for pattern in _CRATE_MISSING:
        if match := pattern.search(log):
            names = match.groupdict()
            label = " ".join(v for v in (names.get("name"), names.get("version")) if v)
            return label or "the crates it needed", match.group(0)
    return None


def _denied_path(log: str) -> str | None:
    """The path of the last "Permission denied" near the end of *log* ("" when it names none).

    None when the tail of the log (where a failing build says why) has none.
    """
    tail = "\n".join(log.splitlines()[-_DENIED_LINES:])
    best: tuple[tuple[int, int], str] | None = None
    for rank, pattern in enumerate(_DENIED):
        for match in pattern.finditer(tail):
            key = (match.end(), -rank)  # the last one; of two that end there, the more precise
            if best is None or key > best[0]:
                best = (key, match.groupdict().get("path") or "")
    return None if best is None else best[1]


def _by_type(exc: BaseException) -> str:
    if isinstance(exc, UnsafeArchiveError):
        return "unsafe-archive"
    if isinstance(exc, HashMismatchError):
        return "hash-mismatch"
    if isinstance(exc, UpstreamError):
        return "not-found" if exc.facts.get("status") == 404 else "upstream-error"
    if isinstance(exc, SandboxError):
        return "sandbox-unavailable"
    if isinstance(exc, InvalidDistributionError):
        return "invalid-wheel"
    if isinstance(exc, ProvenanceError):
        return "attest-failed"
    if isinstance(exc, PublishError):
        return "publish-failed"
    if isinstance(exc, FromsourceError):
        return "build-failed"
    return "internal"


def _same_bytes(
    left: zipfile.ZipFile, right: zipfile.ZipFile, x: zipfile.ZipInfo, y: zipfile.ZipInfo
) -> bool:
    """Whether two members hold the same bytes, compared a chunk at a time (never whole)."""
    if (x.file_size, x.CRC) != (y.file_size, y.CRC):
        return False
    with left.open(x) as a, right.open(y) as b:
        while True:
            chunk = a.read(1 << 20)
            if chunk != b.read(1 << 20):
                return False
            if not chunk:
                return True


def compare_wheels(reference: Path, rebuilt: Path) -> tuple[list[str], list[str], list[str]]:
    """Members whose bytes or zip metadata differ, only in *reference*, only in *rebuilt*."""
    with zipfile.ZipFile(reference) as left, zipfile.ZipFile(rebuilt) as right:
        a = {i.filename: i for i in left.infolist()}
        b = {i.filename: i for i in right.infolist()}
        differing = []
        for name in sorted(a.keys() & b.keys()):
            x, y = a[name], b[name]
            same_meta = (x.date_time, x.external_attr, x.compress_type) == (
                y.date_time,
                y.external_attr,
                y.compress_type,
            )
            if not same_meta or not _same_bytes(left, right, x, y):
                differing.append(name)
        if not differing and list(a) != list(b):
            differing.append("(member order)")
    return differing, sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
