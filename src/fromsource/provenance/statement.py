"""The signed build statement: in-toto Statement v1 with a SLSA Provenance v1 predicate.

:func:`build_statement` turns the facts of one build into the document laid
out in ``docs/attestations.md``; :func:`sign_statement` wraps it in a DSSE
envelope; :func:`parse_statement` and :func:`verify_attestation` read it back
into an :class:`Attestation`.  Pure functions over values: the clock, the keys
and the bytes are all arguments.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from packageurl import PackageURL

import fromsource
from fromsource.dist.names import normalize
from fromsource.dist.record import RecordEntry, is_record_path
from fromsource.errors import ProvenanceError
from fromsource.provenance._reader import JsonReader
from fromsource.provenance.agreement import Agreement, parse_agreement
from fromsource.provenance.dsse import (
    envelope_bytes,
    sign_envelope,
    verify_in_toto,
)
from fromsource.provenance.keys import SigningKey

__all__ = [
    "BUILDER_ID",
    "BUILD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Attestation",
    "BuildFacts",
    "BundledComponent",
    "PatchInfo",
    "ResolvedDependency",
    "SystemLibrary",
    "build_statement",
    "dependency_purl",
    "parse_statement",
    "sign_statement",
    "statement_bytes",
    "verify_attestation",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:fromsource:buildtype:wheel:v1"
BUILDER_ID = "urn:fromsource:builder"

DependencySource = Literal["fromsource", "bootstrap"]
_SOURCES: tuple[DependencySource, ...] = ("fromsource", "bootstrap")
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PatchInfo:
    """One patch applied before the build: file name, sha256 (hex), advisories it fixes."""

    name: str
    sha256: str
    fixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResolvedDependency:
    """One build dependency installed into the build environment.

    *source* is ``fromsource`` when the wheel came from our own ``python``
    repository, ``bootstrap`` when it came from upstream; *uri* is the URL it
    was fetched from.  In a parsed statement *project* is PEP 503 normalized.
    """

    filename: str
    project: str
    version: str
    sha256: str
    source: DependencySource
    uri: str


@dataclass(frozen=True)
class SystemLibrary:
    """A shared library of the build host that manylinux repair copied into the wheel.

    *member* is its path in the wheel and *sha256* the digest of that copy
    (patchelf changed it); *source_path* and *source_sha256* name the host
    file it was copied from; *package*, *package_version* and *architecture*
    the Debian package owning that file where dpkg knows; *distro* the
    purl namespace of that package (``debian``, ``ubuntu``).
    """

    member: str
    sha256: str
    soname: str | None = None
    source_path: str | None = None
    source_sha256: str | None = None
    package: str | None = None
    package_version: str | None = None
    architecture: str | None = None
    distro: str = "debian"

    @property
    def file_name(self) -> str:
        """The library's file name in the wheel (``libffi-983e72b7.so.8.1.2``)."""
        return self.member.rsplit("/", 1)[-1]

    @property
    def purl(self) -> str | None:
        """``pkg:deb/debian/libffi8@3.4.4-1?arch=amd64``, when the package is known."""
        if not self.package:
            return None
        qualifiers = {"arch": self.architecture} if self.architecture else None
        return PackageURL(
            type="deb",
            namespace=self.distro,
            name=self.package,
            version=self.package_version,
            qualifiers=qualifiers,
        ).to_string()


@dataclass(frozen=True)
class BundledComponent:
    """A package of another ecosystem compiled into the wheel (a Rust crate, issue 13).

    *purl* names it (``pkg:cargo/NAME@VERSION``); *sha256* is the digest of
    its archive when known; *properties* are ``fromsource:*`` name/value pairs
    (where it came from); *name* is its archive's file name
    (``NAME-VERSION.crate``), the provenance's name for it ("" : the purl).
    """

    purl: str
    sha256: str | None
    properties: tuple[tuple[str, str], ...] = ()
    name: str = ""


@dataclass(frozen=True)
class BuildFacts:
    """Everything the statement says about one build, besides the wheel itself.

    *started* and *finished* must be timezone-aware.  *sandbox*, *target*
    (the interpreter's tags and glibc) and *repair* (what manylinux repair
    did) must be JSON-serializable (they are copied into the statement as
    is); *grafted* are the host libraries repair copied into the wheel;
    *bundled* the packages of other ecosystems compiled into it (Rust
    crates) and *rust* what the build's Rust toolchain and crates were
    (JSON-serializable, ``internalParameters.rust``);
    *agreement* the independent builds that made the same wheel (issue 17), when more
    than one had to.
    """

    project: str
    version: str
    repository: str
    sdist_url: str
    sdist_sha256: str
    patches: tuple[PatchInfo, ...]
    dependencies: tuple[ResolvedDependency, ...]
    build_key: str
    python: str
    platform: str
    source_date_epoch: int
    sandbox: Mapping[str, object]
    invocation_id: str
    started: datetime
    finished: datetime
    builder_id: str = BUILDER_ID
    builder_version: str = fromsource.__version__
    target: Mapping[str, object] | None = None
    repair: Mapping[str, object] | None = None
    grafted: tuple[SystemLibrary, ...] = ()
    bundled: tuple[BundledComponent, ...] = ()
    rust: Mapping[str, object] | None = None
    agreement: Agreement | None = None


@dataclass(frozen=True)
class Attestation:
    """What a verified statement says, parsed once at the boundary.

    *byproducts* maps each wheel member path to its hex sha256 (RECORD itself
    excluded); *raw* is the whole statement as decoded JSON.
    """

    subject_name: str
    subject_sha256: str
    project: str
    version: str
    repository: str
    sdist_url: str
    sdist_sha256: str
    patches: tuple[PatchInfo, ...]
    dependencies: tuple[ResolvedDependency, ...]
    byproducts: Mapping[str, str]
    build_key: str
    invocation_id: str
    sandbox: Mapping[str, object]
    builder_id: str
    started: datetime
    finished: datetime
    raw: Mapping[str, Any]
    builder_version: str = ""
    python: str = ""
    platform: str = ""
    source_date_epoch: int | None = None
    byproduct_sizes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    grafted: tuple[SystemLibrary, ...] = ()
    bundled: tuple[BundledComponent, ...] = ()
    agreement: Agreement | None = None
    """The independent builds that made this wheel, when more than one had to (issue 17)."""


def dependency_purl(project: str, version: str) -> str:
    """The package URL ``pkg:pypi/<normalized name>@<version>`` of a Python package."""
    return PackageURL(type="pypi", name=normalize(project), version=version).to_string()


def _hex(value: str, what: str) -> str:
    if not _HEX64.fullmatch(value):
        raise ProvenanceError(
            f"{what}: {value!r} is not a lower-case hex sha256 digest; fix the caller",
            value=value,
        )
    return value


def _rfc3339(moment: datetime, what: str) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ProvenanceError(f"{what}: {moment} has no time zone; pass an aware datetime")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _external_parameters(
    project: str,
    version: str,
    repository: str,
    sdist_url: str,
    sdist_sha256: str,
    patches: Sequence[PatchInfo],
) -> dict[str, Any]:
    """``buildDefinition.externalParameters``, shared by the wheel and the sdist statements:
    the release, the sdist it was made from and the patches applied.  Raises ProvenanceError
    for a digest that is not lower-case hex."""
    return {
        "project": project,
        "version": version,
        "repository": repository,
        "sdist": {"uri": sdist_url, "digest": {"sha256": _hex(sdist_sha256, sdist_url)}},
        "patches": [
            {
                "name": p.name,
                "digest": {"sha256": _hex(p.sha256, p.name)},
                "fixes": list(p.fixes),
            }
            for p in patches
        ],
    }


def _patches(external: JsonReader) -> tuple[PatchInfo, ...]:
    """The patches listed in a parsed ``externalParameters`` (either statement's)."""
    return tuple(
        PatchInfo(
            name=p["name"].text(),
            sha256=p["digest"].sha256(),
            fixes=tuple(f.text() for f in p["fixes"].items()),
        )
        for p in external["patches"].items()
    )


def build_statement(
    wheel_filename: str,
    wheel_sha256: str,
    record: Sequence[RecordEntry],
    facts: BuildFacts,
) -> dict[str, Any]:
    """The in-toto statement for *wheel_filename*, as laid out in docs/attestations.md.

    Every RECORD entry except RECORD itself becomes a byproduct; each must
    carry a sha256 (a normalized wheel's RECORD always does).  Raises
    ProvenanceError for a digest that is not lower-case hex, an entry without
    a digest, or a naive datetime.
    """
    byproducts: list[dict[str, Any]] = []
    for entry in record:
        if is_record_path(entry.path):
            continue
        if entry.sha256 is None:
            raise ProvenanceError(
                f"{wheel_filename}: RECORD entry {entry.path} has no sha256; normalize the "
                "wheel before attesting it",
                path=entry.path,
            )
        item: dict[str, Any] = {
            "name": entry.path,
            "digest": {"sha256": _hex(entry.sha256, entry.path)},
        }
        if entry.size is not None:
            item["annotations"] = {"size": entry.size}
        byproducts.append(item)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": wheel_filename, "digest": {"sha256": _hex(wheel_sha256, wheel_filename)}}
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": _external_parameters(
                    facts.project,
                    facts.version,
                    facts.repository,
                    facts.sdist_url,
                    facts.sdist_sha256,
                    facts.patches,
                ),
                "internalParameters": _internal(facts),
                "resolvedDependencies": [
                    *(
                        {
                            "name": d.filename,
                            "uri": dependency_purl(d.project, d.version),
                            "digest": {"sha256": _hex(d.sha256, d.filename)},
                            "downloadLocation": d.uri,
                            "annotations": {"source": d.source},
                        }
                        for d in facts.dependencies
                    ),
                    *(_bundled_item(b) for b in facts.bundled),
                    *(_grafted_item(g) for g in facts.grafted),
                ],
            },
            "runDetails": {
                "builder": {
                    "id": facts.builder_id,
                    "version": {"fromsource": facts.builder_version},
                },
                "metadata": {
                    "invocationId": facts.invocation_id,
                    "startedOn": _rfc3339(facts.started, "started"),
                    "finishedOn": _rfc3339(facts.finished, "finished"),
                },
                "byproducts": byproducts,
            },
        },
    }


def _internal(facts: BuildFacts) -> dict[str, Any]:
    internal: dict[str, Any] = {
        "build_key": facts.build_key,
        "python": facts.python,
        "platform": facts.platform,
        "source_date_epoch": facts.source_date_epoch,
        "sandbox": dict(facts.sandbox),
    }
    if facts.target is not None:
        internal["target"] = dict(facts.target)
    if facts.repair is not None:
        internal["repair"] = dict(facts.repair)
    if facts.rust is not None:
        internal["rust"] = dict(facts.rust)
    if facts.agreement is not None:
        internal["agreement"] = facts.agreement.to_json()
    return internal


_PROPERTY_PREFIX = "fromsource:"


def _bundled_item(item: BundledComponent) -> dict[str, Any]:
    """A bundled package (a Rust crate) as a resolved dependency: its purl and archive digest;
    ``annotations.source`` is ``bundled``, with its SBOM properties (``crate-origin``,
    ``cargo-source``)."""
    notes: dict[str, Any] = {"source": "bundled"}
    for name, value in item.properties:
        notes[name.removeprefix(_PROPERTY_PREFIX)] = value
    entry: dict[str, Any] = {"name": item.name or item.purl, "uri": item.purl}
    if item.sha256 is not None:
        entry["digest"] = {"sha256": _hex(item.sha256, item.purl)}
    entry["annotations"] = notes
    return entry


def _grafted_item(library: SystemLibrary) -> dict[str, Any]:
    """A grafted library as a resolved dependency: the host file (its package's purl and
    digest) the wheel's copy came from; ``annotations.source`` is ``system``."""
    item: dict[str, Any] = {
        "name": library.file_name,
        "annotations": {
            "source": "system",
            "member": library.member,
            "digest_in_wheel": {"sha256": _hex(library.sha256, library.member)},
            "soname": library.soname,
            "source_path": library.source_path,
            "source_digest": (
                {"sha256": _hex(library.source_sha256, library.member)}
                if library.source_sha256
                else None
            ),
            "package": library.package,
            "package_version": library.package_version,
            "architecture": library.architecture,
            "distro": library.distro,
        },
    }
    if library.purl is not None:
        item["uri"] = library.purl
    # The input is the host file; when it is unknown, the copy (a ResourceDescriptor
    # needs a uri or a digest).
    item["digest"] = {"sha256": _hex(library.source_sha256 or library.sha256, library.member)}
    return item


def statement_bytes(statement: Mapping[str, Any]) -> bytes:
    """The canonical payload bytes of *statement*: sorted keys, no spaces, UTF-8.

    Raises ProvenanceError when the statement holds something JSON cannot carry.
    """
    try:
        return json.dumps(
            statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ProvenanceError(f"the statement is not JSON-serializable ({exc})") from exc


def sign_statement(statement: Mapping[str, Any], key: SigningKey) -> bytes:
    """The serialized DSSE envelope over *statement*, signed with *key*."""
    return envelope_bytes(sign_envelope(statement_bytes(statement), key.private, key.keyid))


def verify_attestation(
    envelope: bytes | str, keys: Mapping[str, Ed25519PublicKey]
) -> tuple[Attestation, str]:
    """Check *envelope* against the trusted *keys* and parse its statement.

    Returns the attestation and the id of the key that signed it.  Raises
    SignatureError when no signature verifies with a trusted key, and
    ProvenanceError when the envelope or its statement is malformed.  It does
    not compare the subject with any file: that is the caller's decision.
    """
    payload, keyid = verify_in_toto(envelope, keys)
    return parse_statement(payload), keyid


def _dependency(item: JsonReader) -> ResolvedDependency:
    source = item["annotations"]["source"].text()
    if source not in _SOURCES:
        raise ProvenanceError(
            f"attestation: {item.path}.annotations.source is {source!r}, expected one of "
            f"{list(_SOURCES)}",
            field=item.path,
        )
    uri = item["uri"].text()
    try:
        purl = PackageURL.from_string(uri)
    except ValueError as exc:
        raise ProvenanceError(f"attestation: {item.path}.uri {uri!r} is not a purl") from exc
    if purl.type != "pypi" or not purl.version:
        raise ProvenanceError(
            f"attestation: {item.path}.uri {uri!r} is not a pkg:pypi purl with a version"
        )
    return ResolvedDependency(
        filename=item["name"].text(),
        project=purl.name,
        version=purl.version,
        sha256=item["digest"].sha256(),
        source=source,
        uri=item["downloadLocation"].text(),
    )


def _optional_text(value: object, path: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ProvenanceError(f"attestation: {path} is not a string or null", field=path)


def _system_library(item: JsonReader) -> SystemLibrary:
    notes = item["annotations"]
    raw = notes.obj()
    path = f"{item.path}.annotations"
    return SystemLibrary(
        member=notes["member"].text(),
        sha256=notes["digest_in_wheel"].sha256(),
        soname=_optional_text(raw.get("soname"), f"{path}.soname"),
        source_path=_optional_text(raw.get("source_path"), f"{path}.source_path"),
        source_sha256=notes["source_digest"].sha256() if raw.get("source_digest") else None,
        package=_optional_text(raw.get("package"), f"{path}.package"),
        package_version=_optional_text(raw.get("package_version"), f"{path}.package_version"),
        architecture=_optional_text(raw.get("architecture"), f"{path}.architecture"),
        distro=_optional_text(raw.get("distro"), f"{path}.distro") or "debian",
    )


def _source_of(item: JsonReader) -> object:
    notes = item.obj().get("annotations")
    return notes.get("source") if isinstance(notes, dict) else None


def _bundled(item: JsonReader) -> BundledComponent:
    raw = item.obj()
    notes = item["annotations"].obj()
    properties = tuple(
        (_PROPERTY_PREFIX + key, value)
        for key, value in notes.items()
        if key != "source" and isinstance(value, str)
    )
    uri = item["uri"].text()
    try:
        PackageURL.from_string(uri)
    except ValueError as exc:
        raise ProvenanceError(f"attestation: {item.path}.uri {uri!r} is not a purl") from exc
    return BundledComponent(
        purl=uri,
        sha256=item["digest"].sha256() if "digest" in raw else None,
        properties=properties,
        name=item["name"].text(),
    )


def parse_statement(payload: bytes) -> Attestation:
    """Parse a statement produced by :func:`build_statement` (the DSSE payload).

    Raises ProvenanceError when the payload is not JSON, is not an in-toto
    Statement v1 with a SLSA Provenance v1 predicate of our build type, does
    not have exactly one subject, or any field has the wrong shape.
    """
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProvenanceError(f"attestation payload is not JSON ({exc})") from exc
    root = JsonReader(document, "statement")
    if root["_type"].text() != STATEMENT_TYPE:
        raise ProvenanceError(f"attestation: _type is not {STATEMENT_TYPE}")
    predicate_type = root["predicateType"].text()
    if predicate_type != PREDICATE_TYPE:
        raise ProvenanceError(
            f"attestation: predicateType is {predicate_type!r}, expected {PREDICATE_TYPE}; "
            "this is not a fromsource build attestation",
            predicate_type=predicate_type,
        )
    subjects = root["subject"].items()
    if len(subjects) != 1:
        raise ProvenanceError(f"attestation: expected one subject, found {len(subjects)}")
    definition = root["predicate"]["buildDefinition"]
    build_type = definition["buildType"].text()
    if build_type != BUILD_TYPE:
        raise ProvenanceError(
            f"attestation: buildType is {build_type!r}, expected {BUILD_TYPE}",
            build_type=build_type,
        )
    external = definition["externalParameters"]
    internal = definition["internalParameters"]
    resolved = definition["resolvedDependencies"].items()
    run = root["predicate"]["runDetails"]
    byproducts: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for item in run["byproducts"].items():
        name = item["name"].text()
        if name in byproducts:
            raise ProvenanceError(f"attestation: byproduct {name} is listed twice")
        byproducts[name] = item["digest"].sha256()
        if isinstance(item.obj().get("annotations"), dict) and "size" in item.obj()["annotations"]:
            sizes[name] = item["annotations"]["size"].integer()
    return Attestation(
        subject_name=subjects[0]["name"].text(),
        subject_sha256=subjects[0]["digest"].sha256(),
        project=external["project"].text(),
        version=external["version"].text(),
        repository=external["repository"].text(),
        sdist_url=external["sdist"]["uri"].text(),
        sdist_sha256=external["sdist"]["digest"].sha256(),
        patches=_patches(external),
        dependencies=tuple(
            _dependency(d) for d in resolved if _source_of(d) not in ("system", "bundled")
        ),
        grafted=tuple(_system_library(d) for d in resolved if _source_of(d) == "system"),
        bundled=tuple(_bundled(d) for d in resolved if _source_of(d) == "bundled"),
        byproducts=MappingProxyType(byproducts),
        build_key=internal["build_key"].text(),
        invocation_id=run["metadata"]["invocationId"].text(),
        sandbox=MappingProxyType(internal["sandbox"].obj()),
        builder_id=run["builder"]["id"].text(),
        started=run["metadata"]["startedOn"].time(),
        finished=run["metadata"]["finishedOn"].time(),
        raw=MappingProxyType(root.obj()),
        builder_version=run["builder"]["version"]["fromsource"].text(),
        python=internal["python"].text(),
        platform=internal["platform"].text(),
        source_date_epoch=internal["source_date_epoch"].integer(),
        byproduct_sizes=MappingProxyType(sizes),
        agreement=_agreement(internal, subjects[0]["digest"].sha256()),
    )


def _agreement(internal: JsonReader, subject_sha256: str) -> Agreement | None:
    """The statement's ``internalParameters.agreement``, None when it has none."""
    value = internal.obj().get("agreement")
    if value is None:
        return None
    return parse_agreement(value, f"{internal.path}.agreement", subject_sha256)
