"""Patch series: the shipped series and manifest validation."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from packaging.version import Version

from fromsource.errors import RemediateError
from fromsource.remediate.series import (
    PatchSeries,
    find_series,
    list_series,
    load_series,
    parse_manifest,
    require_series,
    shipped_root,
)

MANIFEST = """
project = "Demo_Pkg"
version = "1.0"

[[patch]]
file = "0001-a.patch"
summary = "first"
fixes = ["PYSEC-1", "CVE-1"]

[[patch]]
file = "0002-b.patch"
fixes = ["GHSA-x"]
strip = 0
"""


def make_series(root: Path, manifest: str = MANIFEST, folder: str = "demo-pkg/1.0") -> Path:
    directory = root / folder
    directory.mkdir(parents=True)
    (directory / "series.toml").write_text(manifest)
    (directory / "0001-a.patch").write_text("--- a/x\n+++ b/x\n")
    (directory / "0002-b.patch").write_text("--- x\n+++ x\n")
    return directory


def test_load_series(tmp_path: Path) -> None:
    series = load_series(make_series(tmp_path))
    assert series.project == "demo-pkg" and series.version == Version("1.0")
    assert [p.name for p in series.patches] == ["0001-a.patch", "0002-b.patch"]
    first = series.patches[0]
    assert first.sha256 == hashlib.sha256(first.path.read_bytes()).hexdigest()
    assert first.strip == 1 and series.patches[1].strip == 0
    assert series.fixes == ("PYSEC-1", "CVE-1", "GHSA-x")


def test_a_missing_series_says_where_an_operators_own_series_go(tmp_path: Path) -> None:
    make_series(tmp_path)
    assert require_series("demo-pkg", "1.0", root=tmp_path).version == Version("1.0")
    with pytest.raises(RemediateError) as raised:
        require_series("Demo.Pkg", "1.1", root=tmp_path)
    message = raised.value.message
    assert message.startswith(f"no patch series for demo-pkg==1.1 in {tmp_path} ")
    assert "(series there: demo-pkg==1.0)" in message
    assert "keep your own series in a folder of yours" in message
    assert "<folder>/demo-pkg/1.1/series.toml" in message and "<folder>/_advisories/" in message
    assert "--series-root <folder>" in message and "FROMSOURCE_SERIES_ROOT" in message
    assert raised.value.facts["series_root"] == str(tmp_path)
    with pytest.raises(RemediateError, match="among the series shipped with fromsource"):
        require_series("demo-pkg", "1.0")


def test_find_series_by_pep440_version(tmp_path: Path) -> None:
    make_series(tmp_path)
    found = find_series("Demo.Pkg", "1.0.0+fs.2", root=tmp_path)
    assert found is not None and found.version == Version("1.0")
    assert find_series("demo-pkg", "1.1", root=tmp_path) is None
    assert find_series("other", "1.0", root=tmp_path) is None


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("project = 'x'\n", "version"),
        ("project = 'x'\nversion = '1'\n", "no \\[\\[patch\\]\\]"),
        ("project = 'x'\nversion = '1'\n[[patch]]\nfile = '../up.patch'\nfixes = ['A']\n",
         "plain"),
        ("project = 'x'\nversion = '1'\n[[patch]]\nfile = 'a.patch'\n", "'fixes'"),
        (("project = 'x'\nversion = '1'\n[[patch]]\nfile = 'a.patch'\nfixes = ['A']\n"
         "[[patch]]\nfile = 'a.patch'\nfixes = ['B']\n"), "listed twice"),
        ("project = 'x'\nversion = 'one'\n", "PEP 440"),
        ("this is = not toml", "TOML"),
    ],
)
def test_manifest_errors(manifest: str, message: str) -> None:
    with pytest.raises(RemediateError, match=message):
        parse_manifest(manifest, where="series.toml")


def test_folder_must_match_manifest(tmp_path: Path) -> None:
    with pytest.raises(RemediateError, match="does not match its folder"):
        load_series(make_series(tmp_path, folder="other/1.0"))
    with pytest.raises(RemediateError, match="does not match its folder"):
        load_series(make_series(tmp_path, folder="demo-pkg/2.0"))


def test_missing_patch_file(tmp_path: Path) -> None:
    directory = make_series(tmp_path)
    (directory / "0002-b.patch").unlink()
    with pytest.raises(RemediateError, match="0002-b.patch"):
        load_series(directory)


def test_shipped_series() -> None:
    shipped: dict[tuple[str, str], PatchSeries] = {
        (s.project, str(s.version)): s for s in list_series()
    }
    assert set(shipped) >= {("flask", "2.0.0"), ("werkzeug", "2.2.2"), ("requests", "2.30.0"),
                            ("urllib3", "1.26.16"), ("jinja2", "3.1.2")}
    assert "PYSEC-2023-62" in shipped[("flask", "2.0.0")].fixes
    assert "CVE-2024-34064" in shipped[("jinja2", "3.1.2")].fixes
    for series in shipped.values():
        assert series.directory.is_relative_to(shipped_root())
        for patch in series.patches:
            assert patch.fixes and patch.summary
