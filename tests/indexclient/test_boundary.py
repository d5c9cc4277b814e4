"""The index client stands alone: it imports only names and errors, so verify needs no builder."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

ALLOWED = {"fromsource", "fromsource.errors", "fromsource.dist", "fromsource.dist.names"}
"""dist/__init__ re-exports nothing, so importing dist.names loads only that module."""


def _loaded(module: str) -> set[str]:
    """The fromsource modules a fresh interpreter holds after importing *module*."""
    code = (
        f"import json, sys, {module}; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'fromsource')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout))


def test_the_client_imports_only_names_and_errors() -> None:
    loaded = _loaded("fromsource.indexclient")
    assert {m for m in loaded if not m.startswith("fromsource.indexclient")} == ALLOWED


@pytest.mark.parametrize("module", ["fromsource.verify", "fromsource.lockfiles"])
def test_verify_and_lock_run_without_the_builder(module: str) -> None:
    loaded = _loaded(module)
    assert not {m for m in loaded if m.startswith(("fromsource.build", "fromsource.store"))}
