"""~/.netrc edits: our machine entry set, everything else kept, readable by netrc."""

from __future__ import annotations

import netrc
from pathlib import Path

import pytest

from fromsource.errors import ConfigError
from fromsource.setup.netrc import set_netrc


def _parse(text: str, tmp_path: Path) -> netrc.netrc:
    path = tmp_path / "netrc"
    path.write_text(text)
    path.chmod(0o600)
    return netrc.netrc(str(path))


def test_new_entry_and_idempotent(tmp_path: Path) -> None:
    text = set_netrc("", "pkgs.example", "acme/1", "s3")
    assert text == "machine pkgs.example\nlogin acme/1\npassword s3\n"
    assert set_netrc(text, "pkgs.example", "acme/1", "s3") == text
    assert _parse(text, tmp_path).authenticators("pkgs.example") == ("acme/1", "", "s3")


def test_existing_entry_replaced_others_kept(tmp_path: Path) -> None:
    before = (
        "# work\nmachine other.example login bob password pw\n"
        "machine pkgs.example login old password oldpw\n\n"
        "macdef init\ncd /tmp\n\nmachine third.example\n  login x\n  password y\n"
    )
    after = set_netrc(before, "pkgs.example", "acme/1", "new")
    parsed = _parse(after, tmp_path)
    assert parsed.authenticators("pkgs.example") == ("acme/1", "", "new")
    assert parsed.authenticators("other.example") == ("bob", "", "pw")
    assert parsed.authenticators("third.example") == ("x", "", "y")
    assert "oldpw" not in after and after.startswith("# work\n")
    assert set_netrc(after, "pkgs.example", "acme/1", "new") == after


def test_duplicates_dropped_and_default_stays_last(tmp_path: Path) -> None:
    before = "machine h login a password b\nmachine h login c password d\n"
    after = set_netrc(before, "h", "u", "p")
    assert after.count("machine h") == 1 and "login c" not in after
    with_default = set_netrc("default login anon password x\n", "h", "u", "p")
    assert with_default.index("machine h") < with_default.index("default")
    assert _parse(with_default, tmp_path).authenticators("h") == ("u", "", "p")


def test_values_netrc_cannot_hold_are_refused() -> None:
    with pytest.raises(ConfigError, match="secret"):
        set_netrc("", "h", "u", "has space")
