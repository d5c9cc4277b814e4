"""Pure verification decisions: does what was found match what was attested?

Functions over values (installed files and their digests, wheel members,
lock pins, signed attestations); no disk, network or clock.  The rules for
files an installer writes are in ``rules``; both are documented in
``docs/verify.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from fromsource.dist.record import is_record_path
from fromsource.errors import ProvenanceError, SignatureError
from fromsource.lockfiles.pinned import Lock, PinnedPackage
from fromsource.provenance.source import SourceAttestation, verify_source_attestation
from fromsource.provenance.statement import Attestation, verify_attestation
from fromsource.verify.model import (
    Candidate,
    Excluded,
    InstalledDist,
    InstalledFile,
    Listed,
    LockedPackage,
    PackageResult,
    Provenance,
    Served,
    Status,
    WheelFile,
)
from fromsource.verify.rules import attested_location, installer_rule

_MAX_LISTED = 10


@dataclass(frozen=True)
class Checked:
    """A candidate after its signature and identity were checked.

    Exactly one of *attestation* (with *keyid*) and *problem* is set.
    """

    candidate: Candidate
    attestation: Attestation | None = None
    keyid: str | None = None
    problem: str | None = None


def same_version(a: str, b: str, allow_local: bool = False) -> bool:
    """Whether versions *a* and *b* are equal under PEP 440.

    With *allow_local*, ``b`` may carry a local label that *a* lacks (``==1.0``
    matches ``1.0+fs.1``).  Unparseable versions compare as strings.
    """
    try:
        va, vb = Version(a), Version(b)
    except InvalidVersion:
        return a == b
    if va == vb:
        return True
    return allow_local and va.local is None and Version(vb.public) == va


def check_candidate(
    candidate: Candidate,
    keys: Mapping[str, Ed25519PublicKey],
    name: str,
    version: str,
    allow_local: bool = False,
) -> Checked:
    """Verify *candidate*'s signature with *keys* and that it attests *name*==*version*.

    Never raises for a bad candidate: the reason lands in ``Checked.problem``.
    """
    if candidate.envelope is None:
        return Checked(candidate, problem=candidate.problem or f"{candidate.filename}: no provenance")
    try:
        attestation, keyid = verify_attestation(candidate.envelope, keys)
    except SignatureError as exc:
        return Checked(candidate, problem=f"{candidate.filename}: signature invalid ({exc.message})")
    except ProvenanceError as exc:
        return Checked(candidate, problem=f"{candidate.filename}: malformed ({exc.message})")
    problem = _identity_problem(candidate, attestation, name, version, allow_local)
    if problem:
        return Checked(candidate, problem=f"{candidate.filename}: {problem}")
    return Checked(candidate, attestation, keyid)


def _identity_problem(
    candidate: Candidate, att: Attestation, name: str, version: str, allow_local: bool
) -> str | None:
    try:
        subj_name, subj_version, _build, _tags = parse_wheel_filename(att.subject_name)
    except (InvalidWheelFilename, InvalidVersion):
        return f"the attested subject {att.subject_name!r} is not a wheel filename"
    wanted = canonicalize_name(name)
    if canonicalize_name(att.project) != wanted or subj_name != wanted:
        return f"the attestation is for project {att.project}, not {name}"
    if not same_version(version, att.version, allow_local) or Version(att.version) != subj_version:
        return f"the attestation is for version {att.version}, not {version}"
    if candidate.listed_sha256 is not None and candidate.listed_sha256 != att.subject_sha256:
        return "the index lists another sha256 for this file than the attestation signs"
    if candidate.filename.endswith(".whl") and candidate.filename != att.subject_name:
        return f"the attestation is for {att.subject_name}, not this file"
    return None


def provenance_of(att: Attestation, keyid: str) -> Provenance:
    """The report's summary of a verified attestation."""
    fixes = tuple(dict.fromkeys(f for p in att.patches for f in p.fixes))
    return Provenance(
        subject=att.subject_name,
        subject_sha256=att.subject_sha256,
        repository=att.repository,
        build_id=att.invocation_id,
        sdist_url=att.sdist_url,
        sdist_sha256=att.sdist_sha256,
        keyid=keyid,
        patches=tuple(p.name for p in att.patches),
        fixes=fixes,
        agreement=att.agreement,
    )


def _verified(att: Attestation, keyid: str, note: str = "") -> tuple[Status, str, Provenance]:
    prov = provenance_of(att, keyid)
    text = (
        f"built from source: repository {prov.repository}, build {prov.build_id}, "
        f"sdist sha256:{prov.sdist_sha256}"
    )
    if prov.agreement is not None:
        text += f"; {prov.agreement.summary(workers=False)}"
    status = Status.VERIFIED
    if att.patches:
        status = Status.VERIFIED_REMEDIATED
        fixed = ", ".join(prov.fixes) or "no listed advisories"
        text += f"; remediated by {len(att.patches)} patch(es) fixing {fixed}"
    return status, text + note, prov


def _listing(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:_MAX_LISTED])
    more = len(paths) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _invalid(name: str, version: str | None, location: str, checked: Sequence[Checked]) -> PackageResult:
    """Attestation invalid, or not built by us when no candidate carries provenance at all."""
    problems = "; ".join(c.problem or "" for c in checked)
    if all(c.candidate.envelope is None for c in checked):
        return PackageResult(name, version, Status.NOT_BUILT, problems, location)
    return PackageResult(
        name, version, Status.INVALID, f"no attestation verifies: {problems}", location
    )


# -- installed distributions ----------------------------------------------------------------


@dataclass(frozen=True)
class _Comparison:
    checked: Checked
    changed: tuple[str, ...]
    other_build: tuple[str, ...]
    unattested: tuple[str, ...]
    installer: tuple[str, ...]
    matched: int
    tag_match: bool

    @property
    def differences(self) -> tuple[str, ...]:
        return self.changed + self.unattested


def _compare(dist: InstalledDist, files: Mapping[str, InstalledFile], checked: Checked) -> _Comparison:
    att = checked.attestation
    assert att is not None
    changed: list[str] = []
    other_build: list[str] = []
    matched = 0
    claimed: set[str] = set()
    for member, digest in att.byproducts.items():
        where = attested_location(member, files)
        if where is None:
            changed.append(f"{member} (missing)")
            other_build.append(member)
            continue
        claimed.add(where)
        entry = files[where]
        top, _, rest = member.partition("/")
        if top.endswith(".data") and rest.startswith("scripts/"):
            # The RECORD digest is of the rewritten script: only the content can be compared.
            ok = digest == entry.actual or digest in entry.variants
        else:
            ok = digest == entry.actual
            if entry.recorded != digest:
                other_build.append(where)
        if ok:
            matched += 1
        else:
            changed.append(where if entry.actual is not None else f"{where} (missing)")
    unattested: list[str] = []
    installer: list[str] = []
    for path in files:
        if path in claimed:
            continue
        if installer_rule(path, dist.dist_info, dist.scripts):
            installer.append(path)
        else:
            unattested.append(f"{path} (not in the attested wheel)")
    _n, _v, _b, tags = parse_wheel_filename(att.subject_name)
    tag_match = {str(t) for t in tags} == set(dist.tags)
    return _Comparison(
        checked, tuple(changed), tuple(other_build), tuple(unattested), tuple(installer),
        matched, tag_match,
    )


def decide_installed(dist: InstalledDist, checked: Sequence[Checked], source: str) -> PackageResult:
    """The verdict on an installed distribution given the checked candidates for it.

    Picks the valid attestation the installed files match best.  All attested
    files equal and no unaccounted file → verified (remediated when patched).
    The installed RECORD agrees with the attestation but disk does not →
    modified after install, naming the files.  The RECORD itself disagrees →
    another build was installed: not built by this index, naming the files.
    """
    name, version, where = dist.name, dist.version, dist.location
    if not checked:
        return PackageResult(
            name, version, Status.NOT_BUILT, f"no attestation for {name}=={version} in {source}", where
        )
    valid = [c for c in checked if c.attestation is not None]
    if not valid:
        return _invalid(name, version, where, checked)
    if dist.files is None:
        return PackageResult(
            name, version, Status.NOT_BUILT,
            f"{dist.problem or 'no RECORD'}; its files cannot be compared with the attestation",
            where,
        )
    files = dist.files
    comparisons = [_compare(dist, files, c) for c in valid]
    best = min(
        comparisons,
        key=lambda c: (len(c.differences), len(c.other_build), not c.tag_match),
    )
    att, keyid = best.checked.attestation, best.checked.keyid
    assert att is not None and keyid is not None
    base = PackageResult(
        name, version, Status.NOT_BUILT, "", where,
        installer_files=best.installer, checked=len(att.byproducts), matched=best.matched,
    )
    if not best.differences:
        note = f"; {len(best.installer)} installer file(s) accounted by rule" if best.installer else ""
        status, text, prov = _verified(att, keyid, note)
        return replace(base, status=status, details=text, provenance=prov)
    if not best.other_build:
        return replace(
            base,
            status=Status.MODIFIED,
            details=f"{len(best.differences)} file(s) differ from the attested "
            f"{att.subject_name}: {_listing(best.differences)}",
            files=best.differences,
            provenance=provenance_of(att, keyid),
        )
    return replace(
        base,
        details=f"another build of {name}=={version} is installed: its RECORD differs from "
        f"every attested wheel ({att.subject_name} differs in {_listing(best.other_build)})",
        files=best.differences,
    )


# -- installed from our sdist ---------------------------------------------------------------

LOCAL_BUILD_REASON = "built locally from the sdist served by the index (no wheel for this platform)"


@dataclass(frozen=True)
class CheckedSource:
    """An sdist's candidate after its signature and identity were checked.

    Exactly one of *attestation* (with *keyid*) and *problem* is set.
    """

    candidate: Candidate
    attestation: SourceAttestation | None = None
    keyid: str | None = None
    problem: str | None = None


def check_source_candidate(
    candidate: Candidate, keys: Mapping[str, Ed25519PublicKey], name: str, version: str
) -> CheckedSource:
    """Verify that *candidate* is a signed "mirrored source" statement for this very sdist.

    Never raises: the reason lands in ``CheckedSource.problem``.
    """
    if candidate.envelope is None:
        return CheckedSource(candidate, problem=candidate.problem or "no provenance")
    try:
        att, keyid = verify_source_attestation(candidate.envelope, keys)
    except (SignatureError, ProvenanceError) as exc:
        return CheckedSource(candidate, problem=f"{candidate.filename}: {exc.message}")
    if canonicalize_name(att.project) != canonicalize_name(name) or not same_version(
        version, att.version
    ):
        problem = f"the attestation is for {att.project} {att.version}, not {name} {version}"
    elif att.subject_name != candidate.filename:
        problem = f"the attestation is for {att.subject_name}, not this file"
    elif candidate.listed_sha256 is not None and candidate.listed_sha256 != att.subject_sha256:
        problem = "the index lists another sha256 for this file than the attestation signs"
    else:
        return CheckedSource(candidate, att, keyid)
    return CheckedSource(candidate, problem=f"{candidate.filename}: {problem}")


def built_from_sdist(result: PackageResult, sources: Sequence[CheckedSource]) -> PackageResult:
    """*result* restated when no attested wheel matches but the index serves the sdist.

    An installed distribution that is ``not-built-by-index`` while the index
    lists a signed sdist of that very version was, as far as anyone can
    tell, built by the client from that sdist: it stays not-built-by-index
    (nothing the index signed covers the files the client's build made), and
    its details say so, naming the sdist.  Any other result is returned as is.
    """
    valid = [s.attestation for s in sources if s.attestation is not None]
    if result.status is not Status.NOT_BUILT or not valid:
        return result
    att = valid[0]
    origin = (
        f"repacked with {len(att.patches)} patch(es) from {att.sdist_url}"
        if att.repacked
        else f"mirrored from {att.sdist_url}"
    )
    return replace(
        result,
        details=f"{LOCAL_BUILD_REASON}: {att.subject_name}, {origin}, "
        f"sha256:{att.subject_sha256}",
    )


# -- wheel files ----------------------------------------------------------------------------


def decide_wheel(wheel: WheelFile, checked: Sequence[Checked], source: str) -> PackageResult:
    """The verdict on a wheel file: its sha256 must be the subject of a valid attestation.

    A valid attestation for the same filename with another digest yields
    ``modified-after-install`` naming the members that differ (or saying the
    wheel was repacked when every member matches: still not verified, since
    the signature covers the file's digest).
    """
    name, version, where = wheel.name, wheel.version, wheel.location
    if not checked:
        return PackageResult(
            name, version, Status.NOT_BUILT, f"no attestation for {wheel.filename} in {source}", where
        )
    valid = [(c.attestation, c.keyid) for c in checked if c.attestation and c.keyid]
    for att, keyid in valid:
        if att.subject_sha256 == wheel.sha256:
            status, text, prov = _verified(att, keyid)
            n = len(att.byproducts)
            return PackageResult(name, version, status, text, where, prov, checked=n, matched=n)
    for att, keyid in valid:
        if att.subject_name != wheel.filename:
            continue
        changed = [m for m, d in att.byproducts.items() if wheel.members.get(m) != d]
        extra = [
            f"{m} (not in the attested wheel)"
            for m in wheel.members
            if m not in att.byproducts and not is_record_path(m)
        ]
        differ = changed + extra
        text = (
            f"the wheel's sha256 differs from the attested one; members that differ: "
            f"{_listing(differ)}"
            if differ
            else "the wheel's sha256 differs from the attested one although every member "
            "matches (the wheel was repacked)"
        )
        n = len(att.byproducts)
        return PackageResult(
            name, version, Status.MODIFIED, text, where, provenance_of(att, keyid),
            files=tuple(differ), checked=n, matched=n - len(changed),
        )
    if not valid:
        return _invalid(name, version, where, checked)
    others = ", ".join(sorted(att.subject_name for att, _ in valid))
    return PackageResult(
        name, version, Status.NOT_BUILT,
        f"this file is not an attested wheel of {name}=={version} (attested: {others})", where,
    )


# -- lock files -----------------------------------------------------------------------------


def locked_packages(lock: Lock) -> tuple[list[LockedPackage], list[Excluded]]:
    """The entries of *lock* as verify counts them, and those it leaves out.

    In a lock file (not a requirements file) an editable or virtual entry is
    the locked project itself: excluded.  An entry installed from a VCS or a
    local folder, not pinned to one version, or without a sha256 is counted
    with the reason it cannot be verified.
    """
    found: list[LockedPackage] = []
    excluded: list[Excluded] = []
    for pin in lock.packages:
        source = pin.source
        if lock.format != "requirements" and (source.editable or source.form == "virtual"):
            reason = (f"workspace project ({source.form} source)"
                      if source.form in ("editable", "virtual") else f"editable {source.form} "
                      f"{source.location}")
            excluded.append(Excluded(pin.label, pin.version, reason))
            continue
        found.append(LockedPackage(pin.label, pin.version, pin.hashes, pin.location,
                                   pin.allows_local, _unverifiable(pin)))
    return found, excluded


def _unverifiable(pin: PinnedPackage) -> str | None:
    if pin.source.kind == "vcs" or (pin.source.kind == "path" and not pin.hashes):
        return f"installed from {pin.source.describe()}, not from an index"
    if pin.version is None:
        return "not pinned to one version"
    if not pin.hashes:
        return "no sha256 hash pinned"
    return None


def decide_locked(
    pkg: LockedPackage, checked: Sequence[Checked], source: str, others: Sequence[str] = ()
) -> PackageResult:
    """The verdict on a locked package: one of its hashes must be a valid attestation's subject.

    *others* names files the source lists for the version whose digests the
    lock does not pin (their provenance was not fetched).

    Candidates whose digest is unknown before verification (offline sources)
    and that do not verify make the package ``attestation-invalid`` when no
    valid attestation exists at all.
    """
    name, version, where = pkg.name, pkg.version, pkg.location
    if pkg.unverifiable:
        return PackageResult(name, version, Status.NOT_BUILT, pkg.unverifiable, where)
    valid = [c for c in checked if c.attestation is not None]
    pinned = [c for c in valid if _pinned_digest(c) in pkg.hashes]
    if pinned:
        att, keyid = pinned[0].attestation, pinned[0].keyid
        assert att is not None and keyid is not None
        extra = len(pkg.hashes) - len({_pinned_digest(c) for c in pinned})
        note = f"; the lock also allows {extra} other file(s)" if extra else ""
        status, text, prov = _verified(att, keyid, note)
        return PackageResult(name, version, status, f"{att.subject_name} {text}", where, prov)
    invalid = [c for c in checked if c.attestation is None and c.candidate.envelope is not None]
    pinned_invalid = [c for c in invalid if c.candidate.listed_sha256 in pkg.hashes]
    unknown_invalid = [c for c in invalid if c.candidate.listed_sha256 is None]
    if pinned_invalid:
        return _invalid(name, version, where, pinned_invalid)
    if unknown_invalid and not valid:
        return _invalid(name, version, where, unknown_invalid)
    listed = sorted({c.candidate.filename for c in checked} | set(others))
    if listed:
        return PackageResult(
            name, version, Status.NOT_BUILT,
            f"none of the {len(pkg.hashes)} pinned hash(es) is an attested file of "
            f"{name}=={version} in {source} (it has {', '.join(listed)})",
            where,
        )
    return PackageResult(
        name, version, Status.NOT_BUILT, f"no attestation for {name}=={version} in {source}", where
    )


def _pinned_digest(checked: Checked) -> str | None:
    if checked.attestation is not None:
        return checked.attestation.subject_sha256
    return checked.candidate.listed_sha256



# -- files the index served from its upstream -----------------------------------------------


def _served(name: str, version: str | None, where: str, listed: Listed, how: str) -> PackageResult:
    served = Served(
        listed.filename,
        listed.listed_sha256 or "",
        listed.repository or "",
        listed.policy_generation,
    )
    policy = (
        f"policy generation {served.policy_generation}"
        if served.policy_generation is not None
        else "its policy"
    )
    return PackageResult(
        name,
        version,
        Status.UPSTREAM,
        f"served by the index from its upstream under {policy}, not built from source: "
        f"{listed.filename} sha256:{served.sha256} ({how})",
        where,
        served=served,
    )


def upstream_wheel(wheel: WheelFile, listed: Sequence[Listed]) -> PackageResult | None:
    """``upstream`` when *wheel* is, by its sha256, an upstream file the index serves; else None."""
    for item in listed:
        if item.listed_sha256 == wheel.sha256:
            return _served(
                wheel.name, wheel.version, wheel.location, item, "the file's sha256 is the listed one"
            )
    return None


def upstream_locked(pkg: LockedPackage, listed: Sequence[Listed]) -> PackageResult | None:
    """``upstream`` when a hash *pkg* pins is an upstream file the index serves; else None."""
    for item in listed:
        if item.listed_sha256 is not None and item.listed_sha256 in pkg.hashes:
            return _served(pkg.name, pkg.version, pkg.location, item, "a pinned hash is its sha256")
    return None


def _installed_from(files: Mapping[str, InstalledFile], members: Mapping[str, str]) -> bool:
    """True when every member of a wheel (but its RECORD) is installed with the same bytes."""
    for member, digest in members.items():
        if is_record_path(member):
            continue
        where = attested_location(member, files)
        if where is None:
            return False
        entry = files[where]
        top, _, rest = member.partition("/")
        if top.endswith(".data") and rest.startswith("scripts/"):
            ok = digest == entry.actual or digest in entry.variants  # a rewritten shebang
        else:
            ok = digest == entry.actual
        if not ok:
            return False
    return True


def upstream_installed(
    dist: InstalledDist, wheels: Sequence[tuple[Listed, Mapping[str, str]]]
) -> PackageResult | None:
    """``upstream`` when *dist* is installed from one of the upstream *wheels* the index serves.

    *wheels* pairs each listed file with the sha256 of every member (the
    file as the index serves it); the installed files must be its members,
    byte for byte.  None otherwise.
    """
    if dist.files is None:
        return None
    for listed, members in wheels:
        if members and _installed_from(dist.files, members):
            return _served(
                dist.name,
                dist.version,
                dist.location,
                listed,
                "every installed file of the wheel is unchanged",
            )
    return None
