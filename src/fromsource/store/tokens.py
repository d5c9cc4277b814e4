"""Pull and admin tokens: create, list, revoke, and the records auth checks.

A token is its own identity ``<org>/<random>`` plus a secret shown once.
Only ``sha256(secret)`` is stored: secrets carry 256 bits of randomness, so a
slow hash would add nothing but latency on every request.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from fromsource.config import ALL_REPOSITORIES
from fromsource.errors import AuthError, UnknownTokenError
from fromsource.store.db import Database, aware, bump_generation
from fromsource.store.models import TokenRow

DEFAULT_LIFETIME = timedelta(days=30)
MAX_LIFETIME = timedelta(days=365)
_ORG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_DURATION = re.compile(r"^([0-9]{1,7})([dhw])$")  # 7 digits: no timedelta overflow


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never the secret."""

    id: str
    repos: tuple[str, ...]
    admin: bool
    description: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    secret_hash: str

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if aware(self.expires_at) <= now else "active"

    def to_json(self, now: datetime) -> dict[str, object]:
        """The listing form (no secret, no hash)."""
        return {
            "id": self.id,
            "repos": list(self.repos),
            "admin": self.admin,
            "description": self.description,
            "created_at": aware(self.created_at).isoformat(),
            "expires_at": aware(self.expires_at).isoformat(),
            "revoked_at": aware(self.revoked_at).isoformat() if self.revoked_at else None,
            "state": self.state(now),
        }


@dataclass(frozen=True)
class NewToken:
    """A freshly created token: the only time the secret exists outside the client."""

    info: TokenInfo
    secret: str


def hash_secret(secret: str) -> str:
    """The stored form of a secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_lifetime(text: str) -> timedelta:
    """``90d``, ``12h`` or ``2w`` as a timedelta, at most 365 days.

    Raises AuthError with the accepted forms on anything else.
    """
    match = _DURATION.match(text.strip())
    if not match:
        raise AuthError(f"expiry {text!r} is not like 30d, 12h or 2w")
    amount, unit = int(match.group(1)), match.group(2)
    lifetime = {"d": timedelta(days=amount), "h": timedelta(hours=amount), "w": timedelta(weeks=amount)}[unit]
    if lifetime <= timedelta(0) or lifetime > MAX_LIFETIME:
        raise AuthError(f"expiry {text!r} must be more than 0 and at most 365 days")
    return lifetime


def _info(row: TokenRow) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        repos=tuple(row.repos),
        admin=row.admin,
        description=row.description,
        created_at=aware(row.created_at),
        expires_at=aware(row.expires_at),
        revoked_at=aware(row.revoked_at) if row.revoked_at else None,
        secret_hash=row.secret_hash,
    )


def create_token(
    db: Database,
    *,
    org: str,
    repos: list[str],
    admin: bool = False,
    lifetime: timedelta = DEFAULT_LIFETIME,
    description: str = "",
    now: datetime | None = None,
) -> NewToken:
    """Create a token for *repos* (and the management API when *admin*).

    Raises AuthError for an unknown repository, a bad org name or lifetime.
    """
    if not _ORG.match(org):
        raise AuthError(f"org {org!r} must be lower-case letters, digits and '-' (no '/' or '_')")
    unknown = sorted(set(repos) - set(ALL_REPOSITORIES))
    if unknown:
        raise AuthError(f"unknown repositories {unknown}; known: {', '.join(ALL_REPOSITORIES)}")
    if not repos and not admin:
        raise AuthError("a token needs at least one --repo (or --admin)")
    if lifetime > MAX_LIFETIME:
        raise AuthError("a token lives at most 365 days")
    now = now or datetime.now(UTC)
    secret = "fs_" + secrets.token_urlsafe(32)
    row = TokenRow(
        id=f"{org}/{secrets.token_hex(8)}",
        secret_hash=hash_secret(secret),
        repos=sorted(set(repos)),
        admin=admin,
        description=description,
        created_at=now,
        expires_at=now + lifetime,
        revoked_at=None,
    )
    with db.session() as session, session.begin():
        session.add(row)
        bump_generation(session)
    return NewToken(_info(row), secret)


def list_tokens(db: Database, *, state: str | None = None, now: datetime | None = None) -> list[TokenInfo]:
    """Every token (or those in *state*: active, expired, revoked), oldest first."""
    now = now or datetime.now(UTC)
    with db.session() as session:
        rows = session.scalars(sa.select(TokenRow).order_by(TokenRow.created_at)).all()
    infos = [_info(r) for r in rows]
    return [i for i in infos if state is None or i.state(now) == state]


def revoke_token(db: Database, token_id: str, *, now: datetime | None = None) -> TokenInfo:
    """Revoke *token_id* (accepts ``_`` for ``/``); UnknownTokenError when unknown."""
    token_id = canonical_identity(token_id)
    with db.session() as session, session.begin():
        row = session.get(TokenRow, token_id)
        if row is None:
            raise UnknownTokenError(
                f"no token {token_id!r}; `fromsource token list` shows the ids", token=token_id
            )
        if row.revoked_at is None:
            row.revoked_at = now or datetime.now(UTC)
            bump_generation(session)
        return _info(row)


def delete_token(db: Database, token_id: str) -> None:
    """Remove a token record entirely (expired tokens stay listed until removed)."""
    token_id = canonical_identity(token_id)
    with db.session() as session, session.begin():
        row = session.get(TokenRow, token_id)
        if row is None:
            raise UnknownTokenError(
                f"no token {token_id!r}; `fromsource token list` shows the ids", token=token_id
            )
        session.delete(row)
        bump_generation(session)


def canonical_identity(user: str) -> str:
    """The stored identity for a user name as clients send it.

    pip users write ``acme_4f9c`` (``/`` as ``_``), uv users ``acme%2F4f9c``,
    netrc carries ``acme/4f9c``.  Org names cannot hold ``_``, so the first
    ``_`` is the separator.
    """
    user = user.replace("%2F", "/").replace("%2f", "/")
    if "/" not in user and "_" in user:
        user = user.replace("_", "/", 1)
    return user


def load_tokens(db: Database) -> dict[str, TokenInfo]:
    """Every token by id, for the in-memory auth cache."""
    return {t.id: t for t in list_tokens(db)}
