"""Index root validation, source naming and masking."""

from __future__ import annotations

import pytest

from fromsource.errors import ConfigError
from fromsource.indexclient import Credentials
from fromsource.setup.model import index_spec, mask


def test_root_normalized_and_sources_named() -> None:
    spec = index_spec("https://pkgs.example:8443/pypi")
    assert spec.root == "https://pkgs.example:8443/pypi/"
    assert spec.host == "pkgs.example"
    assert [(s.name, s.url) for s in spec.sources()] == [
        ("fromsource", "https://pkgs.example:8443/pypi/python-all/simple/")]
    two = index_spec("https://h/", ("python-remediated", "python"), name="corp")
    assert [s.name for s in two.sources()] == ["corp-remediated", "corp-python"]


def test_credentials_in_url_use_the_underscore_form() -> None:
    creds = Credentials("acme/4f9c", "a/b c")
    url = index_spec("http://h/").simple_url("python", creds)
    assert url == "http://acme_4f9c:a%2Fb%20c@h/python/simple/"
    assert "a/b c" not in repr(creds)
    assert mask(url, creds.secrets) == "http://acme_4f9c:********@h/python/simple/"


@pytest.mark.parametrize(
    ("index", "repos", "match"),
    [
        ("ftp://h/", (), "http"),
        ("https://u:p@h/", (), "credentials"),
        ("https://h/python-all/simple/", (), "repository URL"),
        ("https://h/python", (), "repository URL"),
        ("https://h/", ("nope",), "unknown"),
        ("https://h/", ("python", "python"), "twice"),
        ("https://h/", ("python-all", "python"), "combines"),
    ],
)
def test_bad_input_refused_with_a_hint(index: str, repos: tuple[str, ...], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        index_spec(index, repos)


def test_owns_ignores_credentials_in_urls() -> None:
    spec = index_spec("https://h/x/")
    assert spec.owns("https://u:p@h/x/python/simple/")
    assert not spec.owns("https://h/y/python/simple/")
