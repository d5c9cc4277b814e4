"""One ``verify`` run: read the artifact, fetch and check attestations, decide, add advisories.

The glue between the I/O edges (``inputs``, the lock readers of
:mod:`fromsource.lockfiles`, a source from
``fetch``) and the pure decisions (``decide``, ``vulns``).  The source is a
parameter, so tests hand in an offline folder or a live index alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from fromsource.dist.names import ProjectName, fs_revision, normalize
from fromsource.errors import LockError, VerifyError
from fromsource.lockfiles.pinned import Lock
from fromsource.lockfiles.read import read_lock
from fromsource.remediate.osv import Advisory
from fromsource.verify.decide import (
    Checked,
    built_from_sdist,
    check_candidate,
    check_source_candidate,
    decide_installed,
    decide_locked,
    decide_wheel,
    locked_packages,
    upstream_installed,
    upstream_locked,
    upstream_wheel,
)
from fromsource.verify.fetch import AttestationSource
from fromsource.verify.inputs import detect, environment_folders, read_dist, read_wheel, read_wheels
from fromsource.verify.model import (
    ArtifactType,
    Excluded,
    InstalledDist,
    Listed,
    LockedPackage,
    PackageResult,
    Report,
    Status,
    WheelFile,
)
from fromsource.verify.vulns import by_project, findings

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Options:
    """How to run: packages to leave out, advisories to match, parallelism.

    *exclude* holds normalized names; *advisories* are the advisories to
    match (from ``--advisories DIR``, named *advisories_origin* in the
    report); when None and *source_advisories* is
    set, the source's own are matched (an index's ``/api/advisories``), else
    none; *workers* threads read, hash, fetch and check (hashing and HTTP
    release the GIL, so more threads than cores pay off).
    """

    exclude: frozenset[str] = frozenset()
    advisories: Sequence[Advisory] | None = None
    advisories_origin: str = "the advisories given"
    source_advisories: bool = False
    workers: int = 8


def _parallel(func: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    if workers <= 1 or len(items) <= 1:
        return [func(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(func, items))


def _tags(filename: str) -> frozenset[str]:
    try:
        return frozenset(str(t) for t in parse_wheel_filename(filename)[3])
    except (InvalidWheelFilename, InvalidVersion):
        return frozenset()


class _Checker:
    """Fetches and checks candidates against the trusted keys (thread-safe)."""

    def __init__(self, source: AttestationSource, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self.source = source
        self.keys = keys
        self._remediations: dict[tuple[str, str], dict[str, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def check(
        self, listed: Sequence[Listed], name: str, version: str, allow_local: bool = False
    ) -> list[Checked]:
        return [
            check_candidate(self.source.fetch(item), self.keys, name, version, allow_local)
            for item in listed
        ]

    def remediations(self, project: str, version: str) -> dict[str, frozenset[str]]:
        """Remediated versions of *project* with *version*'s public part, and what their
        attested patches fix (only attestations that verify count)."""
        public = Version(version).public
        key = (normalize(project), public)
        with self._lock:
            if key in self._remediations:
                return self._remediations[key]
        found: dict[str, frozenset[str]] = {}
        for candidate_version in self.source.versions(project):
            try:
                parsed = Version(candidate_version)
            except InvalidVersion:
                continue
            if parsed.public != public or fs_revision(parsed) is None:
                continue
            for item in self.source.listing(project, candidate_version):
                checked = check_candidate(self.source.fetch(item), self.keys, project,
                                          candidate_version)
                if checked.attestation is not None:
                    fixes = {f for p in checked.attestation.patches for f in p.fixes}
                    found[candidate_version] = frozenset(fixes)
                    break
        with self._lock:
            self._remediations[key] = found
        return found


def _refused(checker: _Checker, name: str, version: str | None, where: str) -> PackageResult | None:
    """``refused-by-index`` with the index's reason when it refused *name*'s page, else None.

    Asked after a listing (which reads the page): a refused project is
    reported and the run goes on with the next package.
    """
    reason = checker.source.refusal(name)
    return None if reason is None else PackageResult(name, version, Status.REFUSED, reason, where)


def _installed(checker: _Checker, dist: InstalledDist, source: str) -> PackageResult:
    listed = checker.source.listing(dist.name, dist.version)
    if (refused := _refused(checker, dist.name, dist.version, dist.location)) is not None:
        return refused
    # Fetch only the wheels built for the installed tags when the source has any.
    same = [item for item in listed if _tags(item.filename) == frozenset(dist.tags)]
    result = decide_installed(dist, checker.check(same or listed, dist.name, dist.version), source)
    if result.status is not Status.NOT_BUILT:
        return result
    # Not built here: perhaps served from the upstream (only a wheel of the installed tags).
    wheels = [
        (item, members)
        for item in checker.source.upstream_listing(dist.name, dist.version)
        if _tags(item.filename) == frozenset(dist.tags)
        and (members := checker.source.upstream_members(item)) is not None
    ]
    if (served := upstream_installed(dist, wheels)) is not None:
        return served
    # Or built locally from the sdist the index serves (no wheel for this platform).
    sdists = [
        check_source_candidate(checker.source.fetch(item), checker.keys, dist.name, dist.version)
        for item in checker.source.sdists(dist.name, dist.version)
    ]
    return built_from_sdist(result, sdists)


def _wheel(checker: _Checker, wheel: WheelFile, source: str) -> PackageResult:
    listed = [
        item for item in checker.source.listing(wheel.name, wheel.version)
        if item.filename == wheel.filename or item.listed_sha256 in (None, wheel.sha256)
    ]
    if (refused := _refused(checker, wheel.name, wheel.version, wheel.location)) is not None:
        return refused
    result = decide_wheel(wheel, checker.check(listed, wheel.name, wheel.version), source)
    if result.status is not Status.NOT_BUILT:
        return result
    served = checker.source.upstream_listing(wheel.name, wheel.version)
    return upstream_wheel(wheel, served) or result


_LOCK_FORMATS = {"pylock": "pylock.toml", "uv-lock": "uv.lock", "requirements": "requirements"}


def _read_lock(path: Path, kind: ArtifactType, display: str) -> Lock:
    """The lock file at *path*, with its includes; VerifyError when it cannot be read."""
    try:
        return read_lock(path, fmt=_LOCK_FORMATS[kind], origin=display)
    except LockError as exc:
        raise VerifyError(exc.message, **exc.facts) from exc


def _locked(checker: _Checker, pkg: LockedPackage, source: str) -> PackageResult:
    if pkg.unverifiable or pkg.version is None:
        return decide_locked(pkg, [], source)
    listed = checker.source.listing(pkg.name, pkg.version, allow_local=pkg.allow_local)
    if (refused := _refused(checker, pkg.name, pkg.version, pkg.location)) is not None:
        return refused
    pinned = [i for i in listed if i.listed_sha256 is None or i.listed_sha256 in pkg.hashes]
    others = tuple(i.filename for i in listed if i not in pinned)
    checked = checker.check(pinned, pkg.name, pkg.version, pkg.allow_local)
    result = decide_locked(pkg, checked, source, others)
    if result.status is not Status.NOT_BUILT:
        return result
    served = checker.source.upstream_listing(pkg.name, pkg.version)
    return upstream_locked(pkg, served) or result


def _with_vulnerabilities(
    checker: _Checker, result: PackageResult, relevant: Sequence[Advisory]
) -> PackageResult:
    if not relevant or result.version is None:
        return result
    fixes = result.provenance.fixes if result.status.is_verified and result.provenance else ()
    found = findings(result.name, result.version, relevant, fixes)
    if any(f.state == "affected" for f in found):
        remediations = checker.remediations(result.name, result.version)
        if remediations:
            found = findings(result.name, result.version, relevant, fixes, remediations)
    return replace(result, vulnerabilities=found)


def verify_artifact(
    path: Path, display: str, source: AttestationSource, options: Options = Options()
) -> Report:
    """Verify the artifact at *path* (shown as *display*) against *source*.

    Raises VerifyError for unreadable input, an unreachable source or a
    source with no trusted key at all (then no signature could verify, and a
    report would only list failures); every per-package outcome is a value
    in the report.
    """
    lock = threading.Lock()
    kind = detect(path)
    keys = source.trusted_keys()
    if not keys:
        raise VerifyError(
            f"{source.description}: no trusted keys (the keys document lists none), so no "
            "attestation could verify; pass --keys FILE with the keys the index signs with"
        )
    checker = _Checker(source, keys)
    where = source.description
    excluded: list[Excluded] = []

    def keep(name: str, version: str | None) -> bool:
        if normalize(name) in options.exclude:
            with lock:
                excluded.append(Excluded(name, version, "excluded with --exclude"))
            return False
        return True

    results: list[PackageResult]
    if kind == "environment":
        # Read, hash and check each distribution in one task, so that hashing (which
        # releases the GIL) overlaps with parsing and signature checks of others.
        def one(job: tuple[Path, Path]) -> PackageResult | None:
            dist = read_dist(job[0], job[1], path)
            return _installed(checker, dist, where) if keep(dist.name, dist.version) else None

        done = _parallel(one, environment_folders(path), options.workers)
        results = [r for r in done if r is not None]
    elif kind in ("wheel", "wheels"):
        wheels = [read_wheel(path, path)] if kind == "wheel" else read_wheels(path)
        wheels = [w for w in wheels if keep(w.name, w.version)]
        results = _parallel(lambda w: _wheel(checker, w, where), wheels, options.workers)
    else:
        packages, lock_excluded = locked_packages(_read_lock(path, kind, display.rstrip("/")))
        excluded += lock_excluded
        packages = [p for p in packages if keep(p.name, p.version)]
        results = _parallel(lambda p: _locked(checker, p, where), packages, options.workers)
    lookup, advisories_source = _advisory_lookup(source, options)
    # A folder was checked even when nothing was counted; a source only when it answered.
    checked = options.advisories is not None
    if lookup is not None:
        def match(result: PackageResult) -> tuple[PackageResult, bool]:
            if result.version is None:  # an unpinned lock entry: no version to match
                return result, True
            relevant = lookup(result.name)
            if relevant is None:
                return result, False
            return _with_vulnerabilities(checker, result, relevant), True

        matched = _parallel(match, results, options.workers)
        results = [r for r, _answered in matched]
        if matched:
            checked = all(answered for _r, answered in matched)
    results.sort(key=lambda r: (normalize(r.name), r.version or "", r.location))
    return Report(
        artifact=display,
        artifact_type=kind,
        source=where,
        results=tuple(results),
        trusted_keys=tuple(sorted(keys)),
        excluded=tuple(excluded),
        warnings=tuple(source.warnings),
        advisories_checked=checked,
        advisories_source=advisories_source if checked else None,
    )


def _advisory_lookup(
    source: AttestationSource, options: Options
) -> tuple[Callable[[str], Sequence[Advisory] | None] | None, str | None]:
    """Where a package's advisories come from (None: nowhere), and how the report names it.

    The lookup answers None when the source holds no advisories at all.
    """
    if options.advisories is not None:
        grouped: Mapping[ProjectName, list[Advisory]] = by_project(options.advisories)
        return (lambda name: grouped.get(normalize(name), [])), options.advisories_origin
    if options.source_advisories:
        return source.advisories, source.description
    return None, None
