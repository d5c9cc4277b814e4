"""uv, poetry and pdm TOML edits: format kept, idempotent, stale entries of this index replaced."""

from __future__ import annotations

import tomllib

from fromsource.indexclient import Credentials
from fromsource.setup.model import index_spec
from fromsource.setup.tomlconf import (
    set_pdm_config,
    set_pdm_sources,
    set_poetry_auth,
    set_poetry_sources,
    set_uv_indexes,
)

ROOT = "https://pkgs.example/"
ONE = index_spec(ROOT)
TWO = index_spec(ROOT, ("python-remediated", "python"))
CREDS = Credentials("acme/4f9c", "fs_secret")
PYPROJECT = '[project]\nname = "app"  # the app\nversion = "0.1"\n\n[tool.black]\nline-length = 100\n'


def test_uv_pyproject_two_repositories() -> None:
    text, notes = set_uv_indexes(PYPROJECT, TWO, pyproject=True)
    assert text.startswith(PYPROJECT)  # comments and order kept
    uv = tomllib.loads(text)["tool"]["uv"]
    assert uv["index-strategy"] == "unsafe-best-match"
    assert uv["index"] == [
        {"name": "fromsource-remediated", "url": f"{ROOT}python-remediated/simple/", "authenticate": "always"},
        {"name": "fromsource-python", "url": f"{ROOT}python/simple/", "authenticate": "always", "default": True},
    ]
    assert notes == ()
    assert set_uv_indexes(text, TWO, pyproject=True)[0] == text


def test_uv_switch_to_one_repository_replaces_own_entries_only() -> None:
    text, _ = set_uv_indexes(
        '[[index]]\nname = "corp"\nurl = "https://corp/simple/"\ndefault = true\n', TWO, pyproject=False
    )
    text, notes = set_uv_indexes(text, ONE, pyproject=False)
    data = tomllib.loads(text)
    names = [i["name"] for i in data["index"]]
    assert names == ["corp", "fromsource"]
    assert "default" not in data["index"][0] and data["index"][1]["default"] is True
    assert data["index"][1]["url"] == f"{ROOT}python-all/simple/"
    assert notes == ()  # corp lost `default` on the first run already


def test_uv_toml_notes_the_default_it_takes_over() -> None:
    _, notes = set_uv_indexes('[[index]]\nname = "corp"\nurl = "https://corp/"\ndefault = true\n', ONE, pyproject=False)
    assert len(notes) == 1 and "corp" in notes[0]


def test_poetry_sources_and_auth() -> None:
    text, _ = set_poetry_sources(PYPROJECT, TWO)
    sources = tomllib.loads(text)["tool"]["poetry"]["source"]
    assert [(s["name"], s["priority"]) for s in sources] == [
        ("fromsource-remediated", "primary"), ("fromsource-python", "primary")]
    assert set_poetry_sources(text, TWO)[0] == text
    auth, _ = set_poetry_auth("", TWO.sources(), CREDS)
    assert tomllib.loads(auth)["http-basic"]["fromsource-python"] == {"username": "acme/4f9c", "password": "fs_secret"}
    assert set_poetry_auth(auth, TWO.sources(), CREDS)[0] == auth


def test_pdm_sources_replace_the_default_index() -> None:
    text, notes = set_pdm_sources(PYPROJECT + '\n[[tool.pdm.source]]\nname = "pypi"\nurl = "https://mirror/simple"\n', TWO)
    sources = tomllib.loads(text)["tool"]["pdm"]["source"]
    assert [s["name"] for s in sources] == ["pypi", "fromsource-python"]
    assert sources[0]["url"] == f"{ROOT}python-remediated/simple/"
    assert notes and "mirror" in notes[0]
    assert set_pdm_sources(text, TWO)[0] == text


def test_pdm_global_config_with_and_without_credentials() -> None:
    text, _ = set_pdm_config('[python]\nuse_venv = true\n', TWO, CREDS)
    data = tomllib.loads(text)
    assert data["python"] == {"use_venv": True}
    assert data["pypi"]["url"] == f"{ROOT}python-remediated/simple/"
    assert data["pypi"]["username"] == "acme_4f9c"  # pdm writes it into the URL
    assert data["pypi"]["fromsource-python"]["password"] == "fs_secret"
    assert set_pdm_config(text, TWO, CREDS)[0] == text
    one, _ = set_pdm_config(text, ONE, None)
    assert "fromsource-python" not in tomllib.loads(one)["pypi"]
