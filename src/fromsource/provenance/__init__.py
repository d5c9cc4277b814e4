"""Provenance: SBOMs, signed build statements, DSSE envelopes, keys and PEP 740.

Pure values and functions; the key files are :mod:`fromsource.provenance.keystore`.

The public surface of the subpackage; import from here rather than from the
modules.
"""

from fromsource.provenance.dsse import (
    IN_TOTO_PAYLOAD_TYPE,
    envelope_bytes,
    pae,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from fromsource.provenance.keys import (
    SigningKey,
    key_id,
    keys_document,
    parse_keys_document,
)
from fromsource.provenance.pep740 import from_pep740, to_pep740
from fromsource.provenance.sbom import SBOM_MEDIA_TYPE, SBOM_PATH, SbomInput, build_sbom
from fromsource.provenance.source import (
    SOURCE_BUILD_TYPE,
    SourceAttestation,
    SourceFacts,
    parse_source_statement,
    source_statement,
    verify_source_attestation,
)
from fromsource.provenance.statement import (
    BUILD_TYPE,
    BUILDER_ID,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    Attestation,
    BuildFacts,
    BundledComponent,
    PatchInfo,
    ResolvedDependency,
    SystemLibrary,
    build_statement,
    dependency_purl,
    parse_statement,
    sign_statement,
    statement_bytes,
    verify_attestation,
)

__all__ = [
    "BUILDER_ID",
    "BUILD_TYPE",
    "IN_TOTO_PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "SBOM_MEDIA_TYPE",
    "SBOM_PATH",
    "SOURCE_BUILD_TYPE",
    "STATEMENT_TYPE",
    "Attestation",
    "BuildFacts",
    "BundledComponent",
    "PatchInfo",
    "ResolvedDependency",
    "SbomInput",
    "SigningKey",
    "SourceAttestation",
    "SourceFacts",
    "SystemLibrary",
    "build_sbom",
    "build_statement",
    "dependency_purl",
    "envelope_bytes",
    "from_pep740",
    "key_id",
    "keys_document",
    "pae",
    "parse_envelope",
    "parse_keys_document",
    "parse_source_statement",
    "parse_statement",
    "sign_envelope",
    "sign_statement",
    "source_statement",
    "statement_bytes",
    "to_pep740",
    "verify_attestation",
    "verify_envelope",
    "verify_source_attestation",
]
