"""The index's Ed25519 signing keys: create, load, identify and publish.

The private key is created on first start in the key folder with mode 0600
(folder 0700), PEM/PKCS8 unencrypted: it is the operator's to protect like any
TLS key.  The key id is ``sha256:`` + the hex digest of the raw public key, so a
user can pin it.  Old public keys stay published after a rotation so older
attestations still verify.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fromsource.errors import ProvenanceError

_PRIVATE = "signing-key.pem"
_PUBLIC_DIR = "public"


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


def load_or_create_signing_key(key_dir: Path) -> SigningKey:
    """The signing key in *key_dir*, created (0600) if absent.

    Also records the public key under ``public/`` so it stays published.
    """
    key_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(key_dir, 0o700)
    path = key_dir / _PRIVATE
    if not path.exists():
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    try:
        private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise ProvenanceError(f"{path}: not a readable PEM private key ({exc})") from exc
    if not isinstance(private_key, Ed25519PrivateKey):
        raise ProvenanceError(f"{path}: the signing key must be Ed25519")
    signing = SigningKey(private_key, key_id(private_key.public_key()))
    _record_public(key_dir, signing.public)
    return signing


def _record_public(key_dir: Path, public: Ed25519PublicKey) -> None:
    folder = key_dir / _PUBLIC_DIR
    folder.mkdir(exist_ok=True)
    target = folder / (key_id(public).replace(":", "-") + ".pem")
    if not target.exists():
        target.write_bytes(
            public.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def published_keys(key_dir: Path) -> dict[str, Ed25519PublicKey]:
    """Every public key ever used by this index, by key id."""
    keys: dict[str, Ed25519PublicKey] = {}
    for pem in sorted((key_dir / _PUBLIC_DIR).glob("*.pem")):
        public = serialization.load_pem_public_key(pem.read_bytes())
        if isinstance(public, Ed25519PublicKey):
            keys[key_id(public)] = public
    return keys


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
