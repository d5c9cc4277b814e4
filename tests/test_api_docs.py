"""docs/api.md is generated from the OpenAPI description and must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_api_reference_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen-api-docs.py"), "--check"], check=False
    )
    assert result.returncode == 0, "docs/api.md is stale: run .venv/bin/python scripts/gen-api-docs.py"
