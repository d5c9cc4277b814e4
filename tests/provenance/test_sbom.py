"""Tests for fromsource.provenance.sbom: CycloneDX 1.6 documents of built wheels."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from fromsource.errors import ProvenanceError
from fromsource.provenance import PatchInfo, ResolvedDependency, SbomInput, build_sbom
from fromsource.provenance.sbom import BundledComponent

REPO_ROOT = Path(__file__).resolve().parents[2]

DEPENDENCY = ResolvedDependency(
    filename="setuptools-80.9.0-py3-none-any.whl",
    project="setuptools",
    version="80.9.0",
    sha256="5" * 64,
    source="bootstrap",
    uri="http://127.0.0.1:9/files/setuptools-80.9.0-py3-none-any.whl",
)
PLAIN = SbomInput(
    project="Flask",
    version="2.0.0",
    wheel_filename="flask-2.0.0-py3-none-any.whl",
    sdist_url="http://127.0.0.1:9/files/flask-2.0.0.tar.gz",
    sdist_sha256="3" * 64,
    dependencies=(DEPENDENCY,),
    patches=(),
    epoch=1_620_000_000,
)
REMEDIATED = replace(
    PLAIN,
    version="2.0.0+fs.1",
    wheel_filename="flask-2.0.0+fs.1-py3-none-any.whl",
    patches=(PatchInfo("0001-vary-cookie.patch", "4" * 64, ("PYSEC-2023-62", "CVE-2023-30861")),),
    patch_texts={"0001-vary-cookie.patch": "--- a/x\n+++ b/x\n"},
)


def load(inp: SbomInput) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(build_sbom(inp))
    return document


@pytest.mark.parametrize("inp", [PLAIN, REMEDIATED])
def test_valid_against_the_1_6_schema(inp: SbomInput) -> None:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(build_sbom(inp).decode())
    assert error is None, error


def test_plain_build() -> None:
    doc = load(PLAIN)
    assert doc["specVersion"] == "1.6"
    assert doc["metadata"]["timestamp"].startswith("2021-05-03T00:00:00")
    component = doc["metadata"]["component"]
    assert component["type"] == "library"
    assert component["purl"] == "pkg:pypi/flask@2.0.0"
    assert "pedigree" not in component
    (source,) = component["externalReferences"]
    assert source["type"] == "source-distribution"
    assert source["url"] == PLAIN.sdist_url
    assert source["hashes"] == [{"alg": "SHA-256", "content": "3" * 64}]
    assert [t["name"] for t in doc["metadata"]["tools"]["components"]] == ["fromsource"]
    (dep,) = doc["components"]
    assert dep["purl"].startswith("pkg:pypi/setuptools@80.9.0")
    assert dep["scope"] == "excluded"
    assert dep["hashes"] == [{"alg": "SHA-256", "content": "5" * 64}]
    assert "vulnerabilities" not in doc


def test_remediated_build_has_pedigree() -> None:
    doc = load(REMEDIATED)
    component = doc["metadata"]["component"]
    assert component["version"] == "2.0.0+fs.1"
    pedigree = component["pedigree"]
    (ancestor,) = pedigree["ancestors"]
    assert ancestor["purl"] == "pkg:pypi/flask@2.0.0"
    (patch,) = pedigree["patches"]
    assert patch["type"] == "backport"
    assert patch["diff"]["url"] == "0001-vary-cookie.patch"
    assert patch["diff"]["text"]["content"] == "--- a/x\n+++ b/x\n"
    assert sorted((r["type"], r["id"]) for r in patch["resolves"]) == [
        ("security", "CVE-2023-30861"),
        ("security", "PYSEC-2023-62"),
    ]
    fixed = {v["id"]: v["analysis"]["state"] for v in doc["vulnerabilities"]}
    assert fixed == {
        "CVE-2023-30861": "resolved_with_pedigree",
        "PYSEC-2023-62": "resolved_with_pedigree",
    }


def test_stable_across_runs_and_processes() -> None:
    first = build_sbom(REMEDIATED)
    assert build_sbom(REMEDIATED) == first
    # A fresh interpreter (new hash seed, new uuid4 state) gives the same bytes.
    code = (
        "import sys\n"
        "from tests.provenance.test_sbom import REMEDIATED\n"
        "from fromsource.provenance import build_sbom\n"
        "sys.stdout.buffer.write(build_sbom(REMEDIATED))\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, check=True, cwd=REPO_ROOT
    ).stdout
    assert other == first
    # Different inputs give a different serial number.
    assert load(PLAIN)["serialNumber"] != json.loads(first)["serialNumber"]


def test_rejects_non_pep440_version() -> None:
    with pytest.raises(ProvenanceError, match="not PEP 440"):
        build_sbom(replace(PLAIN, version="not a version"))


def test_bundled_crates_are_shipped_components_of_a_valid_document() -> None:
    crates = (
        BundledComponent("pkg:cargo/tinyadd@0.1.0", "a" * 64, (("fromsource:crate-origin", "x"),)),
        BundledComponent("pkg:cargo/gitdep@2.0.0", None),
    )
    inp = replace(PLAIN, bundled=crates)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(build_sbom(inp).decode())
    assert error is None, error
    doc = load(inp)
    bundled = {c["purl"]: c for c in doc["components"] if c["purl"].startswith("pkg:cargo/")}
    assert bundled["pkg:cargo/tinyadd@0.1.0"]["hashes"] == [{"alg": "SHA-256", "content": "a" * 64}]
    assert "hashes" not in bundled["pkg:cargo/gitdep@2.0.0"]
    assert {c["scope"] for c in bundled.values()} == {"required"}
    assert build_sbom(inp) == build_sbom(inp)
    assert load(inp)["serialNumber"] != load(PLAIN)["serialNumber"]
