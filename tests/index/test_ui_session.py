"""Signed session cookies: round trip, forgery, expiry, revocation, the key file."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fromsource.index.ui_session import (
    SESSION_LIFETIME,
    load_or_create_session_key,
    make_cookie,
    read_cookie,
    session_expiry,
)
from fromsource.store.tokens import TokenInfo, hash_secret

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
TOKEN = TokenInfo(
    id="acme/4f9c", repos=("python",), admin=False, description="", created_at=NOW - timedelta(days=1),
    expires_at=NOW + timedelta(days=30), revoked_at=None, secret_hash=hash_secret("fs_secret"),
)
KEY = b"k" * 32


def test_round_trip_and_no_secret_in_cookie() -> None:
    cookie = make_cookie(KEY, TOKEN, NOW)
    assert "fs_secret" not in cookie and TOKEN.secret_hash not in cookie
    assert read_cookie(KEY, cookie, {TOKEN.id: TOKEN}.get, NOW) == TOKEN


def test_forged_expired_revoked_and_replaced_tokens_fail() -> None:
    cookie = make_cookie(KEY, TOKEN, NOW)
    lookup = {TOKEN.id: TOKEN}.get
    assert read_cookie(b"x" * 32, cookie, lookup, NOW) is None
    _payload, mac = cookie.split(".")
    other = base64.urlsafe_b64encode(json.dumps({"t": "acme/other", "e": 2**40}).encode()).decode().rstrip("=")
    assert read_cookie(KEY, f"{other}.{mac}", lookup, NOW) is None
    assert read_cookie(KEY, cookie, lookup, NOW + SESSION_LIFETIME + timedelta(seconds=1)) is None
    revoked = replace(TOKEN, revoked_at=NOW)
    assert read_cookie(KEY, cookie, {TOKEN.id: revoked}.get, NOW) is None
    reissued = replace(TOKEN, secret_hash=hash_secret("another"))
    assert read_cookie(KEY, cookie, {TOKEN.id: reissued}.get, NOW) is None
    for junk in (None, "", "a.b.c", "%%%.x", "x" * 2000):
        assert read_cookie(KEY, junk, lookup, NOW) is None


def test_session_ends_with_the_token() -> None:
    short = replace(TOKEN, expires_at=NOW + timedelta(hours=1))
    assert session_expiry(short, NOW) == NOW + timedelta(hours=1)
    assert session_expiry(TOKEN, NOW) == NOW + SESSION_LIFETIME


def test_key_file_created_once_with_mode_0600(tmp_path: Path) -> None:
    key = load_or_create_session_key(tmp_path / "data")
    assert len(key) == 32
    assert load_or_create_session_key(tmp_path / "data") == key
    assert (tmp_path / "data" / "ui-session.key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["ui-session.key"]
