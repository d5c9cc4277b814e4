"""DSSE envelopes (Dead Simple Signing Envelope, v1) signed with Ed25519.

Pure functions over bytes and keys.  The signature covers the PAE
(pre-authentication encoding) of the payload type and payload, as the DSSE
spec requires; the envelope is JSON with a base64 payload.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fromsource.errors import ProvenanceError, SignatureError

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of *payload_type* and *payload*."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign_envelope(
    payload: bytes,
    key: Ed25519PrivateKey,
    keyid: str,
    payload_type: str = IN_TOTO_PAYLOAD_TYPE,
) -> dict[str, Any]:
    """A DSSE envelope over *payload*, signed by *key* under *keyid*."""
    signature = key.sign(pae(payload_type, payload))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode()}],
    }


def envelope_bytes(envelope: Mapping[str, Any]) -> bytes:
    """The canonical serialized form we store and serve."""
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()


def parse_envelope(data: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """Parse and shape-check an envelope; ProvenanceError when malformed."""
    try:
        envelope = dict(data) if isinstance(data, Mapping) else json.loads(data)
        if not isinstance(envelope, dict):
            raise TypeError("not an object")
        if not isinstance(envelope.get("payloadType"), str):
            raise TypeError("payloadType missing")
        base64.b64decode(envelope["payload"], validate=True)
        if not isinstance(envelope["signatures"], list) or not envelope["signatures"]:
            raise TypeError("signatures is not a non-empty list")
        for sig in envelope["signatures"]:
            if not isinstance(sig, dict):
                raise TypeError("a signature is not an object")
            if not isinstance(sig.get("keyid", ""), str):
                raise TypeError("keyid is not a string")
            base64.b64decode(sig["sig"], validate=True)
    except (ValueError, TypeError, KeyError) as exc:
        raise ProvenanceError(f"not a DSSE envelope: {exc}") from exc
    return envelope


def verify_envelope(
    data: bytes | str | Mapping[str, Any],
    keys: Mapping[str, Ed25519PublicKey],
) -> tuple[bytes, str]:
    """Check the envelope against the trusted *keys* (by key id).

    Returns the payload and the id of the key that verified it.  Raises
    SignatureError when no signature verifies with a trusted key (an unknown
    key id counts as not verifying), ProvenanceError when malformed.
    """
    envelope = parse_envelope(data)
    payload = base64.b64decode(envelope["payload"])
    message = pae(envelope["payloadType"], payload)
    tried: list[str] = []
    for sig in envelope["signatures"]:
        keyid = sig.get("keyid", "")
        candidates = [(keyid, keys[keyid])] if keyid in keys else []
        for cand_id, key in candidates:
            tried.append(cand_id)
            try:
                key.verify(base64.b64decode(sig["sig"]), message)
            except InvalidSignature:
                continue
            return payload, cand_id
    signers = [s.get("keyid", "") for s in envelope["signatures"]]
    raise SignatureError(
        f"no signature verifies with a trusted key (signed by {signers}, trusted "
        f"{sorted(keys)}); treat the attestation as invalid",
        signers=signers,
        trusted=sorted(keys),
    )


def verify_in_toto(
    data: bytes | str | Mapping[str, Any], keys: Mapping[str, Ed25519PublicKey]
) -> tuple[bytes, str]:
    """:func:`verify_envelope` for an envelope that must carry an in-toto statement.

    Raises what :func:`verify_envelope` raises, and ProvenanceError when the
    payload type is not :data:`IN_TOTO_PAYLOAD_TYPE`.
    """
    payload, keyid = verify_envelope(data, keys)
    payload_type = parse_envelope(data)["payloadType"]
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise ProvenanceError(
            f"envelope payloadType is {payload_type!r}, expected {IN_TOTO_PAYLOAD_TYPE!r}",
            payload_type=payload_type,
        )
    return payload, keyid
