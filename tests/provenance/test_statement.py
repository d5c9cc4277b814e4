"""Tests for fromsource.provenance.statement: build, sign, verify, parse."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fromsource.dist.record import RecordEntry
from fromsource.errors import ProvenanceError, SignatureError
from fromsource.provenance import (
    BuildFacts,
    BundledComponent,
    PatchInfo,
    ResolvedDependency,
    SigningKey,
    SystemLibrary,
    build_statement,
    envelope_bytes,
    key_id,
    parse_statement,
    sign_envelope,
    sign_statement,
    statement_bytes,
    verify_attestation,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "attestations.md"
WHEEL = "flask-2.0.0+fs.1-py3-none-any.whl"
H1, H2, H3, H4, H5 = ("1" * 64, "2" * 64, "3" * 64, "4" * 64, "5" * 64)

RECORD = [
    RecordEntry("flask/app.py", H1, 1234),
    RecordEntry("flask-2.0.0+fs.1.dist-info/METADATA", H2, 99),
    RecordEntry("flask-2.0.0+fs.1.dist-info/RECORD", None, None),
]

FACTS = BuildFacts(
    project="flask",
    version="2.0.0+fs.1",
    repository="python-remediated",
    sdist_url="http://127.0.0.1:9/files/flask-2.0.0.tar.gz",
    sdist_sha256=H3,
    patches=(PatchInfo("0001-vary-cookie.patch", H4, ("PYSEC-2023-62", "CVE-2023-30861")),),
    dependencies=(
        ResolvedDependency(
            filename="setuptools-80.9.0-py3-none-any.whl",
            project="setuptools",
            version="80.9.0",
            sha256=H5,
            source="fromsource",
            uri="http://127.0.0.1:9/python/files/setuptools-80.9.0-py3-none-any.whl",
        ),
    ),
    build_key="f" * 64,
    python="3.11.7",
    platform="linux-x86_64",
    source_date_epoch=1_620_000_000,
    sandbox={
        "isolated": True,
        "tool": "bwrap",
        "network": "none",
        "timeout_seconds": 1800,
        "memory_limit_bytes": 4294967296,
    },
    invocation_id="build-42",
    started=datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
    finished=datetime(2024, 5, 1, 14, 1, 2, tzinfo=timezone(timedelta(hours=2))),
    target={
        "version": "3.11",
        "full_version": "3.11.7",
        "python_tag": "cp311",
        "abi_tag": "cp311",
        "platform_tag": "linux_x86_64",
        "glibc": "2.36",
        "tag": "cp311-cp311-linux_x86_64",
    },
)


def new_key() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    return SigningKey(private, key_id(private.public_key()))


def test_build_parse_round_trip() -> None:
    statement = build_statement(WHEEL, "a" * 64, RECORD, FACTS)
    att = parse_statement(statement_bytes(statement))
    assert att.subject_name == WHEEL
    assert att.subject_sha256 == "a" * 64
    assert (att.project, att.version, att.repository) == (
        "flask",
        "2.0.0+fs.1",
        "python-remediated",
    )
    assert (att.sdist_url, att.sdist_sha256) == (FACTS.sdist_url, H3)
    assert att.patches == FACTS.patches
    assert att.dependencies == FACTS.dependencies
    assert dict(att.byproducts) == {"flask/app.py": H1, "flask-2.0.0+fs.1.dist-info/METADATA": H2}
    assert dict(att.byproduct_sizes) == {
        "flask/app.py": 1234,
        "flask-2.0.0+fs.1.dist-info/METADATA": 99,
    }
    assert att.build_key == "f" * 64
    assert att.invocation_id == "build-42"
    assert dict(att.sandbox) == dict(FACTS.sandbox)
    assert att.builder_id == "urn:fromsource:builder"
    assert att.builder_version == FACTS.builder_version
    assert (att.python, att.platform, att.source_date_epoch) == (
        "3.11.7",
        "linux-x86_64",
        1_620_000_000,
    )
    assert att.started == FACTS.started
    assert att.finished == FACTS.finished
    assert att.finished.utcoffset() == timedelta(0)
    assert att.raw["predicate"]["runDetails"]["metadata"]["finishedOn"] == "2024-05-01T12:01:02Z"


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__ if isinstance(value, bool | int) else "scalar"


def test_doc_example_has_the_shape_the_code_produces() -> None:
    block = re.search(r"```json\n(.*?)\n```", DOC.read_text(), re.DOTALL)
    assert block is not None
    example = json.loads(block.group(1))
    statement = build_statement(WHEEL, "a" * 64, RECORD, FACTS)
    assert _shape(example) == _shape(statement)


def test_sign_and_verify() -> None:
    key = new_key()
    envelope = sign_statement(build_statement(WHEEL, "a" * 64, RECORD, FACTS), key)
    att, keyid = verify_attestation(envelope, {key.keyid: key.public})
    assert keyid == key.keyid
    assert att.subject_name == WHEEL
    # Several trusted keys: the right one is found by id.
    other = new_key()
    _, keyid = verify_attestation(envelope, {other.keyid: other.public, key.keyid: key.public})
    assert keyid == key.keyid


def test_verify_fails_with_another_key() -> None:
    key, other = new_key(), new_key()
    envelope = sign_statement(build_statement(WHEEL, "a" * 64, RECORD, FACTS), key)
    with pytest.raises(SignatureError):
        verify_attestation(envelope, {other.keyid: other.public})
    # Another key published under the signer's id does not verify either.
    with pytest.raises(SignatureError):
        verify_attestation(envelope, {key.keyid: other.public})


def test_verify_fails_when_payload_is_tampered() -> None:
    key = new_key()
    envelope = json.loads(sign_statement(build_statement(WHEEL, "a" * 64, RECORD, FACTS), key))
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "b" * 64
    envelope["payload"] = base64.b64encode(statement_bytes(statement)).decode()
    with pytest.raises(SignatureError):
        verify_attestation(json.dumps(envelope).encode(), {key.keyid: key.public})


def test_verify_fails_when_signature_is_tampered() -> None:
    key = new_key()
    envelope = json.loads(sign_statement(build_statement(WHEEL, "a" * 64, RECORD, FACTS), key))
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[0] ^= 1
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    with pytest.raises(SignatureError):
        verify_attestation(json.dumps(envelope).encode(), {key.keyid: key.public})


def test_verify_rejects_other_payload_types_and_predicates() -> None:
    key = new_key()
    keys = {key.keyid: key.public}
    payload = statement_bytes(build_statement(WHEEL, "a" * 64, RECORD, FACTS))
    other_type = envelope_bytes(sign_envelope(payload, key.private, key.keyid, "text/plain"))
    with pytest.raises(ProvenanceError, match="payloadType"):
        verify_attestation(other_type, keys)
    statement = build_statement(WHEEL, "a" * 64, RECORD, FACTS)
    statement["predicateType"] = "https://example.invalid/other"
    with pytest.raises(ProvenanceError, match="predicateType"):
        verify_attestation(sign_statement(statement, key), keys)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.pop("subject"),
        lambda s: s.__setitem__("subject", []),
        lambda s: s.__setitem__("_type", "x"),
        lambda s: s["predicate"]["buildDefinition"].__setitem__("buildType", "x"),
        lambda s: s["predicate"]["runDetails"]["byproducts"][0]["digest"].__setitem__(
            "sha256", "z"
        ),
        lambda s: s["predicate"]["runDetails"]["metadata"].__setitem__("startedOn", "yesterday"),
        lambda s: s["predicate"]["buildDefinition"]["resolvedDependencies"][0].__setitem__(
            "annotations", {"source": "elsewhere"}
        ),
        lambda s: s["predicate"]["buildDefinition"]["resolvedDependencies"][0].__setitem__(
            "uri", "not a purl"
        ),
        lambda s: s["predicate"]["buildDefinition"]["internalParameters"].__setitem__(
            "source_date_epoch", True
        ),
    ],
)
def test_parse_rejects_malformed(mutate: Any) -> None:
    statement = build_statement(WHEEL, "a" * 64, RECORD, FACTS)
    mutate(statement)
    with pytest.raises(ProvenanceError):
        parse_statement(statement_bytes(statement))


def test_parse_rejects_non_json() -> None:
    with pytest.raises(ProvenanceError):
        parse_statement(b"\xff not json")
    with pytest.raises(ProvenanceError):
        parse_statement(b"[]")


def test_build_rejects_bad_inputs() -> None:
    with pytest.raises(ProvenanceError, match="no time zone"):
        build_statement(WHEEL, "a" * 64, RECORD, replace(FACTS, started=datetime(2024, 1, 1)))
    with pytest.raises(ProvenanceError, match="has no sha256"):
        build_statement(WHEEL, "a" * 64, [RecordEntry("flask/app.py", None, None)], FACTS)
    with pytest.raises(ProvenanceError, match="not a lower-case hex"):
        build_statement(WHEEL, "A" * 64, RECORD, FACTS)
    with pytest.raises(ProvenanceError, match="JSON"):
        statement_bytes({"x": object()})


def test_dependency_project_is_normalized() -> None:
    dep = replace(FACTS.dependencies[0], project="Setup_Tools")
    statement = build_statement(WHEEL, "a" * 64, RECORD, replace(FACTS, dependencies=(dep,)))
    att = parse_statement(statement_bytes(statement))
    assert att.dependencies[0].project == "setup-tools"


def test_grafted_libraries_round_trip_apart_from_the_build_dependencies() -> None:
    ffi = SystemLibrary(
        member="demo.libs/libffi-983e72b7.so.8.1.2",
        sha256=H1,
        soname="libffi.so.8",
        source_path="/usr/lib/x86_64-linux-gnu/libffi.so.8.1.2",
        source_sha256=H2,
        package="libffi8",
        package_version="3.4.4-1",
        architecture="amd64",
    )
    unknown = SystemLibrary(member="demo.libs/libodd-12345678.so.1", sha256=H3)
    repair = {"repaired": True, "platform_tag": "manylinux_2_17_x86_64", "reason": None}
    facts = replace(FACTS, grafted=(ffi, unknown), repair=repair)
    statement = build_statement(WHEEL, "a" * 64, RECORD, facts)
    internal = statement["predicate"]["buildDefinition"]["internalParameters"]
    assert internal["repair"] == repair and internal["target"]["glibc"] == "2.36"
    resolved = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    assert resolved[1]["uri"] == "pkg:deb/debian/libffi8@3.4.4-1?arch=amd64"
    assert resolved[1]["digest"] == {"sha256": H2}  # the host file it was copied from
    assert "uri" not in resolved[2] and resolved[2]["digest"] == {"sha256": H3}
    att = parse_statement(statement_bytes(statement))
    assert att.dependencies == FACTS.dependencies
    assert att.grafted == (ffi, unknown)


def test_crates_are_resolved_dependencies_and_the_toolchain_an_internal_parameter() -> None:
    crate = BundledComponent(
        purl="pkg:cargo/tinyadd@0.1.0",
        sha256=H1,
        properties=(
            ("fromsource:crate-origin", "crate source"),
            ("fromsource:cargo-source", "registry+https://index.example/"),
        ),
        name="tinyadd-0.1.0.crate",
    )
    rust = {"backend": "maturin", "crate_origin": "crate-source", "toolchain": {"rustc": "r"}}
    statement = build_statement(
        WHEEL, "a" * 64, RECORD, replace(FACTS, bundled=(crate,), rust=rust)
    )
    definition = statement["predicate"]["buildDefinition"]
    assert definition["internalParameters"]["rust"] == rust
    entry = definition["resolvedDependencies"][1]
    assert entry == {
        "name": "tinyadd-0.1.0.crate",
        "uri": "pkg:cargo/tinyadd@0.1.0",
        "digest": {"sha256": H1},
        "annotations": {
            "source": "bundled",
            "crate-origin": "crate source",
            "cargo-source": "registry+https://index.example/",
        },
    }
    att = parse_statement(statement_bytes(statement))
    assert att.dependencies == FACTS.dependencies
    (parsed,) = att.bundled
    assert (parsed.purl, parsed.sha256, parsed.name) == (crate.purl, H1, crate.name)
    assert dict(parsed.properties) == dict(crate.properties)  # the payload sorts its keys
