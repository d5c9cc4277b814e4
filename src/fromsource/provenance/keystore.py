"""The signing key files: create, load, publish and rotate (the I/O of :mod:`.keys`).

Layout of the key folder: ``signing-key.pem`` is the current private key
(PEM/PKCS8, unencrypted, mode 0600 in a 0700 folder: the operator's to
protect like any TLS key), created on first start; ``public/*.pem`` are every
public key ever used, all published, so older attestations still verify;
``retired/`` and ``withdrawn/`` receive what a rotation moves away.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fromsource.errors import ProvenanceError
from fromsource.provenance.keys import SigningKey, key_id

__all__ = [
    "PRIVATE_KEY_FILE",
    "Rotation",
    "load_or_create_signing_key",
    "published_keys",
    "rotate_signing_key",
]

PRIVATE_KEY_FILE = "signing-key.pem"
_PUBLIC_DIR = "public"


def load_or_create_signing_key(key_dir: Path) -> SigningKey:
    """The signing key in *key_dir*, created (0600) if absent.

    Also records the public key under ``public/`` so it stays published.
    """
    key_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(key_dir, 0o700)
    path = key_dir / PRIVATE_KEY_FILE
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


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: the old and new key ids and where the old files went."""

    old_keyid: str
    new_keyid: str
    retired_private: Path
    withdrawn_public: Path | None

    def to_json(self) -> dict[str, object]:
        """The rotation as JSON (stable keys)."""
        return {
            "schema_version": 1,
            "old_keyid": self.old_keyid,
            "new_keyid": self.new_keyid,
            "retired_private_key": str(self.retired_private),
            "withdrawn_public_key": str(self.withdrawn_public) if self.withdrawn_public else None,
        }


def rotate_signing_key(key_dir: Path, *, withdraw_old: bool = False) -> Rotation:
    """Retire the signing key in *key_dir* and create a new one.

    The old private key is renamed (never copied) into ``retired/`` first, so
    a crash in between leaves no current key, and the next start simply makes
    one.  Running servers and build workers keep the key they loaded: restart
    them.  Raises ProvenanceError when *key_dir* holds no signing key.
    """
    current = key_dir / PRIVATE_KEY_FILE
    if not current.is_file():
        raise ProvenanceError(
            f"{current} does not exist: there is no signing key to rotate "
            "(one is created on the first start of the server or a build)"
        )
    old = load_or_create_signing_key(key_dir)  # also records its public key
    retired_dir = key_dir / "retired"
    retired_dir.mkdir(mode=0o700, exist_ok=True)
    retired = retired_dir / (old.keyid.replace(":", "-") + ".pem")
    os.replace(current, retired)
    os.chmod(retired, 0o600)
    new = load_or_create_signing_key(key_dir)
    withdrawn: Path | None = None
    if withdraw_old:
        public = key_dir / _PUBLIC_DIR / (old.keyid.replace(":", "-") + ".pem")
        withdrawn_dir = key_dir / "withdrawn"
        withdrawn_dir.mkdir(mode=0o700, exist_ok=True)
        withdrawn = withdrawn_dir / public.name
        os.replace(public, withdrawn)
    return Rotation(old.keyid, new.keyid, retired, withdrawn)
