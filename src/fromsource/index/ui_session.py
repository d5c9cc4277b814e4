"""Web UI sessions: a signed cookie that names a token, never its secret.

The cookie is ``<payload>.<mac>``: the payload (base64url JSON) holds the
token id and the session's expiry; the MAC is HMAC-SHA256 under the server's
session key over the payload *and the token's stored secret hash*.  So a
cookie cannot be forged without the key, stops working when it expires,
when the token expires or is revoked (the token is looked up on every
request), and when the token is deleted and its id reused.

The key is 32 random bytes in ``<data dir>/ui-session.key`` (mode 0600),
made on first use; replicas that share the data dir share sessions, others
simply ask their visitors to sign in again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fromsource.errors import ConfigError
from fromsource.store.tokens import TokenInfo

COOKIE = "fs_session"
SESSION_LIFETIME = timedelta(hours=12)
_KEY_FILE = "ui-session.key"


def load_or_create_session_key(data_dir: Path) -> bytes:
    """The session key in *data_dir*, created (0600) when missing.

    Safe when several workers start at once: whoever loses the race reads
    the winner's key.  Raises
    ConfigError when the file cannot be read or holds no valid key.
    """
    path = data_dir / _KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Write the key in full under a private name, then link it into place:
        # link() fails if another worker got there first, and nobody ever
        # sees a half-written key.
        tmp = data_dir / f".{_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{path}: not a readable session key ({exc}); delete it and restart "
            "(visitors will have to sign in again)"
        ) from exc
    if len(key) < 32:
        raise ConfigError(f"{path}: the session key is too short; delete it and restart")
    return key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str, secret_hash: str) -> str:
    message = payload.encode() + b"\0" + secret_hash.encode()
    return _b64(hmac.new(key, message, hashlib.sha256).digest())


def session_expiry(token: TokenInfo, now: datetime) -> datetime:
    """When a session started at *now* ends: after 12 hours or with the token."""
    expires = token.expires_at if token.expires_at.tzinfo else token.expires_at.replace(tzinfo=UTC)
    return min(now + SESSION_LIFETIME, expires)


def make_cookie(key: bytes, token: TokenInfo, now: datetime) -> str:
    """The cookie value of a new session for *token*."""
    payload = _b64(
        json.dumps(
            {"t": token.id, "e": int(session_expiry(token, now).timestamp())},
            separators=(",", ":"),
        ).encode()
    )
    return f"{payload}.{_mac(key, payload, token.secret_hash)}"


def read_cookie(
    key: bytes,
    value: str | None,
    lookup: Callable[[str], TokenInfo | None],
    now: datetime,
) -> TokenInfo | None:
    """The active token a cookie value proves, or None (never raises).

    *lookup* maps a token id to its current record (None when unknown).
    """
    if not value or value.count(".") != 1 or len(value) > 1024:
        return None
    payload, mac = value.split(".")
    try:
        data = json.loads(_unb64(payload))
        token_id, expires = str(data["t"]), int(data["e"])
    except (ValueError, KeyError, TypeError):
        return None
    if expires <= now.timestamp():
        return None
    token = lookup(token_id)
    if token is None or not hmac.compare_digest(mac, _mac(key, payload, token.secret_hash)):
        return None
    return token if token.state(now) == "active" else None
