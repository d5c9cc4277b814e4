"""The web UI in a real browser: Debian's headless Chromium driven by Playwright.

Sign in with a pull token, search, open a project, open a version's
provenance; no console errors; a full-page screenshot is saved under the
test's tmp dir (and copied to ``$FROMSOURCE_TEST_ARTIFACTS`` when set).
Never runs ``playwright install``: the browser is the system's
``/usr/bin/chromium`` (``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IndexServer
from tests.index.ui_data import Published

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium chromium-driver)",
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield instance
        finally:
            instance.close()


def _artifact(path: Path) -> None:
    print(f"screenshot: {path}")
    target = os.environ.get("FROMSOURCE_TEST_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def test_sign_in_search_project_provenance(
    browser: Any, ui_index: tuple[IndexServer, Published], tmp_path: Path
) -> None:
    server, _ = ui_index
    token = server.token("python", "python-remediated")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        page.goto(server.url)
        assert "needs a token" in page.inner_text("main")

        page.click("header >> text=Sign in")
        page.fill("#id", token[0])
        page.fill("#secret", token[1])
        page.click("form.stack button[type=submit]")
        page.wait_for_url(server.url)
        assert page.inner_text(".who .token") == token[0]
        (cookie,) = [c for c in context.cookies() if c["name"] == "fs_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert token[1] not in cookie["value"]

        page.fill("#q", "demo")
        page.press("#q", "Enter")
        page.wait_for_url("**/?q=demo")
        hits = page.locator(".hits a.name")
        assert hits.all_inner_texts() == ["demo-pkg"]

        hits.first.click()
        page.wait_for_url("**/ui/python-all/demo-pkg/")
        assert "1.0+fs.1" in page.inner_text("main") and "remediated" in page.inner_text("main")

        page.click("h2 >> text=1.0+fs.1")
        page.wait_for_url("**/ui/python-all/demo-pkg/1.0%2Bfs.1/")
        status = page.locator(".status.verified")
        assert "signature verified with key sha256:" in status.inner_text()
        main = page.inner_text("main")
        assert "setuptools-80.9.0-py3-none-any.whl" in main and "PYSEC-2099-1" in main

        page.locator("summary", has_text="Show the log").first.click()
        assert "Successfully built" in page.locator("pre.log").first.inner_text()
        shot = tmp_path / "fromsource-version-page.png"
        page.screenshot(path=str(shot), full_page=True)
        _artifact(shot)
    finally:
        context.close()
    assert problems == []
