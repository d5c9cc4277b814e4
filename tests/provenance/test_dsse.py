"""DSSE against fixed answers: the specification's own PAE example, and a fixed envelope.

Signing and verifying share :func:`pae`, so a changed encoding still round-trips;
these tests compare with bytes written down outside the code instead.

``data/envelope.dsse.json`` was signed once with an Ed25519 key made for it and
then thrown away; only its public key is kept (``data/envelope-key.pub.pem``).
Its payload holds non-ASCII text, so its length in bytes differs from its length
in characters.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fromsource.errors import SignatureError
from fromsource.provenance.dsse import pae, sign_envelope, verify_envelope
from fromsource.provenance.keys import key_id

DATA = Path(__file__).parent / "data"
SPEC_TYPE = "http://example.com/HelloWorld"
SPEC_PAE = b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
"""The DSSE v1 specification's worked example of the pre-authentication encoding."""


def _fixed_key() -> Ed25519PublicKey:
    public = serialization.load_pem_public_key((DATA / "envelope-key.pub.pem").read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    return public


def test_pae_of_the_specification_example() -> None:
    assert pae(SPEC_TYPE, b"hello world") == SPEC_PAE


def test_pae_lengths_count_utf8_bytes_and_an_empty_body_keeps_its_separator() -> None:
    # "application/ü" is 13 characters, 14 bytes in UTF-8.
    assert pae("application/ü", b"") == b"DSSEv1 14 application/\xc3\xbc 0 "
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_a_signature_covers_exactly_the_specification_encoding() -> None:
    key = Ed25519PrivateKey.generate()
    envelope = sign_envelope(b"hello world", key, "k", payload_type=SPEC_TYPE)
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    key.public_key().verify(signature, SPEC_PAE)  # raises InvalidSignature otherwise


def test_the_fixed_envelope_verifies_against_its_fixed_public_key() -> None:
    data = (DATA / "envelope.dsse.json").read_bytes()
    public = _fixed_key()
    keyid = key_id(public)
    payload, verified_by = verify_envelope(data, {keyid: public})
    assert verified_by == keyid
    assert json.loads(payload)["predicate"]["note"] == "fixed test envelope: naïve café ✓"
    # The same signature, checked with nothing of ours but the bytes written out by hand.
    envelope = json.loads(data)
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert len(payload) == 340 and len(payload.decode()) == 336
    signature = base64.b64decode(envelope["signatures"][0]["sig"])
    public.verify(signature, b"DSSEv1 28 application/vnd.in-toto+json 340 " + payload)


def test_the_fixed_envelope_refuses_a_changed_payload_or_type() -> None:
    envelope = json.loads((DATA / "envelope.dsse.json").read_bytes())
    public = _fixed_key()
    keys = {key_id(public): public}
    payload = base64.b64decode(envelope["payload"]).replace(b"demo_pkg", b"evil_pkg")
    with pytest.raises(SignatureError):
        verify_envelope({**envelope, "payload": base64.b64encode(payload).decode()}, keys)
    with pytest.raises(SignatureError):
        verify_envelope({**envelope, "payloadType": "application/json"}, keys)
