"""``verify --index`` against a live index on loopback, with venvs installed by real pip and uv."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from fromsource.cli.main import main
from fromsource.provenance.keystore import load_or_create_signing_key
from fromsource.provenance.statement import PatchInfo
from tests.clients import UV, clean_env, run, write_netrc
from tests.conftest import IndexServer, start_server, stop_server
from tests.factories import make_wheel
from tests.verify.conftest import attest, write_keys


@dataclass(frozen=True)
class LiveIndex:
    server: IndexServer
    token: tuple[str, str]
    plain: Path
    hashes: dict[str, str]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveIndex]:
    """An index with attested ``live-app`` 1.0, ``live-dep`` 0.1 and ``live-app`` 1.0+fs.1."""
    base = tmp_path_factory.mktemp("live-index")
    server = start_server(base / "data")
    try:
        key = load_or_create_signing_key(server.data_dir / "keys")
        wheels = base / "wheels"
        fixed = PatchInfo("0001-fix.patch", "c" * 64, ("PYSEC-2099-9", "CVE-2099-9"))
        hashes: dict[str, str] = {}
        for name, version, repo, patches in (
            ("live-dep", "0.1", "python", ()),
            ("live-app", "1.0", "python", ()),
            ("live-app", "1.0+fs.1", "python-remediated", (fixed,)),
        ):
            wheel = make_wheel(wheels, name, version, console_scripts={name: "os:getcwd"})
            envelope = attest(wheel, key, repository=repo, patches=patches)
            server.publish(wheel, repo=repo, provenance=envelope)
            hashes[f"{name}=={version}"] = hashlib.sha256(wheel.read_bytes()).hexdigest()
        token = server.token("python", "python-remediated")
        yield LiveIndex(server, token, make_wheel(base / "plain", "not-ours", "1.0"), hashes)
    finally:
        stop_server(server)


def _install(live: LiveIndex, venv: Path, installer: str, home: Path, *reqs: str) -> None:
    env = clean_env(home)
    url = live.server.cred_url("python", live.token)
    if installer == "uv":
        cmds = [[UV, "venv", "-q", str(venv)],
                [UV, "pip", "install", "-q", "--no-cache", "--python", str(venv / "bin/python"),
                 "--index-url", url, *reqs]]
    else:
        cmds = [[sys.executable, "-m", "venv", "--without-pip", str(venv)],
                [sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "install",
                 "-q", "--no-cache-dir", "--index-url", url, *reqs]]
    for cmd in cmds:
        result = run(cmd, env)
        assert result.returncode == 0, result.stdout + result.stderr


def verify(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["verify", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _creds(live: LiveIndex) -> list[str]:
    return ["--username", live.token[0], "--password", live.token[1]]


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_a_venv_installed_from_the_index_is_fully_verified(
    live: LiveIndex, installer: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = tmp_path / ".venv"
    _install(live, venv, installer, tmp_path / "home", "live-app==1.0", "live-dep")
    code, out, err = verify([str(venv), "--index", live.server.url, *_creds(live),
                             "--fail-under", "100", "--format", "json"], capsys)
    assert code == 0, out + err
    doc = json.loads(out)
    assert (doc["verified"], doc["total"]) == (2, 2)
    signing = load_or_create_signing_key(live.server.data_dir / "keys")
    assert doc["keys"]["used"] == [signing.keyid]
    assert live.token[1] not in out + err
    # Plus a package from elsewhere: the exact fraction.
    run([sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "install", "-q",
         "--no-index", "--no-deps", str(live.plain)], clean_env(tmp_path / "home"))
    code, out, _ = verify([str(venv), "--index", live.server.url, *_creds(live),
                           "--fail-under", "100"], capsys)
    assert code == 1
    assert "Verification Coverage: 66.67%" in out and "Verified packages: 2 of 3" in out


def test_remediated_versions_netrc_and_advisories(
    live: LiveIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    venv = tmp_path / ".venv"
    _install(live, venv, "uv", tmp_path / "home", "live-app==1.0", "live-dep")
    advisories = tmp_path / "advisories"
    advisories.mkdir()
    (advisories / "PYSEC-2099-9.json").write_text(json.dumps({
        "id": "PYSEC-2099-9", "modified": "2099-01-01T00:00:00Z", "aliases": ["CVE-2099-9"],
        "affected": [{"package": {"name": "live-app", "ecosystem": "PyPI"},
                      "ranges": [{"type": "ECOSYSTEM",
                                  "events": [{"introduced": "0"}, {"fixed": "1.1"}]}]}]}))
    host = live.server.url.split("://", 1)[1].split(":", 1)[0]
    write_netrc(tmp_path, host, *live.token)
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    code, out, err = verify([str(venv), "--index", live.server.url, "--advisories",
                             str(advisories), "--format", "json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    app = next(r for r in doc["results"] if r["name"] == "live-app")
    (vuln,) = app["vulnerabilities"]
    assert vuln["state"] == "affected" and vuln["remediated_in"] == ["1.0+fs.1"]
    assert vuln["fixed_in"] == ["1.1"]
    # The remediated build itself: verified-remediated, the advisory fixed by its patch.
    venv2 = tmp_path / ".venv2"
    env = clean_env(tmp_path / "home2")
    url = live.server.cred_url("python-remediated", live.token)
    for cmd in ([UV, "venv", "-q", str(venv2)],
                [UV, "pip", "install", "-q", "--no-cache", "--no-deps", "--python",
                 str(venv2 / "bin/python"), "--index-url", url, "live-app==1.0+fs.1"]):
        assert run(cmd, env).returncode == 0
    code, out, _ = verify([str(venv2), "--index", live.server.url, "--advisories",
                           str(advisories), "--detailed"], capsys)
    assert "Status: verified-remediated" in out
    assert "PYSEC-2099-9 (CVE-2099-9): fixed by an attested patch of this build" in out


def test_pinned_keys_and_lock_files(
    live: LiveIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        f"live-app==1.0 --hash=sha256:{live.hashes['live-app==1.0']}\n"
        f"live-dep==0.1 --hash=sha256:{live.hashes['live-dep==0.1']}\n"
    )
    simple = live.server.simple("python")
    keys = tmp_path / "keys.json"
    keys.write_bytes(httpx.get(live.server.url + ".well-known/fromsource/keys.json").content)
    code, out, _ = verify([str(requirements), "--index", simple, *_creds(live),
                           "--keys", str(keys), "--fail-under", "100"], capsys)
    assert code == 0, out
    wrong = write_keys(tmp_path / "wrong.json", load_or_create_signing_key(tmp_path / "k"))
    code, out, _ = verify([str(requirements), "--index", simple, *_creds(live),
                           "--keys", str(wrong), "--format", "json"], capsys)
    doc = json.loads(out)
    assert doc["verified"] == 0
    assert {r["status"] for r in doc["results"]} == {"attestation-invalid"}


def test_missing_or_bad_credentials_exit_2_without_leaking(
    live: LiveIndex, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.delenv("FROMSOURCE_USERNAME", raising=False)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"live-dep==0.1 --hash=sha256:{'0' * 64}\n")
    code, out, err = verify([str(requirements), "--index", live.server.url], capsys)
    assert code == 2 and "401" in err
    code, out, err = verify([str(requirements), "--index", live.server.url, "--username",
                             live.token[0], "--password", "wrong-secret-value"], capsys)
    assert code == 2 and "wrong-secret-value" not in out + err
