"""What the web UI shows, as values: search results, versions, provenance, SBOM, build, fixes.

Pure functions over published facts (catalog rows, stored documents,
advisories, keys); the routes in :mod:`fromsource.index.ui` fetch the
inputs and render these values with templates.  Nothing here trusts a
document it has not checked: provenance contents are shown only when the
signature verifies with one of the index's published keys *and* the signed
subject is this very file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from fromsource.dist.names import fs_revision, normalize
from fromsource.errors import FromsourceError, ProvenanceError, SignatureError
from fromsource.provenance.dsse import envelope_bytes, parse_envelope
from fromsource.provenance.pep740 import from_pep740
from fromsource.provenance.source import SourceAttestation, verify_source_attestation
from fromsource.provenance.statement import Attestation, verify_attestation
from fromsource.remediate.osv import Advisory
from fromsource.store.catalog import FileInfo

LOG_LIMIT = 200_000
"""Characters of a build log shown on a page (the end of it: that is where errors are)."""


def human_size(size: int) -> str:
    """``532 B``, ``12.4 KiB``, ``3.1 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def utc(moment: datetime | None) -> str:
    """``2025-01-31 14:05 UTC`` (naive datetimes are UTC, as the store writes them)."""
    if moment is None:
        return ""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- search ------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """A project in the search results, with the repositories that hold it."""

    project: str
    repos: tuple[str, ...]


def search(projects: Mapping[str, Sequence[str]], query: str, limit: int) -> tuple[list[Hit], int]:
    """Projects whose normalized name contains the normalized *query*.

    *projects* maps each repository to its project names.  Exact matches
    come first, then prefix matches, then the rest, each alphabetical.
    Returns at most *limit* hits and the total number of matches.
    """
    needle = normalize(query.strip()) if query.strip() else ""
    found: dict[str, list[str]] = {}
    for repo, names in projects.items():
        for name in names:
            if needle in name:
                found.setdefault(name, []).append(repo)

    def rank(name: str) -> tuple[int, str]:
        return (0 if name == needle else 1 if name.startswith(needle) else 2, name)

    ordered = sorted(found, key=rank)
    return [Hit(n, tuple(found[n])) for n in ordered[:limit]], len(ordered)


# -- versions ----------------------------------------------------------------


@dataclass(frozen=True)
class VersionSummary:
    """One version of a project and its files (newest file first)."""

    version: str
    files: tuple[FileInfo, ...]
    requires_python: str | None
    yanked: bool
    remediated: bool
    uploaded: datetime


def _sort_key(text: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(text))
    except InvalidVersion:
        return (0, text)


def group_versions(files: Sequence[FileInfo]) -> list[VersionSummary]:
    """*files* grouped by version, newest version first (PEP 440 order).

    A version is yanked when all its files are; *requires_python* is the
    first file's that says one.
    """
    by_version: dict[str, list[FileInfo]] = {}
    for info in files:
        by_version.setdefault(info.version, []).append(info)
    out: list[VersionSummary] = []
    for version, group in by_version.items():
        group.sort(key=lambda f: f.filename)
        key = _sort_key(version)
        out.append(
            VersionSummary(
                version=version,
                files=tuple(group),
                requires_python=next((f.requires_python for f in group if f.requires_python), None),
                yanked=all(f.yanked for f in group),
                remediated=isinstance(key[1], Version) and fs_revision(key[1]) is not None,
                uploaded=max(f.upload_time for f in group),
            )
        )
    out.sort(key=lambda v: _sort_key(v.version), reverse=True)
    return out


# -- provenance ----------------------------------------------------------------

ProvenanceStatus = Literal["verified", "invalid", "unreadable", "missing"]


@dataclass(frozen=True)
class ProvenanceView:
    """The signature check of one file's attestation and, when it holds, its contents.

    A wheel's verified statement is *attestation*; an sdist's ("mirrored
    source", :mod:`fromsource.provenance.source`) is *source*.
    """

    status: ProvenanceStatus
    message: str
    keyid: str | None = None
    attestation: Attestation | None = None
    source: SourceAttestation | None = None


def _envelope(raw: bytes) -> dict[str, Any]:
    """The DSSE envelope in a stored provenance blob (a bare envelope or PEP 740)."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProvenanceError(f"stored provenance is not JSON ({exc})") from exc
    if isinstance(doc, dict) and "attestation_bundles" in doc:
        return from_pep740(doc)
    return parse_envelope(doc)


def provenance_view(
    raw: bytes | None, keys: Mapping[str, Ed25519PublicKey], info: FileInfo
) -> ProvenanceView:
    """Check *raw* (the stored provenance of *info*) against the index's *keys*."""
    if raw is None:
        return ProvenanceView("missing", "no provenance was published for this file")
    attestation: Attestation | None = None
    source: SourceAttestation | None = None
    try:
        envelope = envelope_bytes(_envelope(raw))
        if info.kind == "sdist":
            source, keyid = verify_source_attestation(envelope, keys)
            subject = (source.subject_name, source.subject_sha256)
        else:
            attestation, keyid = verify_attestation(envelope, keys)
            subject = (attestation.subject_name, attestation.subject_sha256)
    except SignatureError as exc:
        return ProvenanceView("invalid", exc.message)
    except FromsourceError as exc:
        return ProvenanceView("unreadable", exc.message)
    if subject != (info.filename, info.sha256):
        return ProvenanceView(
            "invalid",
            f"the signature is valid but it is about {subject[0]} "
            f"(sha256 {subject[1][:16]}…), not this file",
            keyid,
        )
    return ProvenanceView(
        "verified", f"signature verified with key {keyid}", keyid, attestation, source
    )


# -- the build matrix ----------------------------------------------------------


Triple = tuple[str, str, str]
"""(python tag, ABI tag, platform tag), each ``.``-joined when a wheel has several."""
_OPEN_OR_FAILED = ("failed", "running", "queued")


@dataclass(frozen=True)
class MatrixBuild:
    """One build of a version as the matrix needs it (from the build history)."""

    id: int
    status: str
    category: str | None
    target: Triple | None
    """What the build was for (:func:`target_of` its facts), when they say."""
    file_id: int | None


@dataclass(frozen=True)
class MatrixRow:
    """One line of a version's matrix: a target, its status, and the file built for it.

    For a wheel *python*, *abi* and *platform* are its filename's tags (each
    joined with ``.`` when the wheel has several); for the sdist they say it
    serves any target.  *file* is None for a build that made no file.
    """

    python: str
    abi: str
    platform: str
    status: str
    file: FileInfo | None
    build: MatrixBuild | None = None
    note: str = ""


def _tags(filename: str) -> Triple:
    try:
        tags = parse_wheel_filename(filename)[3]
    except (InvalidWheelFilename, InvalidVersion):
        return ("?", "?", "?")

    def join(values: set[str]) -> str:
        return ".".join(sorted(values))

    return (
        join({t.interpreter for t in tags}),
        join({t.abi for t in tags}),
        join({t.platform for t in tags}),
    )


def target_of(details: Mapping[str, Any]) -> Triple | None:
    """The target a build row's facts name: ``target`` (python_tag, abi_tag, platform_tag, as
    :meth:`fromsource.build.targets.Target.to_json` writes it), else its wheel's tags."""
    target = details.get("target")
    if isinstance(target, Mapping):
        fields = [target.get(k) for k in ("python_tag", "abi_tag", "platform_tag")]
        if all(isinstance(f, str) and f for f in fields):
            return (str(fields[0]), str(fields[1]), str(fields[2]))
    wheel = details.get("wheel")
    filename = wheel.get("filename") if isinstance(wheel, Mapping) else None
    return _tags(filename) if isinstance(filename, str) else None


def build_matrix(
    files: Sequence[FileInfo], builds: Sequence[MatrixBuild], sources: Mapping[int, str]
) -> list[MatrixRow]:
    """The matrix of one version: a row per wheel, per build that made none, per sdist.

    *files* are the version's published files, *builds* its build rows (newest
    first), *sources* the verified sdist statements' kind per file id
    (``mirrored source`` or ``repacked with patches``).  A wheel's status is
    its build's (``published`` when an operator published it).  Of the builds
    that made no file, the newest failed, running or queued one per target
    without a wheel is shown (a skipped build or a ``rebuild --check`` made
    nothing new).  Wheels are sorted by tags, the sdist comes last.
    """
    by_id = {b.id: b for b in builds}
    by_file = {b.file_id: b for b in builds if b.file_id is not None}
    rows: list[MatrixRow] = []
    for info in sorted((f for f in files if f.kind == "wheel"), key=lambda f: _tags(f.filename)):
        build = by_id.get(info.build_id) if info.build_id is not None else by_file.get(info.id)
        status = build.status if build is not None else "published"
        rows.append(MatrixRow(*_tags(info.filename), status, info, build))
    shown: set[Triple | None] = {(r.python, r.abi, r.platform) for r in rows}
    for build in builds:
        made = build.file_id is not None or any(f.build_id == build.id for f in files)
        if made or build.status not in _OPEN_OR_FAILED or build.target in shown:
            continue
        shown.add(build.target)
        note = build.category or ""
        where = build.target or ("?", "?", "?")
        rows.append(MatrixRow(*where, build.status, None, build, note))
    for info in sorted((f for f in files if f.kind == "sdist"), key=lambda f: f.filename):
        build = by_id.get(info.build_id) if info.build_id is not None else None
        kind = sources.get(info.id, "no verified statement")
        rows.append(MatrixRow("source", "any", "any", kind, info, build))
    return rows


# -- SBOM ----------------------------------------------------------------------


@dataclass(frozen=True)
class SbomComponent:
    """A component the SBOM lists (a build dependency, or the tool)."""

    name: str
    version: str
    purl: str
    scope: str


@dataclass(frozen=True)
class SbomPatch:
    """A patch of the pedigree and the advisories it resolves."""

    name: str
    type: str
    resolves: tuple[str, ...]


@dataclass(frozen=True)
class SbomView:
    """The parts of a CycloneDX SBOM a reader looks for first."""

    status: Literal["ok", "missing", "unreadable"]
    message: str = ""
    spec_version: str = ""
    purl: str = ""
    sdist_url: str = ""
    sdist_sha256: str = ""
    tools: tuple[str, ...] = ()
    components: tuple[SbomComponent, ...] = ()
    patches: tuple[SbomPatch, ...] = ()
    vulnerabilities: tuple[tuple[str, str], ...] = ()


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def sbom_view(raw: bytes | None) -> SbomView:
    """A summary of a CycloneDX JSON SBOM; never raises (a bad document is ``unreadable``)."""
    if raw is None:
        return SbomView("missing", "no SBOM was published for this file")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return SbomView("unreadable", f"the SBOM is not JSON ({exc})")
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        return SbomView("unreadable", "the document is not a CycloneDX SBOM")
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    assert isinstance(metadata, dict)
    component = metadata.get("component") if isinstance(metadata.get("component"), dict) else {}
    assert isinstance(component, dict)
    sdist = next(
        (r for r in _dicts(component.get("externalReferences")) if r.get("type") == "source-distribution"),
        {},
    )
    sdist_hash = next(
        (_str(h.get("content")) for h in _dicts(sdist.get("hashes")) if h.get("alg") == "SHA-256"), ""
    )
    tools_block = metadata.get("tools")
    tool_list = _dicts(tools_block.get("components")) if isinstance(tools_block, dict) else []
    pedigree = component.get("pedigree") if isinstance(component.get("pedigree"), dict) else {}
    assert isinstance(pedigree, dict)
    patches = tuple(
        SbomPatch(
            name=_str((p.get("diff") or {}).get("url")) if isinstance(p.get("diff"), dict) else "",
            type=_str(p.get("type")),
            resolves=tuple(_str(r.get("id")) for r in _dicts(p.get("resolves"))),
        )
        for p in _dicts(pedigree.get("patches"))
    )
    vulns = tuple(
        (
            _str(v.get("id")),
            _str((v.get("analysis") or {}).get("state")) if isinstance(v.get("analysis"), dict) else "",
        )
        for v in _dicts(doc.get("vulnerabilities"))
    )
    return SbomView(
        "ok",
        spec_version=_str(doc.get("specVersion")),
        purl=_str(component.get("purl")),
        sdist_url=_str(sdist.get("url")),
        sdist_sha256=sdist_hash,
        tools=tuple(f"{_str(t.get('name'))} {_str(t.get('version'))}".strip() for t in tool_list),
        components=tuple(
            SbomComponent(_str(c.get("name")), _str(c.get("version")), _str(c.get("purl")), _str(c.get("scope")))
            for c in _dicts(doc.get("components"))
        ),
        patches=patches,
        vulnerabilities=vulns,
    )


# -- build log -----------------------------------------------------------------


@dataclass(frozen=True)
class BuildView:
    """One build as the version page shows it: status, times, error, the log's end."""

    id: int
    status: str
    error: str | None
    log: str
    log_truncated: bool
    created: datetime
    started: datetime | None
    finished: datetime | None

    @property
    def duration(self) -> str:
        """``12.3 s`` between start and end, or empty."""
        if self.started is None or self.finished is None:
            return ""
        return f"{(self.finished - self.started).total_seconds():.1f} s"


def build_view(
    id: int, status: str, error: str | None, log: str, created: datetime,
    started: datetime | None, finished: datetime | None,
) -> BuildView:
    """A :class:`BuildView` keeping the last :data:`LOG_LIMIT` characters of *log*."""
    truncated = len(log) > LOG_LIMIT
    return BuildView(
        id, status, error, log[-LOG_LIMIT:] if truncated else log, truncated, created, started, finished
    )


# -- advisories ----------------------------------------------------------------


@dataclass(frozen=True)
class FixedAdvisory:
    """An advisory a remediated version fixes, the patches that fix it, and what we know of it."""

    id: str
    aliases: tuple[str, ...]
    summary: str
    patches: tuple[str, ...]


def fixed_advisories(
    patches: Sequence[tuple[str, Sequence[str]]], advisories: Sequence[Advisory]
) -> list[FixedAdvisory]:
    """One entry per vulnerability the *patches* (name, fixed ids) resolve.

    Ids that are aliases of one stored advisory are merged into it; ids no
    stored advisory knows are listed on their own.  Sorted by id.
    """
    merged: dict[str, tuple[Advisory | None, set[str], list[str]]] = {}
    for patch, ids in patches:
        for fixed in ids:
            advisory = next((a for a in advisories if fixed in a.ids), None)
            key = advisory.id if advisory else fixed
            entry = merged.setdefault(key, (advisory, set(), []))
            entry[1].add(fixed)
            if patch not in entry[2]:
                entry[2].append(patch)
    out: list[FixedAdvisory] = []
    for key, (known, named, names) in sorted(merged.items()):
        aliases = set(known.aliases) if known else set()
        out.append(
            FixedAdvisory(
                id=key,
                aliases=tuple(sorted((aliases | named) - {key})),
                summary=known.title if known else "",
                patches=tuple(names),
            )
        )
    return out
