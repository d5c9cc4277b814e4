"""The snippets in docs/setup.md are what `setup` writes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from fromsource.indexclient import Credentials
from fromsource.setup.model import index_spec
from fromsource.setup.tomlconf import (
    set_pdm_config,
    set_pdm_sources,
    set_poetry_auth,
    set_poetry_sources,
    set_uv_indexes,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "setup.md").read_text()
ROOT = "https://pkgs.example.com/"
CREDS = Credentials("acme/4f9c0a1b2c3d4e5f", "SECRET")


def _block_after(marker: str) -> dict[str, object]:
    start = DOC.index(marker)
    match = re.compile(r"```toml\n(.*?)```", re.DOTALL).search(DOC, start)
    assert match is not None, marker
    return tomllib.loads(match.group(1))


def test_uv_snippet() -> None:
    spec = index_spec(ROOT, ("python-remediated", "python"))
    written, _ = set_uv_indexes("", spec, pyproject=True)
    assert _block_after("setup uv --project . --repo") == tomllib.loads(written)


def test_poetry_snippets() -> None:
    spec = index_spec(ROOT)
    assert _block_after("`setup poetry --project .` writes") == tomllib.loads(set_poetry_sources("", spec)[0])
    assert _block_after("and, in poetry's `auth.toml`") == tomllib.loads(set_poetry_auth("", spec.sources(), CREDS)[0])


def test_pdm_snippets() -> None:
    spec = index_spec(ROOT)
    assert _block_after("`setup pdm --project .` writes") == tomllib.loads(set_pdm_sources("", spec)[0])
    assert _block_after("`setup pdm` (global)") == tomllib.loads(set_pdm_config("", spec, CREDS)[0])
