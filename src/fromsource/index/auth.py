"""HTTP Basic authentication against pull tokens.

:func:`parse_basic` is pure.  :class:`Authenticator` holds every token in
memory (reloaded when the change counter moves, so a revocation reaches every
replica within one poll interval) and decides 200/401/403 for a repository.
Secrets are compared as hashes with ``hmac.compare_digest`` so the time taken
does not depend on how much of a wrong secret matched.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from fromsource.store.tokens import TokenInfo, canonical_identity, hash_secret


class Decision(Enum):
    """What the request may do."""

    ALLOW = 200
    CHALLENGE = 401
    FORBIDDEN = 403


@dataclass(frozen=True)
class AuthResult:
    """The decision plus who asked (None when anonymous or unknown)."""

    decision: Decision
    token_id: str | None = None
    reason: str = ""


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic`` value, else None.

    Never raises: a malformed header is the same as no credentials.
    """
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic" or not value or len(value) > 4096:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return user, password


def parse_bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` value (``id:secret``), else None."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


class Authenticator:
    """Decides access to repositories from an Authorization header."""

    def __init__(
        self,
        load: Callable[[], dict[str, TokenInfo]],
        anonymous_repos: frozenset[str] = frozenset(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._load = load
        self._tokens: dict[str, TokenInfo] = {}
        self._memo: dict[str, TokenInfo | None] = {}
        self.anonymous_repos = anonymous_repos
        self._clock = clock
        self.reload()

    def reload(self) -> None:
        """Re-read every token (call when the change counter moved)."""
        self._tokens = self._load()
        self._memo = {}

    def identify(self, header: str | None) -> TokenInfo | None:
        """The active token the header proves, or None."""
        if header is None:
            return None
        if header in self._memo:
            token = self._memo[header]
        else:
            token = self._check(header)
            if len(self._memo) > 10_000:
                self._memo.clear()
            self._memo[header] = token
        if token is None or token.state(self._clock()) != "active":
            return None
        return token

    def _check(self, header: str) -> TokenInfo | None:
        creds = parse_basic(header)
        if creds is None:
            bearer = parse_bearer(header)
            if bearer is None or ":" not in bearer:
                return None
            user, _, password = bearer.partition(":")
        else:
            user, password = creds
        token = self._tokens.get(canonical_identity(user))
        expected = token.secret_hash if token else hash_secret("\0no-such-token")
        # Compare even for unknown ids so timing does not reveal which ids exist.
        matched = hmac.compare_digest(hash_secret(password), expected)
        return token if (token is not None and matched) else None

    def check_repo(self, header: str | None, repo: str) -> AuthResult:
        """ALLOW, CHALLENGE (no/bad credentials) or FORBIDDEN (not entitled)."""
        token = self.identify(header)
        if token is None:
            if repo in self.anonymous_repos:
                return AuthResult(Decision.ALLOW)
            return AuthResult(Decision.CHALLENGE, reason="missing or invalid credentials")
        if entitled(token, repo):
            return AuthResult(Decision.ALLOW, token.id)
        return AuthResult(Decision.FORBIDDEN, token.id, f"token has no access to {repo}")

    def names_repo(self, header: str | None, repo: str) -> bool:
        """Whether the request's token names *repo* (anonymous: whether *repo* is anonymous).

        Unlike :meth:`check_repo`, an admin token's access to everything does
        not count: ``python-all`` adds ``python-upstream`` only for a token
        made for it (an opt-in per token, docs/policy.md).
        """
        token = self.identify(header)
        if token is None:
            return header is None and repo in self.anonymous_repos
        return repo in token.repos

    def check_reader(self, header: str | None) -> AuthResult:
        """ALLOW whoever may read some repository: any active token, or anyone when a
        repository is anonymous; else CHALLENGE (never FORBIDDEN).

        For what describes the index rather than one repository's files: the
        API description and the advisories it holds.
        """
        token = self.identify(header)
        if token is not None:
            return AuthResult(Decision.ALLOW, token.id)
        if self.anonymous_repos:
            return AuthResult(Decision.ALLOW)
        return AuthResult(Decision.CHALLENGE, reason="missing or invalid credentials")

    def check_admin(self, header: str | None) -> AuthResult:
        """ALLOW only for an active admin token."""
        token = self.identify(header)
        if token is None:
            return AuthResult(Decision.CHALLENGE, reason="missing or invalid credentials")
        if token.admin:
            return AuthResult(Decision.ALLOW, token.id)
        return AuthResult(Decision.FORBIDDEN, token.id, "admin token required")


def entitled(token: TokenInfo, repo: str) -> bool:
    """Whether *token* may read *repo*.

    ``python-all`` needs both real repositories it combines, so a token for
    ``python`` alone cannot read remediated files through the virtual view.
    Admin tokens read everything.
    """
    from fromsource.config import VIRTUAL_REPOSITORIES

    if token.admin or repo in token.repos:
        return True
    backing = VIRTUAL_REPOSITORIES.get(repo)
    return backing is not None and all(r in token.repos for r in backing)
