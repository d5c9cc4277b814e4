"""``fromsource advisories import|list`` and ``remediate`` argument handling, in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fromsource.cli.main import main

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "advisories"


def run(tmp_path: Path, *args: str) -> int:
    return main(["--data-dir", str(tmp_path / "data"), *args])


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/advisories is not present")
def test_import_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "advisories", "import", str(SHARED / "flask"), "--shipped",
               "--format", "json") == 0
    imported = json.loads(capsys.readouterr().out)
    assert imported["schema_version"] == 1 and imported["added"] >= 4

    assert run(tmp_path, "advisories", "list", "Flask==2.0.0", "--format", "json") == 0
    listing = json.loads(capsys.readouterr().out)
    assert "PYSEC-2023-62" in {a["id"] for a in listing["affecting"]}
    assert listing["fixed"] == []

    # our remediated build: the series says what its patches fix
    assert run(tmp_path, "advisories", "list", "flask==2.0.0+fs.1", "--format", "json") == 0
    listing = json.loads(capsys.readouterr().out)
    assert [a["id"] for a in listing["fixed"]] == ["PYSEC-2023-62"]
    assert "PYSEC-2023-62" not in {a["id"] for a in listing["affecting"]}

    assert run(tmp_path, "advisories", "list", "jinja2==3.1.2") == 0
    out = capsys.readouterr().out
    assert "affected  GHSA-h5c8-rqwp-cp95  CVE-2024-22195  fixed in 3.1.3" in out

    assert run(tmp_path, "advisories", "list", "flask") == 0
    assert "PYSEC-2023-62" in capsys.readouterr().out


def test_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "advisories", "import") == 2
    assert run(tmp_path, "advisories", "list", "flask==not a version") == 2
    assert run(tmp_path, "remediate", "flask") == 2
    assert run(tmp_path, "remediate", "nothing-here==1.0") == 2
    err = capsys.readouterr().err
    assert "no patch series for nothing-here==1.0" in err and "flask==2.0.0" in err
    assert "--series-root <folder> or set FROMSOURCE_SERIES_ROOT" in err


def test_remediate_reads_the_operators_series_folder_from_the_setting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    own = tmp_path / "our-series"
    (own / "demo-pkg" / "1.0").mkdir(parents=True)
    monkeypatch.setenv("FROMSOURCE_SERIES_ROOT", str(own))
    assert run(tmp_path, "remediate", "demo-pkg==1.0") == 2
    err = capsys.readouterr().err
    assert f"no patch series for demo-pkg==1.0 in {own} (series there: none)" in err
    assert "<folder>/demo-pkg/1.0/series.toml" in err


def test_broken_advisory_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert run(tmp_path, "advisories", "import", str(bad)) == 2
    assert f"{bad}: cannot be decoded" in capsys.readouterr().err


@pytest.mark.network
def test_remediate_then_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "remediate", "urllib3==1.26.16", "--allow-unsandboxed",
               "--format", "json") == 0
    done = json.loads(capsys.readouterr().out)
    assert done["version"] == "1.26.16+fs.1" and done["build"]["status"] == "succeeded"
    assert done["patches"][0]["fixes"][0] == "PYSEC-2023-192"
    # the same revision again is refused: published files are immutable
    assert run(tmp_path, "remediate", "urllib3==1.26.16", "--revision", "1") == 2
    assert "already published" in capsys.readouterr().err
    if SHARED.is_dir():
        assert run(tmp_path, "advisories", "import", str(SHARED / "urllib3")) == 0
        capsys.readouterr()
        assert run(tmp_path, "advisories", "list", "urllib3==1.26.16+fs.1",
                   "--format", "json") == 0
        listing = json.loads(capsys.readouterr().out)
        # the published build's provenance says what its patches fix
        assert [a["id"] for a in listing["fixed"]] == ["PYSEC-2023-192"]
