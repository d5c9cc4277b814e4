"""``verify --index`` reads the advisories the index holds: a real index on loopback,
an advisory imported with ``fromsource advisories import``, venvs installed by real pip."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fromsource.cli.main import main
from fromsource.provenance.keystore import load_or_create_signing_key
from fromsource.provenance.statement import PatchInfo
from tests.conftest import IndexServer, start_server, stop_server, wait_for_generation
from tests.factories import make_wheel
from tests.verify.conftest import attest, make_venv

# Shaped like the PyPA record PYSEC-2023-62 (flask's missing Vary: Cookie): no summary, a
# GIT range and an ECOSYSTEM range with two fixed versions.
ADVISORY = {
    "id": "PYSEC-2023-62",
    "modified": "2023-06-05T01:13:00Z",
    "published": "2023-05-02T18:15:00Z",
    "aliases": ["CVE-2023-30861", "GHSA-m2qf-hxjv-5gpq"],
    "details": "Flask may send one client's session cookie to other clients through a "
               "caching proxy.\n\nThis issue has been fixed in versions 2.3.2 and 2.2.5.",
    "affected": [{
        "package": {"name": "flask", "ecosystem": "PyPI", "purl": "pkg:pypi/flask"},
        "ranges": [
            {"type": "GIT", "repo": "https://github.com/pallets/flask",
             "events": [{"introduced": "0"}, {"fixed": "70f906c51ce49c485f1d355703e9cc3386b1cc2b"}]},
            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.2.5"},
                                             {"introduced": "2.3.0"}, {"fixed": "2.3.2"}]},
        ],
    }],
}
IDS = ("PYSEC-2023-62", "CVE-2023-30861", "GHSA-m2qf-hxjv-5gpq")
TITLE = "Flask may send one client's session cookie to other clients through a caching proxy."


@dataclass(frozen=True)
class Index:
    server: IndexServer
    creds: list[str]
    wheels: dict[str, Path]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    """flask 2.0.0 and itsdangerous 2.0.0 in ``python``, flask 2.0.0+fs.1 (patched for
    PYSEC-2023-62) in ``python-remediated``, all attested; the advisory imported."""
    base = tmp_path_factory.mktemp("index-advisories")
    server = start_server(base / "data")
    try:
        key = load_or_create_signing_key(server.data_dir / "keys")
        patch = PatchInfo("0001-vary-cookie.patch", "d" * 64, IDS)
        wheels: dict[str, Path] = {}
        for name, version, repo, patches in (
            ("flask", "2.0.0", "python", ()),
            ("itsdangerous", "2.0.0", "python", ()),
            ("flask", "2.0.0+fs.1", "python-remediated", (patch,)),
        ):
            wheel = make_wheel(base / "wheels" / version, name, version)
            server.publish(wheel, repo=repo,
                           provenance=attest(wheel, key, repository=repo, patches=patches))
            wheels[f"{name}=={version}"] = wheel
        record = base / "PYSEC-2023-62.json"
        record.write_text(json.dumps(ADVISORY))
        assert main(["--data-dir", str(server.data_dir), "advisories", "import", str(record)]) == 0
        wait_for_generation(server)
        token = server.token("python", "python-remediated")
        yield Index(server, ["--username", token[0], "--password", token[1]], wheels)
    finally:
        stop_server(server)


def verify(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["verify", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_vulnerable_version_is_named_with_its_fixes_without_advisories_dir(
    index: Index, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Regression (issue 18, item 13): only --advisories DIR was read, and only text from
    # --detailed named the packages.
    venv = make_venv(tmp_path / "venv", "pip",
                     [index.wheels["flask==2.0.0"], index.wheels["itsdangerous==2.0.0"]])
    code, out, err = verify([str(venv), "--index", index.server.url, *index.creds,
                             "--fail-under", "100"], capsys)
    assert code == 0, out + err
    assert err == ""
    assert f"Advisories: index {index.server.url}" in out.splitlines()
    known = out.split("\nKnown vulnerabilities:\n", 1)[1].splitlines()
    assert known == [
        (f"  flask==2.0.0: PYSEC-2023-62 (CVE-2023-30861, GHSA-m2qf-hxjv-5gpq): {TITLE} "
         "[fixed in 2.2.5, 2.3.2; remediated in 2.0.0+fs.1]")
    ]
    code, out, _ = verify([str(venv), "--index", index.server.url, *index.creds,
                           "--format", "json"], capsys)
    doc = json.loads(out)
    assert doc["vulnerabilities_checked"] is True
    assert doc["advisories_source"] == f"index {index.server.url}"
    vulns = {r["name"]: r["vulnerabilities"] for r in doc["results"]}
    assert vulns["itsdangerous"] == []
    (flask,) = vulns["flask"]
    assert (flask["id"], flask["state"], flask["fixed_in"], flask["remediated_in"]) == (
        "PYSEC-2023-62", "affected", ["2.2.5", "2.3.2"], ["2.0.0+fs.1"])


def test_a_remediated_version_is_named_with_what_it_fixes(
    index: Index, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = make_venv(tmp_path / "venv", "uv", [index.wheels["flask==2.0.0+fs.1"]])
    code, out, _ = verify([str(venv), "--index", index.server.url, *index.creds], capsys)
    assert code == 0
    lines = out.splitlines()
    remediated = lines.index("Remediated:")
    assert lines[remediated + 1] == (
        "  flask==2.0.0+fs.1: attested patches fix PYSEC-2023-62, CVE-2023-30861, "
        "GHSA-m2qf-hxjv-5gpq")
    assert "Known vulnerabilities: none" in lines


def test_an_advisories_folder_replaces_the_index_advisories(
    index: Index, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    venv = make_venv(tmp_path / "venv", "uv", [index.wheels["flask==2.0.0"]])
    folder = tmp_path / "osv"
    folder.mkdir()
    other = {**ADVISORY, "id": "PYSEC-2099-1", "aliases": [], "summary": "another bug"}
    (folder / "PYSEC-2099-1.json").write_text(json.dumps(other))
    code, out, _ = verify([str(venv), "--index", index.server.url, *index.creds,
                           "--advisories", str(folder)], capsys)
    assert code == 0
    assert f"Advisories: advisories folder {folder}" in out
    assert "PYSEC-2099-1" in out and "PYSEC-2023-62" not in out
