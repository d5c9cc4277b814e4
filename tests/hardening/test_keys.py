"""``fromsource keys rotate``: a new signing key, old attestations still verify
(unless the old key is withdrawn after a compromise)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from fromsource.cli.main import main
from fromsource.errors import ProvenanceError, SignatureError
from fromsource.provenance.dsse import sign_envelope, verify_envelope
from fromsource.provenance.keystore import (
    load_or_create_signing_key,
    published_keys,
    rotate_signing_key,
)


def _signed(key_dir: Path) -> tuple[dict[str, object], str]:
    key = load_or_create_signing_key(key_dir)
    return sign_envelope(b'{"statement": 1}', key.private, key.keyid), key.keyid


def test_rotation_keeps_old_attestations_verifying(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    old_envelope, old_id = _signed(keys)
    result = rotate_signing_key(keys)
    assert result.old_keyid == old_id and result.new_keyid != old_id
    assert load_or_create_signing_key(keys).keyid == result.new_keyid
    assert stat.S_IMODE(result.retired_private.stat().st_mode) == 0o600
    trusted = published_keys(keys)
    assert set(trusted) == {old_id, result.new_keyid}
    assert verify_envelope(old_envelope, trusted)[1] == old_id
    new_envelope, new_id = _signed(keys)
    assert verify_envelope(new_envelope, trusted)[1] == new_id == result.new_keyid


def test_withdrawing_the_old_key_stops_its_attestations(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    old_envelope, _old_id = _signed(keys)
    result = rotate_signing_key(keys, withdraw_old=True)
    assert result.withdrawn_public is not None and result.withdrawn_public.exists()
    assert set(published_keys(keys)) == {result.new_keyid}
    with pytest.raises(SignatureError):
        verify_envelope(old_envelope, published_keys(keys))


def test_nothing_to_rotate_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProvenanceError, match="no signing key to rotate"):
        rotate_signing_key(tmp_path / "keys")


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    assert main([*data, "keys", "rotate"]) == 2  # no key yet
    load_or_create_signing_key(tmp_path / "data" / "keys")
    capsys.readouterr()
    assert main([*data, "keys", "rotate", "--format", "json"]) == 0
    rotated = json.loads(capsys.readouterr().out)
    assert main([*data, "keys", "list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["current"] == rotated["new_keyid"]
    assert sorted(listed["published"]) == sorted([rotated["old_keyid"], rotated["new_keyid"]])
