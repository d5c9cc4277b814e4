"""The index's Ed25519 signing keys as values: identify, publish, parse.

The key id is ``sha256:`` + the hex digest of the raw public key, so a user
can pin it.  Pure: the key files themselves (create, load, rotate) live in
:mod:`fromsource.provenance.keystore`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fromsource.errors import ProvenanceError


def key_id(public: Ed25519PublicKey) -> str:
    """``sha256:<hex>`` of the raw 32-byte public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True)
class SigningKey:
    """The private key and its id."""

    private: Ed25519PrivateKey
    keyid: str

    @property
    def public(self) -> Ed25519PublicKey:
        """The matching public key."""
        return self.private.public_key()


def keys_document(keys: Mapping[str, Ed25519PublicKey], current: str | None) -> dict[str, Any]:
    """The JSON served at ``/.well-known/fromsource/keys.json``."""
    return {
        "schema_version": 1,
        "keys": [
            {
                "keyid": kid,
                "algorithm": "ed25519",
                "public_key": base64.b64encode(
                    pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
                ).decode(),
                "current": kid == current,
            }
            for kid, pub in sorted(keys.items())
        ],
    }


def parse_keys_document(data: bytes | str | Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """Public keys by id from a keys.json document (or a pinned copy of one).

    Every key's id is recomputed from its bytes; a mismatch raises
    ProvenanceError (a pinned file cannot smuggle a key under another id).
    """
    try:
        doc = dict(data) if isinstance(data, Mapping) else json.loads(data)
        keys: dict[str, Ed25519PublicKey] = {}
        for entry in doc["keys"]:
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(entry["public_key"]))
            if key_id(public) != entry["keyid"]:
                raise ValueError(f"key id {entry['keyid']} does not match its key")
            keys[entry["keyid"]] = public
    except (ValueError, TypeError, KeyError) as exc:
        raise ProvenanceError(f"not a fromsource keys document: {exc}") from exc
    return keys
