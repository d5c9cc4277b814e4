"""python-upstream on a real index over loopback, against a local upstream the tests make:
what passes policy is listed (marked) and served (fetched once, then cached); what does not
is hidden and refused; python-all adds it last for an entitled token only; real pip and uv."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import httpx

from fromsource.config import UPSTREAM_REPOSITORY
from fromsource.store.catalog import project_files
from fromsource.store.db import open_database
from tests.clients import UV, bare_venv, clean_env, pip_for, run
from tests.conftest import IndexServer, wait_for_generation
from tests.policy.malware_records import fake_record
from tests.proxy.conftest import EVIL_MAL, HASH_MAL, Proxied

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}
ENTITLED = ("python", "python-remediated", UPSTREAM_REPOSITORY)
BUILT_ONLY = ("python", "python-remediated")


def _client(index: IndexServer, token: tuple[str, str]) -> httpx.Client:
    return httpx.Client(base_url=index.url, auth=token, timeout=60)


def _listed(client: httpx.Client, repo: str, project: str) -> dict[str, dict[str, object]]:
    page = client.get(f"/{repo}/simple/{project}/", headers=JSON)
    assert page.status_code == 200, page.text
    return {f["filename"]: f for f in page.json()["files"]}


def test_the_upstream_page_lists_exactly_the_files_policy_lets_through_marked(
    proxied: Proxied,
) -> None:
    with _client(proxied.index, proxied.index.token(*ENTITLED)) as client:
        generation = client.get("/api/policy", auth=proxied.index.token(admin=True)).json()[
            "policy_generation"
        ]
        expected = {
            "fresh-pkg": ["fresh_pkg-1.0-py3-none-any.whl"],  # 2.0 is in its cooldown
            "evil-pkg": ["evil_pkg-1.0-py3-none-any.whl"],  # 1.1 is malware
            "blocked-pkg": ["blocked_pkg-0.9-py3-none-any.whl"],  # 1.0 is blocked
            "mixed-pkg": [
                "mixed_pkg-1.0-py3-none-any.whl",
                "mixed_pkg-1.0.tar.gz",
                "mixed_pkg-1.1-py3-none-any.whl",
            ],
        }
        for project, names in expected.items():
            files = _listed(client, UPSTREAM_REPOSITORY, project)
            assert sorted(files) == names, project
            for name, entry in files.items():
                assert entry["_fromsource"] == {
                    "origin": "upstream",
                    "policy_generation": generation,
                }
                assert (
                    entry["url"]
                    == f"../../files/{project}/{name.split('-')[1].removesuffix('.tar.gz')}/{name}"
                )
                digest = hashlib.sha256(proxied.files[name].read_bytes()).hexdigest()
                assert entry["hashes"] == {"sha256": digest}
                assert "core-metadata" not in entry and "provenance" not in entry
        # Every release of hashed-pkg is denied (one file is known malware): nothing to list.
        assert client.get("/python-upstream/simple/hashed-pkg/").status_code == 404
        assert client.get("/python-upstream/simple/no-such-pkg/").status_code == 404
        html = client.get("/python-upstream/simple/fresh-pkg/").text
        assert 'data-fromsource-origin="upstream"' in html and "fresh_pkg-2.0" not in html


def test_files_are_fetched_once_checked_and_refused_by_policy(proxied: Proxied) -> None:
    wheel = "fresh_pkg-1.0-py3-none-any.whl"
    url = f"/python-upstream/files/fresh-pkg/1.0/{wheel}"
    with _client(proxied.index, proxied.index.token(*ENTITLED)) as client:
        for _ in range(3):
            got = client.get(url)
            assert got.status_code == 200
            assert got.content == proxied.files[wheel].read_bytes()
        assert proxied.fetched(wheel) == 1  # later requests come from the blob store
        ranged = client.get(url, headers={"Range": "bytes=0-1"})
        assert ranged.status_code == 206 and ranged.content == b"PK"
        assert client.get(url + ".metadata").status_code == 404

        refused = {
            "/python-upstream/files/evil-pkg/1.1/evil_pkg-1.1-py3-none-any.whl": (409, EVIL_MAL),
            "/python-upstream/files/hashed-pkg/1.0/hashed_pkg-1.0-py3-none-any.whl": (
                409,
                HASH_MAL,
            ),
            "/python-upstream/files/blocked-pkg/1.0/blocked_pkg-1.0-py3-none-any.whl": (
                409,
                "blocked by rule",
            ),
            "/python-upstream/files/fresh-pkg/2.0/fresh_pkg-2.0-py3-none-any.whl": (
                404,
                "cooldown",
            ),
        }
        for path, (status, words) in refused.items():
            answer = client.get(path)
            assert (answer.status_code, words in answer.text) == (status, True), answer.text
            assert proxied.fetched(path.rsplit("/", 1)[1]) == 0  # never fetched at all
        assert (
            client.get("/python-upstream/files/fresh-pkg/9.9/fresh_pkg-9.9.tar.gz").status_code
            == 404
        )
        # The root lists what was fetched.
        root = client.get("/python-upstream/simple/", headers=JSON).json()
        assert "fresh-pkg" in {p["name"] for p in root["projects"]}
    log = _audit(proxied, "--project", "evil-pkg")
    assert {(e["action"], e["repo"], e["mal_id"]) for e in log} >= {
        ("hidden", UPSTREAM_REPOSITORY, EVIL_MAL),
        ("refused", UPSTREAM_REPOSITORY, EVIL_MAL),
    }


def test_python_all_adds_upstream_last_for_an_entitled_token_only(proxied: Proxied) -> None:
    with _client(proxied.index, proxied.index.token(*ENTITLED)) as client:
        files = _listed(client, "python-all", "mixed-pkg")
        # The index's own 1.0 wins over the upstream's 1.0 (wheel and sdist); 1.1 comes from it.
        assert sorted(files) == ["mixed_pkg-1.0-py3-none-any.whl", "mixed_pkg-1.1-py3-none-any.whl"]
        ours, theirs = (
            files["mixed_pkg-1.0-py3-none-any.whl"],
            files["mixed_pkg-1.1-py3-none-any.whl"],
        )
        assert "_fromsource" not in ours and str(ours["url"]).startswith("../../files/")
        assert theirs["_fromsource"]["origin"] == "upstream"  # type: ignore[index]
        assert theirs["url"] == (
            "../../../python-upstream/files/mixed-pkg/1.1/mixed_pkg-1.1-py3-none-any.whl"
        )
        built = hashlib.sha256(proxied.built.read_bytes()).hexdigest()
        assert ours["hashes"] == {"sha256": built}
        assert sorted(_listed(client, "python-all", "fresh-pkg")) == [
            "fresh_pkg-1.0-py3-none-any.whl"
        ]
    # An admin token reads python-upstream, but python-all adds it only for a token made for it.
    with _client(proxied.index, proxied.index.token(admin=True)) as client:
        assert "fresh_pkg-1.0-py3-none-any.whl" in _listed(client, UPSTREAM_REPOSITORY, "fresh-pkg")
        assert sorted(_listed(client, "python-all", "mixed-pkg")) == [
            "mixed_pkg-1.0-py3-none-any.whl"
        ]
    with _client(proxied.index, proxied.index.token(*BUILT_ONLY)) as client:
        assert sorted(_listed(client, "python-all", "mixed-pkg")) == [
            "mixed_pkg-1.0-py3-none-any.whl"
        ]
        assert client.get("/python-all/simple/fresh-pkg/").status_code == 404
        assert client.get("/python-upstream/simple/fresh-pkg/").status_code == 403
        assert (
            client.get(
                "/python-upstream/files/fresh-pkg/1.0/fresh_pkg-1.0-py3-none-any.whl"
            ).status_code
            == 403
        )


def _installed(python: Path, env: dict[str, str]) -> set[str]:
    listed = run([*pip_for(python), "list", "--format", "json"], env)
    return {f"{p['name']}=={p['version']}" for p in json.loads(listed.stdout)}


def test_pip_and_uv_with_an_entitled_token_see_exactly_what_passes(
    proxied: Proxied, tmp_path: Path
) -> None:
    token = proxied.index.token(*ENTITLED)
    env = clean_env(tmp_path / "home")
    python = bare_venv(tmp_path / "pip-venv")
    index = ["--no-cache-dir", "--index-url", proxied.index.cred_url("python-all", token)]
    done = run(
        [*pip_for(python), "install", *index, "fresh-pkg", "evil-pkg", "mixed-pkg", "blocked-pkg"],
        env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert _installed(python, env) >= {
        "fresh-pkg==1.0",
        "evil-pkg==1.0",
        "mixed-pkg==1.1",
        "blocked-pkg==0.9",
    }
    for pinned, versions in (
        ("fresh-pkg==2.0", "(from versions: 1.0)"),
        ("evil-pkg==1.1", "(from versions: 1.0)"),
        ("blocked-pkg==1.0", "(from versions: 0.9)"),
    ):
        refused = run([*pip_for(python), "install", *index, pinned], env)
        assert refused.returncode != 0
        assert versions in refused.stdout + refused.stderr, pinned
    denied = run([*pip_for(python), "install", *index, "hashed-pkg"], env)
    assert denied.returncode != 0 and "No matching distribution" in denied.stderr

    venv = tmp_path / "uv-venv"
    assert run([UV, "venv", "-q", "--python", sys.executable, str(venv)], env).returncode == 0
    user = token[0].replace("/", "%2F")
    host = proxied.index.url.split("://", 1)[1]
    uv_index = [
        "--no-cache",
        "--index-url",
        f"http://{user}:{token[1]}@{host}python-upstream/simple/",
    ]
    uv = [UV, "pip", "install", "--python", str(venv / "bin" / "python"), *uv_index]
    done = run([*uv, "fresh-pkg", "evil-pkg", "blocked-pkg"], env)
    assert done.returncode == 0, done.stderr
    assert _installed(venv / "bin" / "python", env) >= {
        "fresh-pkg==1.0",
        "evil-pkg==1.0",
        "blocked-pkg==0.9",
    }
    for pinned in ("fresh-pkg==2.0", "evil-pkg==1.1", "blocked-pkg==1.0", "hashed-pkg"):
        assert run([*uv, pinned], env).returncode != 0, pinned


def _verify(proxied: Proxied, token: tuple[str, str], target: Path, *index: str) -> dict[str, Any]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        proxied.cli(
            "verify",
            str(target),
            "--index",
            proxied.index.url + "".join(index),
            "--username",
            token[0],
            "--password",
            token[1],
            "--format",
            "json",
            "-q",
        )
    document: dict[str, Any] = json.loads(out.getvalue())
    return document


def test_verify_reports_upstream_for_a_package_installed_from_the_proxy(
    proxied: Proxied, tmp_path: Path
) -> None:
    token = proxied.index.token(*ENTITLED)
    generation = proxied.index.token(admin=True)
    with _client(proxied.index, generation) as api:
        policy_generation = api.get("/api/policy").json()["policy_generation"]
    env = clean_env(tmp_path / "home")
    python = bare_venv(tmp_path / "venv")
    index = ["--no-cache-dir", "--index-url", proxied.index.cred_url("python-all", token)]
    done = run([*pip_for(python), "install", *index, "fresh-pkg", "mixed-pkg==1.0"], env)
    assert done.returncode == 0, done.stdout + done.stderr

    report = _verify(proxied, token, tmp_path / "venv")
    results = {r["name"]: r for r in report["results"]}
    fresh = results["fresh-pkg"]
    assert (fresh["status"], fresh["verified"]) == ("upstream", False)
    digest = hashlib.sha256(
        proxied.files["fresh_pkg-1.0-py3-none-any.whl"].read_bytes()
    ).hexdigest()
    assert fresh["served"] == {
        "filename": "fresh_pkg-1.0-py3-none-any.whl",
        "sha256": digest,
        "repository": UPSTREAM_REPOSITORY,
        "policy_generation": policy_generation,
    }
    assert f"policy generation {policy_generation}" in fresh["details"]
    # The index's own (unattested) build of mixed-pkg 1.0 is not the upstream's file.
    assert results["mixed-pkg"]["status"] == "not-built-by-index"
    assert report["statuses"]["upstream"] == 1 and report["verified"] == 0
    # The same through python-all, and for the wheel file and a hash-pinned requirement.
    assert {
        r["name"]: r["status"]
        for r in _verify(proxied, token, tmp_path / "venv", "python-all/simple/")["results"]
    }["fresh-pkg"] == "upstream"
    wheel = proxied.files["fresh_pkg-1.0-py3-none-any.whl"]
    assert _verify(proxied, token, wheel)["results"][0]["status"] == "upstream"
    pinned = tmp_path / "requirements.txt"
    pinned.write_text(f"fresh-pkg==1.0 --hash=sha256:{digest}\n")
    assert _verify(proxied, token, pinned)["results"][0]["status"] == "upstream"
    # A token without the upstream entitlement cannot tell: not built by the index.
    built_only = _verify(proxied, proxied.index.token(*BUILT_ONLY), tmp_path / "venv")
    assert {r["name"]: r["status"] for r in built_only["results"]}["fresh-pkg"] == (
        "not-built-by-index"
    )


def _audit(proxied: Proxied, *args: str) -> list[dict[str, object]]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert proxied.cli("policy", "log", "--limit", "1000", "--format", "json", *args) == 0
    entries: list[dict[str, object]] = json.loads(out.getvalue())["entries"]
    return entries


def test_an_allow_rule_lets_one_release_through_and_is_audited(proxied: Proxied) -> None:
    assert (
        proxied.cli(
            "policy", "add", "allow", "pkg:pypi/evil-pkg@1.1", "--reason", "malware lab, ticket 7"
        )
        == 0
    )
    wait_for_generation(proxied.index)
    wheel = "evil_pkg-1.1-py3-none-any.whl"
    with _client(proxied.index, proxied.index.token(*ENTITLED)) as client:
        files = _listed(client, UPSTREAM_REPOSITORY, "evil-pkg")
        assert sorted(files) == ["evil_pkg-1.0-py3-none-any.whl", wheel]
        served = client.get(f"/python-upstream/files/evil-pkg/1.1/{wheel}")
        assert served.status_code == 200 and served.content == proxied.files[wheel].read_bytes()
        # The other denials stand.
        assert sorted(_listed(client, UPSTREAM_REPOSITORY, "fresh-pkg")) == [
            "fresh_pkg-1.0-py3-none-any.whl"
        ]
    entries = _audit(proxied, "--project", "evil-pkg")
    through = {(e["action"], e["verdict"], e["repo"], e["filename"], e["mal_id"]) for e in entries}
    assert ("listed", "allow", UPSTREAM_REPOSITORY, wheel, EVIL_MAL) in through
    assert ("served", "allow", UPSTREAM_REPOSITORY, wheel, EVIL_MAL) in through


def test_a_record_imported_later_refuses_a_kept_file_and_withdraws_it(
    proxied: Proxied, tmp_path: Path
) -> None:
    wheel = "fresh_pkg-1.0-py3-none-any.whl"
    url = f"/python-upstream/files/fresh-pkg/1.0/{wheel}"
    with _client(proxied.index, proxied.index.token(*ENTITLED)) as client:
        assert client.get(url).status_code == 200  # kept from an earlier test, or fetched now
        record = fake_record("MAL-2026-9109", "fresh-pkg", versions=("1.0",))
        (tmp_path / "later.json").write_text(json.dumps(record.to_json()))
        assert proxied.cli("advisories", "import", str(tmp_path / "later.json")) == 0
        wait_for_generation(proxied.index)
        refused = client.get(url)
        assert refused.status_code == 409 and "MAL-2026-9109" in refused.text
        assert client.get("/python-upstream/simple/fresh-pkg/").status_code == 404
    db = open_database(proxied.index.database_url)
    try:
        (kept,) = [f for f in project_files(db, UPSTREAM_REPOSITORY, "fresh-pkg")]
        assert kept.yanked and "MAL-2026-9109" in (kept.yanked_reason or "")
    finally:
        db.dispose()
