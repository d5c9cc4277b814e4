"""Write docs/api.md from the management API's OpenAPI description.

Run: .venv/bin/python scripts/gen-api-docs.py  (tests/test_api_docs.py checks it is current)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def openapi() -> dict[str, Any]:
    """The OpenAPI document of a freshly made app over a throw-away data dir."""
    from fromsource.config import Settings
    from fromsource.index.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp)))
        api = app.fallback  # type: ignore[attr-defined]
        document: dict[str, Any] = api.openapi()
        app.state.db.dispose()  # type: ignore[attr-defined]
    return document


def render(document: dict[str, Any]) -> str:
    """Markdown: one section per path, one line per method with its summary and parameters."""
    lines = [
        "# Management and public API reference",
        "",
        "Generated from the OpenAPI description (`/api/openapi.json`) by",
        "`scripts/gen-api-docs.py`; do not edit by hand. The simple API, files and",
        "integrity documents are a separate hot path: see docs/http.md.",
        "",
        f"API version {document['info']['version']}.",
        "",
    ]
    for path, methods in sorted(document["paths"].items()):
        lines.append(f"## `{path}`")
        lines.append("")
        for method, op in methods.items():
            params = ", ".join(
                f"`{p['name']}` ({p['in']}{', required' if p.get('required') else ''})"
                for p in op.get("parameters", [])
            )
            body = " Request body: " + ", ".join(sorted(op["requestBody"]["content"])) + "." if "requestBody" in op else ""
            codes = ", ".join(sorted(op.get("responses", {})))
            lines.append(f"- **{method.upper()}** {op.get('summary', '')}."
                         + (f" Parameters: {params}." if params else "") + body
                         + (f" Responses: {codes}." if codes else ""))
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    text = render(openapi())
    target = ROOT / "docs" / "api.md"
    if "--check" in sys.argv:
        return 0 if target.read_text() == text else 1
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
