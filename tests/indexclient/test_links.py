"""Which links an index may make us follow, and URLs fit for messages."""

from __future__ import annotations

import pytest

from fromsource.indexclient import link_allowed, redact, refused_link


@pytest.mark.parametrize(
    ("index", "link", "allowed"),
    [
        ("http://127.0.0.1:1/simple/", "http://127.0.0.1:1/files/a-1.tar.gz", True),
        ("http://127.0.0.1:1/simple/", "https://files.invalid/a-1.tar.gz", True),  # an upgrade
        ("https://index.invalid/simple/", "https://files.invalid/a-1.tar.gz", True),
        ("https://index.invalid/simple/", "http://files.invalid/a-1.tar.gz", False),
        ("http://127.0.0.1:1/simple/", "file:///srv/keys/signing-key.pem", False),
        ("https://index.invalid/simple/", "FILE:///dev/zero", False),
        ("http://127.0.0.1:1/simple/", "ftp://files.invalid/a-1.tar.gz", False),
        ("http://127.0.0.1:1/simple/", "fromsource:python/files/a/1/a-1.whl", False),
        ("file:///srv/mirror/simple/", "file:///srv/mirror/files/a-1.tar.gz", True),
        ("file:///srv/mirror/simple/", "https://files.invalid/a-1.tar.gz", False),
    ],
)
def test_links_are_followed_only_with_the_index_scheme(
    index: str, link: str, allowed: bool
) -> None:
    assert link_allowed(index, link) is allowed


def test_a_refused_link_is_one_message_that_never_names_the_path() -> None:
    index = "http://user:s3cret@127.0.0.1:1/simple/"
    present = refused_link("a-1.tar.gz", "file:///srv/keys/signing-key.pem", index)
    absent = refused_link("a-1.tar.gz", "file:///srv/keys/no-such-key.pem", index)
    assert present.message == absent.message
    assert "/srv" not in present.message and "s3cret" not in present.message
    assert "file:" in present.message and "not fetched" in present.message
    assert present.facts == {"filename": "a-1.tar.gz"}


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://me:secret@host.invalid/simple/", "https://host.invalid/simple/"),
        ("https://me@host.invalid:8443/x", "https://host.invalid:8443/x"),
        ("https://me:p@ss@host.invalid/", "https://host.invalid/"),  # an unescaped @
        ("https://host.invalid/a@b/c?d=e@f", "https://host.invalid/a@b/c?d=e@f"),
        ("http://u:p@[::1]:8080/simple/", "http://[::1]:8080/simple/"),
        ("not a url at all", "not a url at all"),
        ("http://u:p@[bad/", "http://[bad/"),  # unparsable, still redacted
    ],
)
def test_redact_removes_user_info_only(url: str, shown: str) -> None:
    assert redact(url) == shown
