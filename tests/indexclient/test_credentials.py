"""Index URLs and credentials: parsing, precedence, netrc, and secrets kept out of sight."""

from __future__ import annotations

from pathlib import Path

import pytest

from fromsource.errors import IndexClientError
from fromsource.indexclient import (
    Credentials,
    IndexURL,
    default_netrc,
    resolve_credentials,
    split_index_url,
)


def test_split_index_url() -> None:
    assert split_index_url("http://127.0.0.1:8080/") == IndexURL("http://127.0.0.1:8080/", None)
    parsed = split_index_url(
        "https://acme%2F4f9c:s3cret@idx.example/mirror/python-remediated/simple"
    )
    assert parsed.root == "https://idx.example/mirror/"
    assert parsed.repo == "python-remediated"
    assert (parsed.username, parsed.password) == ("acme/4f9c", "s3cret")
    assert "s3cret" not in repr(parsed)
    assert split_index_url("http://[::1]:8/python/simple/") == IndexURL("http://[::1]:8/", "python")
    with pytest.raises(IndexClientError) as err:
        split_index_url("ftp://user:pw@x/")
    assert "pw" not in err.value.message


def test_credentials_precedence(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine idx.example login acme/ci password fromnetrc\n")
    netrc.chmod(0o600)
    url = "https://idx.example/"
    env = {"FROMSOURCE_USERNAME": "acme/env", "FROMSOURCE_PASSWORD": "fromenv"}
    assert resolve_credentials(url, "flag", "pw", env, netrc)[0] == Credentials("flag", "pw")
    assert resolve_credentials("https://u:p@idx.example/", None, None, env, netrc)[
        0
    ] == Credentials("u", "p")
    assert resolve_credentials(url, None, None, env, netrc)[0] == Credentials("acme/env", "fromenv")
    assert resolve_credentials(url, None, None, {}, netrc)[0] == Credentials("acme/ci", "fromnetrc")
    assert resolve_credentials("https://other.example/", None, None, {}, netrc) == (None, [])
    assert resolve_credentials(url, None, None, {}, tmp_path / "none") == (None, [])
    assert "fromnetrc" not in repr(Credentials("acme/ci", "fromnetrc"))


def test_an_unreadable_netrc_is_a_warning(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine idx.example login a password b\nbogus token\n")
    creds, warnings = resolve_credentials("https://idx.example/", None, None, {}, netrc)
    assert creds is None and warnings and "ignored" in warnings[0]


def test_default_netrc() -> None:
    assert default_netrc({"NETRC": "/elsewhere/netrc"}) == Path("/elsewhere/netrc")
    assert default_netrc({}) == Path.home() / ".netrc"
