"""The signed statement about a served sdist: "mirrored source", not a build.

An sdist the index lists beside its wheels is the upstream's own file (the
very bytes fetched and checked against the upstream's sha256), or, for a
remediated release, that file's tree with the patches applied, repacked
reproducibly as ``X.Y.Z+fs.N``.  Its attestation is an in-toto Statement v1
with a SLSA Provenance v1 predicate of its own build type,
:data:`SOURCE_BUILD_TYPE`, so that no reader can take it for a wheel build
(:func:`fromsource.provenance.statement.parse_statement` refuses it, and
:func:`parse_source_statement` refuses a wheel's).  It is signed exactly as
a wheel's statement is (:func:`~fromsource.provenance.statement.sign_statement`).
Layout: docs/attestations.md "Sdists: mirrored source".  Pure functions over values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import fromsource
from fromsource.errors import ProvenanceError
from fromsource.provenance._reader import JsonReader
from fromsource.provenance.dsse import verify_in_toto
from fromsource.provenance.statement import (
    BUILDER_ID,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    PatchInfo,
    _external_parameters,
    _hex,
    _patches,
    _rfc3339,
)

__all__ = [
    "SOURCE_BUILD_TYPE",
    "SourceAttestation",
    "SourceFacts",
    "parse_source_statement",
    "source_statement",
    "verify_source_attestation",
]

SOURCE_BUILD_TYPE = "urn:fromsource:buildtype:mirrored-source:v1"


@dataclass(frozen=True)
class SourceFacts:
    """What the statement says about one served sdist, besides the file itself.

    *version* is the served version (``X.Y.Z``, or ``X.Y.Z+fs.N`` for a
    repack); *upstream_url* must carry no credentials; *fetched* is when the
    index fetched the upstream file, *published* when this statement was
    made (both timezone-aware).  *patches* and *source_date_epoch* are set
    for a remediated repack only.
    """

    project: str
    version: str
    repository: str
    upstream_url: str
    upstream_sha256: str
    fetched: datetime
    published: datetime
    invocation_id: str
    patches: tuple[PatchInfo, ...] = ()
    source_date_epoch: int | None = None
    builder_id: str = BUILDER_ID
    builder_version: str = fromsource.__version__


@dataclass(frozen=True)
class SourceAttestation:
    """A verified "mirrored source" statement, parsed once at the boundary.

    *repacked* is True for a remediated repack (then *patches* lists what was
    applied); otherwise the subject is the upstream file itself and
    *subject_sha256* equals *sdist_sha256*.
    """

    subject_name: str
    subject_sha256: str
    project: str
    version: str
    repository: str
    sdist_url: str
    sdist_sha256: str
    fetched: datetime
    published: datetime
    invocation_id: str
    builder_id: str
    builder_version: str
    patches: tuple[PatchInfo, ...]
    source_date_epoch: int | None
    raw: Mapping[str, Any]

    @property
    def repacked(self) -> bool:
        """Whether the served file is a repack of the patched tree, not the upstream bytes."""
        return self.source_date_epoch is not None


def source_statement(filename: str, sha256: str, facts: SourceFacts) -> dict[str, Any]:
    """The in-toto statement for the sdist *filename* with digest *sha256*.

    Raises ProvenanceError for a digest that is not lower-case hex, a naive
    datetime, a mirrored file whose digest is not the upstream's, or a repack
    without its SOURCE_DATE_EPOCH.
    """
    repack = facts.source_date_epoch is not None
    if not repack and sha256 != facts.upstream_sha256:
        raise ProvenanceError(
            f"{filename}: a mirrored sdist must be the upstream file itself (sha256 "
            f"{facts.upstream_sha256}), not {sha256}; pass source_date_epoch for a repack"
        )
    internal: dict[str, Any] = {"fetched_on": _rfc3339(facts.fetched, "fetched")}
    if repack:
        internal["repack"] = {"source_date_epoch": facts.source_date_epoch}
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": filename, "digest": {"sha256": _hex(sha256, filename)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": SOURCE_BUILD_TYPE,
                "externalParameters": _external_parameters(
                    facts.project,
                    facts.version,
                    facts.repository,
                    facts.upstream_url,
                    facts.upstream_sha256,
                    facts.patches,
                ),
                "internalParameters": internal,
                "resolvedDependencies": [],
            },
            "runDetails": {
                "builder": {
                    "id": facts.builder_id,
                    "version": {"fromsource": facts.builder_version},
                },
                "metadata": {
                    "invocationId": facts.invocation_id,
                    "startedOn": _rfc3339(facts.fetched, "fetched"),
                    "finishedOn": _rfc3339(facts.published, "published"),
                },
            },
        },
    }


def parse_source_statement(payload: bytes) -> SourceAttestation:
    """Parse a statement made by :func:`source_statement` (the DSSE payload).

    Raises ProvenanceError when the payload is not JSON, not an in-toto
    Statement v1 with a SLSA Provenance v1 predicate of
    :data:`SOURCE_BUILD_TYPE`, has other than one subject, a field of the
    wrong shape, or a mirrored subject whose digest is not the upstream's.
    """
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProvenanceError(f"attestation payload is not JSON ({exc})") from exc
    root = JsonReader(document, "statement")
    if root["_type"].text() != STATEMENT_TYPE:
        raise ProvenanceError(f"attestation: _type is not {STATEMENT_TYPE}")
    if root["predicateType"].text() != PREDICATE_TYPE:
        raise ProvenanceError(f"attestation: predicateType is not {PREDICATE_TYPE}")
    subjects = root["subject"].items()
    if len(subjects) != 1:
        raise ProvenanceError(f"attestation: expected one subject, found {len(subjects)}")
    definition = root["predicate"]["buildDefinition"]
    build_type = definition["buildType"].text()
    if build_type != SOURCE_BUILD_TYPE:
        raise ProvenanceError(
            f"attestation: buildType is {build_type!r}, expected {SOURCE_BUILD_TYPE}; this is "
            "not a fromsource sdist attestation",
            build_type=build_type,
        )
    external, internal = definition["externalParameters"], definition["internalParameters"]
    run = root["predicate"]["runDetails"]
    repack = internal.obj().get("repack")
    epoch = internal["repack"]["source_date_epoch"].integer() if repack is not None else None
    subject_sha256 = subjects[0]["digest"].sha256()
    sdist_sha256 = external["sdist"]["digest"].sha256()
    if epoch is None and subject_sha256 != sdist_sha256:
        raise ProvenanceError(
            "attestation: a mirrored sdist's digest must be the upstream file's; the "
            "statement is inconsistent"
        )
    return SourceAttestation(
        subject_name=subjects[0]["name"].text(),
        subject_sha256=subject_sha256,
        project=external["project"].text(),
        version=external["version"].text(),
        repository=external["repository"].text(),
        sdist_url=external["sdist"]["uri"].text(),
        sdist_sha256=sdist_sha256,
        fetched=internal["fetched_on"].time(),
        published=run["metadata"]["finishedOn"].time(),
        invocation_id=run["metadata"]["invocationId"].text(),
        builder_id=run["builder"]["id"].text(),
        builder_version=run["builder"]["version"]["fromsource"].text(),
        patches=_patches(external),
        source_date_epoch=epoch,
        raw=root.obj(),
    )


def verify_source_attestation(
    envelope: bytes | str, keys: Mapping[str, Ed25519PublicKey]
) -> tuple[SourceAttestation, str]:
    """Check *envelope* against the trusted *keys* and parse its sdist statement.

    Returns the attestation and the id of the key that signed it.  Raises
    SignatureError when no signature verifies with a trusted key, and
    ProvenanceError when the envelope or its statement is malformed or is not
    about an sdist.  Comparing the subject with a file is the caller's part.
    """
    payload, keyid = verify_in_toto(envelope, keys)
    return parse_source_statement(payload), keyid
