"""Policy on a real index over loopback: hidden versions, 409s with the MAL id, allow
rules, the audit log and the /api/policy routes, seen by httpx and real pip."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fromsource.cli.main import main
from tests.clients import bare_venv, clean_env, pip_for, run
from tests.conftest import IndexServer, start_server, stop_server, wait_for_generation
from tests.factories import make_wheel
from tests.policy.malware_records import fake_record

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
EVIL = "MAL-2026-901"
TYPO = "MAL-2026-902"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[IndexServer]:
    """An index with demo-evil 1.0 (good) and 1.1 (named by a MAL record), typo-pkg 0.1
    (every version malicious) and demo-good 1.0; the records imported with the CLI."""
    index = start_server(tmp_path / "data")
    wheels = tmp_path / "wheels"
    try:
        for name, version in (
            ("demo-evil", "1.0"),
            ("demo-evil", "1.1"),
            ("typo-pkg", "0.1"),
            ("demo-good", "1.0"),
        ):
            index.publish(make_wheel(wheels, name, version))
        records = tmp_path / "records"
        records.mkdir()
        for record in (
            fake_record(EVIL, "demo-evil", versions=("1.1",)),
            fake_record(TYPO, "Typo_Pkg", everything=True),
        ):
            (records / f"{record.id}.json").write_text(json.dumps(record.to_json()))
        assert main(["--data-dir", str(index.data_dir), "advisories", "import", str(records)]) == 0
        wait_for_generation(index)
        yield index
    finally:
        stop_server(index)


def _client(server: IndexServer, token: tuple[str, str]) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=token, timeout=30)


def _audit(api: httpx.Client, **params: str) -> list[dict[str, object]]:
    answer = api.get("/api/policy/log", params={"limit": "1000", **params})
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, object]] = answer.json()
    return entries


def test_malicious_versions_are_hidden_and_their_files_answer_409_with_the_mal_id(
    server: IndexServer,
) -> None:
    reader = server.token("python", "python-remediated")
    admin = server.token(admin=True)
    with _client(server, reader) as client, _client(server, admin) as api:
        for repo in ("python", "python-all"):
            page = client.get(f"/{repo}/simple/demo-evil/", headers=JSON)
            assert page.status_code == 200
            assert page.json()["versions"] == ["1.0"]
            assert [f["filename"] for f in page.json()["files"]] == [
                "demo_evil-1.0-py3-none-any.whl"
            ]
            html = client.get(f"/{repo}/simple/demo-evil/").text
            assert "1.0-py3" in html and "1.1-py3" not in html

        url = "/python/files/demo-evil/1.1/demo_evil-1.1-py3-none-any.whl"
        for path in (url, url + ".metadata"):
            refused = client.get(path)
            assert refused.status_code == 409
            assert EVIL in refused.text and "Malicious code in demo-evil (PyPI)" in refused.text
        assert client.head(url).status_code == 409

        # A project that is malware in every version: 409 on its page, gone from the root.
        typo = client.get("/python/simple/typo-pkg/", headers=JSON)
        assert typo.status_code == 409 and TYPO in typo.text
        root = client.get("/python/simple/", headers=JSON).json()
        assert {p["name"] for p in root["projects"]} == {"demo-evil", "demo-good"}
        # Even with no file at all in a repository: not a 404 the client could retry elsewhere.
        assert client.get("/python-remediated/simple/typo-pkg/").status_code == 409

        hidden = _audit(api, action="hidden")
        assert {(e["repo"], e["filename"], e["mal_id"]) for e in hidden} >= {
            ("python", "demo_evil-1.1-py3-none-any.whl", EVIL),
            ("python-all", "demo_evil-1.1-py3-none-any.whl", EVIL),
        }
        assert ("python", None, TYPO) in {(e["repo"], e["filename"], e["mal_id"]) for e in hidden}
        refused_log = _audit(api, action="refused")
        assert ("python", "demo_evil-1.1-py3-none-any.whl") in {
            (e["repo"], e["filename"]) for e in refused_log
        }
        assert any(e["mal_id"] == TYPO and e["filename"] is None for e in refused_log)
        # Once per process and policy generation, however often it is asked for.
        for _ in range(3):
            client.get(url)
        assert len(_audit(api, action="refused", project="demo-evil")) == 1


def test_pip_does_not_see_the_malicious_version(server: IndexServer, tmp_path: Path) -> None:
    reader = server.token("python")
    env = clean_env(tmp_path / "home")
    python = bare_venv(tmp_path / "venv")
    index = ["--no-cache-dir", "--index-url", server.cred_url("python", reader)]
    pinned = run([*pip_for(python), "install", *index, "demo-evil==1.1"], env)
    assert pinned.returncode != 0
    output = pinned.stdout + pinned.stderr
    assert "from versions: 1.0)" in output and "No matching distribution" in output
    newest = run([*pip_for(python), "install", *index, "demo-evil"], env)
    assert newest.returncode == 0, newest.stdout + newest.stderr
    listed = run([*pip_for(python), "list", "--format", "freeze"], env).stdout
    assert "demo-evil==1.0" in listed.splitlines()


def test_an_allow_rule_lets_one_release_through_audited_and_block_rules_apply(
    server: IndexServer, tmp_path: Path
) -> None:
    reader = server.token("python")
    admin = server.token(admin=True)
    with _client(server, reader) as client, _client(server, admin) as api:
        missing_reason = api.post(
            "/api/policy/rules", json={"kind": "allow", "purl": "pkg:pypi/demo-evil@1.1"}
        )
        assert missing_reason.status_code == 400 and "reason" in missing_reason.text
        created = api.post(
            "/api/policy/rules",
            json={"kind": "allow", "purl": "pkg:pypi/demo-evil@1.1", "reason": "lab analysis"},
        )
        assert created.status_code == 201, created.text
        rule = created.json()
        assert rule["created_by"] == f"token:{admin[0]}"
        again = api.post(
            "/api/policy/rules",
            json={"kind": "allow", "purl": "pkg:pypi/demo-evil@1.1", "reason": "twice"},
        )
        assert again.status_code == 409
        wait_for_generation(server)

        page = client.get("/python/simple/demo-evil/", headers=JSON).json()
        assert page["versions"] == ["1.0", "1.1"]
        (evil,) = [f for f in page["files"] if f["filename"].startswith("demo_evil-1.1")]
        # Withdrawn on import: listed again, but yanked with the MAL id as the reason.
        assert evil["yanked"] == f"{EVIL}: Malicious code in demo-evil (PyPI)"
        served = client.get("/python/files/demo-evil/1.1/demo_evil-1.1-py3-none-any.whl")
        assert served.status_code == 200

        through = {(e["action"], e["verdict"], e["rule_id"], e["mal_id"]) for e in _audit(api)}
        assert ("listed", "allow", rule["id"], EVIL) in through
        assert ("served", "allow", rule["id"], EVIL) in through
        assert ("rule-added", "allow", rule["id"], None) in through

        tested = api.get("/api/policy/test", params={"purl": "pkg:pypi/demo-evil@1.1"}).json()
        assert (tested["allowed"], tested["verdict"], tested["overridden"]) == (
            True,
            "allow",
            "malware",
        )
        shown = api.get("/api/policy").json()
        assert shown["malware_records"] == 2 and shown["default_cooldown_days"] == 7
        assert [r["id"] for r in shown["rules"]] == [rule["id"]]

        # A whole-project block rule: 409 on the page, then removed, then 200 again.
        block = api.post(
            "/api/policy/rules", json={"kind": "block", "purl": "pkg:pypi/demo-good"}
        ).json()
        blocked = client.get("/python/simple/demo-good/")
        assert blocked.status_code == 409 and f"rule {block['id']}" in blocked.text
        assert api.delete(f"/api/policy/rules/{block['id']}").status_code == 200
        assert api.delete(f"/api/policy/rules/{block['id']}").status_code == 404
        assert client.get("/python/simple/demo-good/").status_code == 200

        # Pull tokens cannot read or change policy.
        assert client.get("/api/policy").status_code == 403

    env = clean_env(tmp_path / "home")
    python = bare_venv(tmp_path / "venv")
    pinned = run(
        [
            *pip_for(python),
            "install",
            "--no-cache-dir",
            "--index-url",
            server.cred_url("python", reader),
            "demo-evil==1.1",
        ],
        env,
    )
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    assert EVIL in pinned.stdout + pinned.stderr  # pip warns with the yank reason
