"""``fromsource verify`` end to end, offline: real venvs (pip and uv), wheels and lock files."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from fromsource.cli.main import main
from fromsource.provenance.keys import SigningKey
from fromsource.provenance.statement import PatchInfo
from tests.factories import make_wheel
from tests.verify.conftest import (
    Attested,
    MakeAttested,
    make_venv,
    site_packages,
    write_attestation,
    write_keys,
)


@dataclass(frozen=True)
class World:
    """Attested wheels, a plain wheel, their attestation folder and key files."""

    app: Attested
    lib: Attested
    fixed: Attested
    plain: Path
    attestations: Path
    keys: Path
    wrong_keys: Path

    def offline(self, keys: Path | None = None) -> list[str]:
        return ["--attestations", str(self.attestations), "--keys", str(keys or self.keys)]


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, make_attested: MakeAttested,
    signing_key: SigningKey, other_key: SigningKey,
) -> World:
    base = tmp_path_factory.mktemp("world")
    app = make_attested(
        "demo-app", "1.0",
        files={
            "demo_app/__init__.py": "X = 1\n",
            "demo_app/cli.py": "def main():\n    return 0\n",
            "demo_app-1.0.data/scripts/demo-tool": "#!python\nprint('tool')\n",
            "demo_app-1.0.data/data/share/demo-app/notes.txt": "notes\n",
        },
        console_scripts={"demo-app": "demo_app.cli:main"},
    )
    lib = make_attested("dep-lib", "0.1")
    fixed = make_attested(
        "patched-lib", "2.0.0+fs.1", repository="python-remediated",
        patches=[PatchInfo("0001-fix.patch", "b" * 64, ("PYSEC-2099-7", "CVE-2099-7"))],
    )
    plain = make_wheel(base / "plain", "plain-pkg", "3.0")
    folder = base / "attestations"
    write_attestation(folder, app)
    write_attestation(folder, lib, form="dsse")
    write_attestation(folder, fixed)
    return World(app, lib, fixed, plain, folder, write_keys(base / "keys.json", signing_key),
                 write_keys(base / "wrong.json", other_key))


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["verify", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module", params=["pip", "uv"])
def clean_venv(request: pytest.FixtureRequest, world: World,
               tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp(f"venv-{request.param}") / ".venv"
    return make_venv(path, request.param, [world.app.wheel, world.lib.wheel, world.fixed.wheel])


def test_a_clean_venv_is_fully_verified(
    clean_venv: Path, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run([str(clean_venv), *world.offline(), "--fail-under", "100"], capsys)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == f"Artifact: {clean_venv}/"
    assert lines[1] == "Verification Coverage: 100.00%"
    assert lines[2] == "Verified packages: 3 of 3"
    assert any(line.startswith("Signing key: sha256:") for line in lines)


def test_detailed_text_names_each_package(
    clean_venv: Path, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run([str(clean_venv), *world.offline(), "--detailed"], capsys)
    assert code == 0
    blocks = out.split("\n\n")[1:]
    assert [b.splitlines()[-1] for b in blocks] == [
        "Python package: demo-app==1.0",
        "Python package: dep-lib==0.1",
        "Python package: patched-lib==2.0.0+fs.1",
    ]
    assert blocks[0].startswith("Status: verified\nDetails: built from source: repository python")
    assert "Status: verified-remediated" in blocks[2] and "PYSEC-2099-7" in blocks[2]


def test_a_plain_wheel_gives_the_exact_fraction(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = make_venv(tmp_path / "venv", "uv", [world.app.wheel, world.lib.wheel, world.plain])
    code, out, err = run([str(venv), *world.offline(), "--fail-under", "100"], capsys)
    assert code == 1
    assert "Verification Coverage: 66.67%" in out and "Verified packages: 2 of 3" in out
    assert "plain-pkg==3.0: not-built-by-index" in out
    assert "below --fail-under 100%" in err
    code, out, _ = run([str(venv), *world.offline(), "--exclude", "Plain_Pkg"], capsys)
    assert "Verified packages: 2 of 2" in out and "excluded with --exclude" in out


def test_an_edited_file_is_flagged(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = make_venv(tmp_path / "venv", "pip", [world.app.wheel, world.lib.wheel])
    target = site_packages(venv) / "demo_app" / "cli.py"
    target.write_text(target.read_text() + "import os; os.system('true')\n")
    code, out, _ = run([str(venv), *world.offline(), "--format", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    app = next(r for r in doc["results"] if r["name"] == "demo-app")
    assert app["status"] == "modified-after-install"
    assert app["files"] == ["demo_app/cli.py"]
    assert doc["verified"] == 1 and doc["total"] == 2
    assert doc["summary"] == {"fully_verified": 1, "partially_verified": 1, "not_verified": 0}


def test_an_edited_script_is_flagged(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = make_venv(tmp_path / "venv", "uv", [world.app.wheel])
    script = venv / "bin" / "demo-tool"
    script.write_text(script.read_text().replace("tool", "evil"))
    code, out, _ = run([str(venv), *world.offline(), "--detailed"], capsys)
    assert code == 0
    assert "Status: modified-after-install" in out and "../../../bin/demo-tool" in out


def test_a_wrong_pinned_key_verifies_nothing(
    clean_venv: Path, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run([str(clean_venv), *world.offline(world.wrong_keys), "--format", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["verified"] == 0 and doc["coverage_percentage"] == 0.0
    assert {r["status"] for r in doc["results"]} == {"attestation-invalid"}
    assert doc["keys"]["used"] == []


def test_wheels_and_folders_of_wheels(world: World, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([str(world.app.wheel), *world.offline()], capsys)
    assert code == 0 and "Verified packages: 1 of 1" in out
    folder = tmp_path / "wheels"
    folder.mkdir()
    for wheel in (world.app.wheel, world.lib.wheel, world.plain):
        (folder / wheel.name).write_bytes(wheel.read_bytes())
    code, out, _ = run([str(folder), *world.offline(), "--format", "csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["name"], r["status"]) for r in rows] == [
        ("demo-app", "verified"), ("dep-lib", "verified"), ("plain-pkg", "not-built-by-index")]


def _lock_texts(world: World) -> dict[str, str]:
    app, lib = world.app, world.lib
    other = "e" * 64
    return {
        "requirements.txt": (
            f"demo-app==1.0 --hash=sha256:{app.sha256} --hash=sha256:{other}\n"
            f"dep-lib==0.1 \\\n    --hash=sha256:{lib.sha256}\n"
            f"plain-pkg==3.0 --hash=sha256:{other}\n"
        ),
        "pylock.toml": (
            'lock-version = "1.0"\ncreated-by = "test"\n'
            f'[[packages]]\nname = "demo-app"\nversion = "1.0"\n'
            f'wheels = [{{name = "{app.wheel.name}", hashes = {{sha256 = "{app.sha256}"}}}}]\n'
            f'[[packages]]\nname = "dep-lib"\nversion = "0.1"\n'
            f'wheels = [{{name = "{lib.wheel.name}", hashes = {{sha256 = "{lib.sha256}"}}}}]\n'
            f'[[packages]]\nname = "plain-pkg"\nversion = "3.0"\n'
            f'wheels = [{{name = "p.whl", hashes = {{sha256 = "{other}"}}}}]\n'
        ),
        "uv.lock": (
            'version = 1\nrequires-python = ">=3.11"\n'
            '[[package]]\nname = "me"\nversion = "0.1"\nsource = { virtual = "." }\n'
            f'[[package]]\nname = "demo-app"\nversion = "1.0"\nsource = {{ registry = "x" }}\n'
            f'wheels = [{{ url = "x", hash = "sha256:{app.sha256}" }}]\n'
            f'[[package]]\nname = "dep-lib"\nversion = "0.1"\nsource = {{ registry = "x" }}\n'
            f'wheels = [{{ url = "x", hash = "sha256:{lib.sha256}" }}]\n'
            f'[[package]]\nname = "plain-pkg"\nversion = "3.0"\nsource = {{ registry = "x" }}\n'
            f'wheels = [{{ url = "x", hash = "sha256:{other}" }}]\n'
        ),
    }


@pytest.mark.parametrize("lock", ["requirements.txt", "pylock.toml", "uv.lock"])
def test_lock_files(world: World, tmp_path: Path, lock: str,
                    capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / lock
    path.write_text(_lock_texts(world)[lock])
    code, out, _ = run([str(path), *world.offline(), "--format", "yaml"], capsys)
    assert code == 0, out
    doc = yaml.safe_load(out)
    assert doc["artifact_type"] in ("requirements", "pylock", "uv-lock")
    statuses = {r["name"]: r["status"] for r in doc["results"]}
    assert statuses == {"demo-app": "verified", "dep-lib": "verified",
                        "plain-pkg": "not-built-by-index"}
    assert doc["coverage_percentage"] == 66.67
    if lock == "uv.lock":
        assert doc["excluded"] == [{"name": "me", "version": "0.1",
                                    "reason": "workspace project (virtual source)"}]


def test_vulnerabilities_from_an_advisory_folder(
    clean_venv: Path, world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "advisories"
    folder.mkdir()
    for ident, name, fixed in (("PYSEC-2099-7", "patched-lib", "2.0.1"),
                               ("PYSEC-2099-8", "dep-lib", "0.2")):
        (folder / f"{ident}.json").write_text(json.dumps({
            "id": ident, "modified": "2099-01-01T00:00:00Z", "summary": f"bug in {name}",
            "aliases": [ident.replace("PYSEC", "CVE")],
            "affected": [{"package": {"name": name, "ecosystem": "PyPI"}, "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}]}))
    code, out, _ = run([str(clean_venv), *world.offline(), "--advisories", str(folder),
                        "--format", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    vulns = {r["name"]: r["vulnerabilities"] for r in doc["results"]}
    assert [v["state"] for v in vulns["patched-lib"]] == ["fixed-by-patch"]
    (dep,) = vulns["dep-lib"]
    assert dep["state"] == "affected" and dep["fixed_in"] == ["0.2"]
    code, out, _ = run([str(clean_venv), *world.offline(), "--advisories", str(folder)], capsys)
    assert "dep-lib==0.1: PYSEC-2099-8 (CVE-2099-8): bug in dep-lib [fixed in 0.2]" in out


def test_usage_and_input_errors_exit_2(world: World, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert run([str(tmp_path / "missing"), *world.offline()], capsys)[0] == 2
    assert run([str(world.app.wheel)], capsys)[0] == 2
    code, _, err = run([str(world.app.wheel), "--attestations", str(world.attestations)], capsys)
    assert code == 2 and "--keys" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run([str(empty), *world.offline()], capsys)
    assert code == 2 and "no virtualenv" in err
    code, _, err = run([str(world.app.wheel), *world.offline(tmp_path / "nokeys.json")], capsys)
    assert code == 2 and "nokeys.json" in err
    code, _, _ = run([str(world.app.wheel), *world.offline(), "--fail-under", "101"], capsys)
    assert code == 2


def test_a_malformed_lock_file_exits_2_naming_its_line(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lock = tmp_path / "uv.lock"
    lock.write_text('version = 1\n\n[[package]]\nname = "demo-app"\nversion = "1.0"\n'
                    'source = { registry = "x" }\nwheels = 5\n')
    code, _, err = run([str(lock), *world.offline()], capsys)
    assert code == 2
    assert f"{lock}:3: not a well-formed uv.lock: package demo-app: `wheels` is an integer" in err


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_an_empty_venv_fails_the_gate_unless_allowed(
    world: World, tmp_path: Path, installer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Regression (issue 18, item 15): "100.00%, 0 of 0" passed --fail-under 100.
    venv = make_venv(tmp_path / "venv", installer, [])
    code, out, err = run([str(venv), *world.offline(), "--fail-under", "100"], capsys)
    assert code == 1
    assert "Verification Coverage: 0.00%" in out and "Verified packages: 0 of 0" in out
    assert f"no distributions found in {venv}/: nothing was verified" in err
    assert "--allow-empty" in err
    code, out, err = run([str(venv), *world.offline(), "--quiet", "--format", "json"], capsys)
    assert code == 1 and "nothing was verified" in err
    assert json.loads(out)["coverage_percentage"] == 0.0
    code, _, err = run([str(venv), *world.offline(), "--fail-under", "100", "--allow-empty"],
                       capsys)
    assert code == 0 and "allowed by --allow-empty" in err


def test_a_venv_holding_only_what_was_uninstalled_fails(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = make_venv(tmp_path / "venv", "pip", [world.app.wheel])
    assert run([str(venv), *world.offline(), "--fail-under", "100"], capsys)[0] == 0
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "uninstall", "-q", "-y", "demo-app"], check=True)
    code, out, err = run([str(venv), *world.offline(), "--fail-under", "100"], capsys)
    assert code == 1 and "Verified packages: 0 of 0" in out
    assert "nothing was verified" in err


def test_excluding_everything_or_an_empty_lock_verifies_nothing(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = make_venv(tmp_path / "venv", "uv", [world.lib.wheel])
    code, _, err = run([str(venv), *world.offline(), "--exclude", "dep-lib"], capsys)
    assert code == 1 and "was excluded (1): nothing was verified" in err
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# nothing pinned\n")
    code, _, err = run([str(requirements), *world.offline()], capsys)
    assert code == 1 and f"no packages found in {requirements}: nothing was verified" in err


@pytest.mark.parametrize("target", ["venv", "wheel"])
def test_no_trusted_keys_verifies_nothing(
    clean_venv: Path, world: World, tmp_path: Path, target: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # With nothing to trust, no signature can verify: an error, never a report of passes.
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": []}))
    path = clean_venv if target == "venv" else world.app.wheel
    code, out, err = run([str(path), *world.offline(keys), "--fail-under", "0"], capsys)
    assert code == 2 and out == ""
    assert "no trusted keys" in err and "--keys" in err
