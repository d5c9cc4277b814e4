"""Report rendering: the text users compare against, JSON/YAML schema, CSV, the rich table."""

from __future__ import annotations

import csv
import io
import json

import yaml
from rich.console import Console

from fromsource.verify.model import (
    Excluded,
    PackageResult,
    Provenance,
    Report,
    Status,
    VulnerabilityFinding,
)
from fromsource.verify.report import nothing_verified, render, render_rich, to_document

PROV = Provenance("a-1.0-py3-none-any.whl", "1" * 64, "python", "build-7",
                  "https://u.invalid/a-1.0.tar.gz", "2" * 64, "sha256:" + "3" * 64)


def sample() -> Report:
    vuln = VulnerabilityFinding("PYSEC-1", ("CVE-1",), "bad thing", "affected", ("1.1",),
                                ("1.0+fs.1",))
    results = [
        PackageResult("a", "1.0", Status.VERIFIED, "built from source", "a.dist-info", PROV,
                      checked=3, matched=3, vulnerabilities=(vuln,)),
        PackageResult("b", "2.0", Status.MODIFIED, "1 file(s) differ", "b.dist-info", PROV,
                      files=("b/x.py",), checked=4, matched=3),
        PackageResult("c", "3.0", Status.NOT_BUILT, "no attestation", "c.dist-info"),
    ] + [PackageResult(f"v{i}", "1", Status.VERIFIED, "ok", "l", PROV) for i in range(2)]
    results += [PackageResult(f"n{i}", "1", Status.NOT_BUILT, "no", "l") for i in range(4)]
    return Report(".venv/", "environment", "index http://127.0.0.1:1/", tuple(results),
                  trusted_keys=(PROV.keyid,), excluded=(Excluded("pip", "24.0", "excluded"),),
                  advisories_checked=True)


def test_text_header_matches_the_known_form() -> None:
    text = render(sample(), "text")
    assert text.splitlines()[:5] == [
        "Artifact: .venv/",
        "Verification Coverage: 33.33%",
        "Verified packages: 3 of 9",
        "Source: index http://127.0.0.1:1/",
        f"Signing key: {PROV.keyid}",
    ]
    assert "  b==2.0: modified-after-install" in text
    assert "  a==1.0: PYSEC-1 (CVE-1): bad thing [fixed in 1.1; remediated in 1.0+fs.1]" in text
    assert "  pip==24.0: excluded" in text


def test_detailed_blocks() -> None:
    text = render(sample(), "text", detailed=True)
    assert "Status: modified-after-install\nDetails: 1 file(s) differ\n  b/x.py\nPython package: b==2.0" in text


def test_json_schema() -> None:
    doc = json.loads(render(sample(), "json"))
    assert doc["schema_version"] == 1
    assert (doc["coverage_percentage"], doc["verified"], doc["total"]) == (33.33, 3, 9)
    assert doc["summary"] == {"fully_verified": 3, "partially_verified": 1, "not_verified": 5}
    first = doc["results"][0]
    assert first["purl"] == "pkg:pypi/a@1.0" and first["provenance"]["build_id"] == "build-7"
    assert doc["results"][1]["coverage_percentage"] == 75.0
    assert yaml.safe_load(render(sample(), "yaml")) == to_document(sample())


def test_csv_rows() -> None:
    rows = list(csv.DictReader(io.StringIO(render(sample(), "csv"))))
    assert rows[0]["vulnerabilities"] == "PYSEC-1" and rows[1]["files"] == "b/x.py"
    assert len(rows) == 9


def test_rich_table_renders() -> None:
    console = Console(record=True, width=160, color_system=None)
    console.print(render_rich(sample(), detailed=True))
    out = console.export_text()
    assert "Verification Coverage: 33.33%" in out and "modified-after-install" in out
    assert "Known vulnerabilities" in out


def test_an_empty_report_proves_nothing() -> None:
    # Regression (issue 18, item 15): 0 of 0 read as 100 % and passed --fail-under 100.
    empty = Report("x/", "environment", "s", ())
    text = render(empty, "text")
    assert "Verification Coverage: 0.00%" in text and "Verified packages: 0 of 0" in text
    assert "No distributions found in x/: nothing was verified" in text
    assert json.loads(render(empty, "json"))["coverage_percentage"] == 0.0
    assert nothing_verified(empty) == "no distributions found in x/: nothing was verified"
    lock = Report("r.txt", "requirements", "s", (), excluded=(Excluded("pip", None, "x"),))
    assert nothing_verified(lock) == "every package found in r.txt was excluded (1): nothing was verified"
    assert nothing_verified(sample()) is None
