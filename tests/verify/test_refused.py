"""``verify --index`` when the index refuses a project (``409 Conflict`` on its page).

A real index on loopback holds three attested projects; after they were
installed, a ``MAL-`` record denies every version of one and a block rule
another.  verify reports those two as ``refused-by-index`` with the reason the
index gave, and verifies the rest (regression: the first 409 stopped the run
with exit 2).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fromsource.cli.main import main
from fromsource.provenance.keystore import load_or_create_signing_key
from tests.conftest import IndexServer, start_server, stop_server, wait_for_generation
from tests.factories import make_wheel
from tests.policy.malware_records import fake_record
from tests.verify.conftest import attest, make_venv

MAL_ID = "MAL-2026-7301"
MAL_SUMMARY = "Malicious code in refused-evil (PyPI)"


@dataclass(frozen=True)
class Refusing:
    server: IndexServer
    creds: list[str]
    wheels: dict[str, Path]


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Refusing]:
    """``refused-kept``, ``refused-evil`` and ``refused-shut`` 1.0, attested; then policy
    denies every version of ``refused-evil`` (a MAL record) and ``refused-shut`` (a rule)."""
    base = tmp_path_factory.mktemp("refusing-index")
    server = start_server(base / "data")
    try:
        key = load_or_create_signing_key(server.data_dir / "keys")
        wheels: dict[str, Path] = {}
        for name in ("refused-kept", "refused-evil", "refused-shut"):
            wheel = make_wheel(base / "wheels", name, "1.0")
            server.publish(wheel, provenance=attest(wheel, key))
            wheels[name] = wheel
        run = ["--data-dir", str(server.data_dir)]
        record = fake_record(MAL_ID, "refused-evil", everything=True, summary=MAL_SUMMARY)
        (base / f"{MAL_ID}.json").write_text(json.dumps(record.to_json()))
        assert main([*run, "advisories", "import", str(base / f"{MAL_ID}.json")]) == 0
        assert main([*run, "policy", "add", "block", "pkg:pypi/refused-shut",
                     "--reason", "retired in-house"]) == 0
        wait_for_generation(server)
        token = server.token("python", "python-remediated")
        yield Refusing(server, ["--username", token[0], "--password", token[1]], wheels)
    finally:
        stop_server(server)


def _verify(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["verify", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _by_name(out: str) -> dict[str, dict[str, object]]:
    return {str(r["name"]): r for r in json.loads(out)["results"]}


def _check_refused(results: dict[str, dict[str, object]], url: str) -> None:
    assert results["refused-kept"]["status"] == "verified"
    evil, shut = results["refused-evil"], results["refused-shut"]
    assert (evil["status"], evil["verified"]) == ("refused-by-index", False)
    assert evil["details"] == (
        f"refused by the index ({url}python/simple/refused-evil/ answered 409 Conflict): "
        f"every version of refused-evil is malware: {MAL_ID} ({MAL_SUMMARY})"
    )
    assert shut["status"] == "refused-by-index"
    assert "refused-shut is blocked by rule" in str(shut["details"])
    assert "retired in-house" in str(shut["details"])


def test_an_environment_with_refused_projects_is_reported_not_stopped(
    refusing: Refusing, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = make_venv(tmp_path / "venv", "pip", list(refusing.wheels.values()))
    url = refusing.server.url
    code, out, err = _verify([str(venv), "--index", url, *refusing.creds, "--format", "json"],
                             capsys)
    assert code == 0, out + err
    doc = json.loads(out)
    assert (doc["verified"], doc["total"]) == (1, 3)
    assert doc["statuses"]["refused-by-index"] == 2
    _check_refused(_by_name(out), url)

    # The text report names the reason in its "Not verified" list; the gate follows coverage.
    code, out, err = _verify([str(venv), "--index", url, *refusing.creds, "--fail-under", "100"],
                             capsys)
    assert code == 1, out + err
    lines = out.splitlines()
    assert "Verified packages: 1 of 3" in lines
    assert (
        f"  refused-evil==1.0: refused-by-index: refused by the index ({url}python/simple/"
        f"refused-evil/ answered 409 Conflict): every version of refused-evil is malware: "
        f"{MAL_ID} ({MAL_SUMMARY})"
    ) in lines


def test_wheels_and_lock_files_with_refused_projects(
    refusing: Refusing, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = refusing.server.url
    folder = tmp_path / "wheels"
    folder.mkdir()
    lines = []
    for name, wheel in refusing.wheels.items():
        (folder / wheel.name).write_bytes(wheel.read_bytes())
        lines.append(f"{name}==1.0 --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n".join(lines) + "\n")
    for artifact in (folder, requirements):
        code, out, err = _verify(
            [str(artifact), "--index", url, *refusing.creds, "--format", "json"], capsys
        )
        assert code == 0, out + err
        _check_refused(_by_name(out), url)
