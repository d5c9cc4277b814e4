"""The "mirrored source" statement of a served sdist: build, sign, verify, parse."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tests.provenance.test_statement import FACTS, RECORD, WHEEL

from fromsource.errors import ProvenanceError, SignatureError
from fromsource.provenance import (
    SOURCE_BUILD_TYPE,
    PatchInfo,
    SigningKey,
    SourceFacts,
    build_statement,
    key_id,
    parse_source_statement,
    parse_statement,
    sign_statement,
    source_statement,
    statement_bytes,
    verify_attestation,
    verify_source_attestation,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "attestations.md"
UPSTREAM = "a" * 64
MIRRORED = SourceFacts(
    project="flask",
    version="2.0.0",
    repository="python",
    upstream_url="http://127.0.0.1:9/files/flask-2.0.0.tar.gz",
    upstream_sha256=UPSTREAM,
    fetched=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    published=datetime(2024, 5, 1, 12, 5, tzinfo=UTC),
    invocation_id="build-42",
)
PATCH = PatchInfo("0001-vary-cookie.patch", "4" * 64, ("PYSEC-2023-62",))
REPACKED = replace(
    MIRRORED,
    version="2.0.0+fs.1",
    repository="python-remediated",
    patches=(PATCH,),
    source_date_epoch=1_620_000_000,
)


def new_key() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    return SigningKey(private, key_id(private.public_key()))


def test_a_mirrored_sdist_round_trips_through_a_signature() -> None:
    key = new_key()
    envelope = sign_statement(source_statement("flask-2.0.0.tar.gz", UPSTREAM, MIRRORED), key)
    att, keyid = verify_source_attestation(envelope, {key.keyid: key.public})
    assert keyid == key.keyid
    assert (att.subject_name, att.subject_sha256, att.sdist_sha256) == (
        "flask-2.0.0.tar.gz",
        UPSTREAM,
        UPSTREAM,
    )
    assert (att.project, att.version, att.repository) == ("flask", "2.0.0", "python")
    assert att.sdist_url == MIRRORED.upstream_url and att.fetched == MIRRORED.fetched
    assert att.invocation_id == "build-42" and not att.repacked and att.patches == ()
    with pytest.raises(SignatureError):
        verify_source_attestation(envelope, {new_key().keyid: new_key().public})


def test_a_repack_lists_its_patches_and_epoch() -> None:
    statement = source_statement("flask-2.0.0+fs.1.tar.gz", "b" * 64, REPACKED)
    att = parse_source_statement(statement_bytes(statement))
    assert att.repacked and att.source_date_epoch == 1_620_000_000
    assert att.patches == (PATCH,) and att.sdist_sha256 == UPSTREAM


def test_a_mirrored_sdist_must_be_the_upstream_bytes() -> None:
    with pytest.raises(ProvenanceError, match="upstream file itself"):
        source_statement("flask-2.0.0.tar.gz", "b" * 64, MIRRORED)
    statement = source_statement("flask-2.0.0.tar.gz", UPSTREAM, MIRRORED)
    statement["subject"][0]["digest"]["sha256"] = "b" * 64
    with pytest.raises(ProvenanceError, match="inconsistent"):
        parse_source_statement(statement_bytes(statement))


def test_neither_statement_passes_for_the_other() -> None:
    key = new_key()
    keys = {key.keyid: key.public}
    sdist = sign_statement(source_statement("flask-2.0.0.tar.gz", UPSTREAM, MIRRORED), key)
    wheel = sign_statement(build_statement(WHEEL, "c" * 64, RECORD, FACTS), key)
    with pytest.raises(ProvenanceError, match="buildType"):
        verify_attestation(sdist, keys)
    with pytest.raises(ProvenanceError, match="not a fromsource sdist attestation"):
        verify_source_attestation(wheel, keys)
    with pytest.raises(ProvenanceError):
        parse_statement(statement_bytes(source_statement("a-1.tar.gz", UPSTREAM, MIRRORED)))


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__ if isinstance(value, bool | int) else "scalar"


def test_doc_example_has_the_shape_the_code_produces() -> None:
    text = DOC.read_text()
    blocks = re.findall(r"```json\n(.*?)\n```", text, re.DOTALL)
    (example,) = [json.loads(b) for b in blocks if SOURCE_BUILD_TYPE in b]
    statement = source_statement("flask-2.0.0+fs.1.tar.gz", "b" * 64, REPACKED)
    assert _shape(example) == _shape(statement)
