"""Applying patches with GNU patch on small trees made here."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from packaging.version import Version

from fromsource.dist.names import ProjectName, Sha256
from fromsource.errors import PatchError
from fromsource.remediate.apply import apply_patch, apply_series, parse_diff, parse_patch_output
from fromsource.remediate.series import PatchSeries, SeriesPatch

pytestmark = pytest.mark.skipif(shutil.which("patch") is None, reason="GNU patch not installed")

ORIGINAL = "".join(f"line {i}\n" for i in range(1, 21))

GOOD = """A description line before the diff.

--- a/pkg/mod.py
+++ b/pkg/mod.py
@@ -2,3 +2,3 @@
 line 2
-line 3
+line three
 line 4
@@ -15,4 +15,5 @@
 line 15
 line 16
+inserted
 line 17
 line 18
"""

BAD_SECOND_HUNK = """--- a/pkg/mod.py
+++ b/pkg/mod.py
@@ -2,3 +2,3 @@
 line 2
-line 3
+line three
 line 4
@@ -10,3 +10,3 @@
 line 10
-line 11 (changed upstream)
+line eleven
 line 12
"""


def make_patch(tmp_path: Path, name: str, text: str) -> SeriesPatch:
    path = tmp_path / name
    path.write_text(text)
    data = path.read_bytes()
    return SeriesPatch(name, path, Sha256(hashlib.sha256(data).hexdigest()), "", ("X-1",), 1,
                       data)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "demo-1.0"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text(ORIGINAL)
    return root


def test_apply_success(tmp_path: Path, tree: Path) -> None:
    report = apply_patch(tree, make_patch(tmp_path, "0001-good.patch", GOOD))
    text = (tree / "pkg" / "mod.py").read_text()
    assert "line three\n" in text and "line 16\ninserted\nline 17\n" in text
    assert "patching file pkg/mod.py" in report
    assert sorted(p.name for p in (tree / "pkg").iterdir()) == ["mod.py"]  # no .orig/.rej


def test_offsets_are_accepted(tmp_path: Path, tree: Path) -> None:
    (tree / "pkg" / "mod.py").write_text("new first\nnew second\n" + ORIGINAL)
    report = apply_patch(tree, make_patch(tmp_path, "0001-good.patch", GOOD))
    assert "offset 2 lines" in report


def test_failing_hunk_names_patch_file_and_hunk(tmp_path: Path, tree: Path) -> None:
    patch = make_patch(tmp_path, "0002-bad.patch", BAD_SECOND_HUNK)
    with pytest.raises(PatchError) as info:
        apply_patch(tree, patch)
    error = info.value
    assert "0002-bad.patch" in error.message
    assert "hunk #2 (@@ -10,3 +10,3 @@) of pkg/mod.py" in error.message
    assert error.facts["patch"] == "0002-bad.patch"
    assert error.facts["file"] == "pkg/mod.py"
    assert error.facts["hunk"] == 2
    # the dry run kept the first, good hunk from being applied
    assert (tree / "pkg" / "mod.py").read_text() == ORIGINAL


def test_no_fuzz(tmp_path: Path, tree: Path) -> None:
    # one context line differs: patch would apply this with fuzz 1
    (tree / "pkg" / "mod.py").write_text(ORIGINAL.replace("line 4\n", "line four\n"))
    with pytest.raises(PatchError, match="hunk #1"):
        apply_patch(tree, make_patch(tmp_path, "0001-good.patch", GOOD))


def test_missing_file_and_already_applied(tmp_path: Path, tree: Path) -> None:
    missing = GOOD.replace("pkg/mod.py", "pkg/other.py")
    with pytest.raises(PatchError, match="pkg/other.py is not in the source tree") as info:
        apply_patch(tree, make_patch(tmp_path, "0001-missing.patch", missing))
    assert info.value.facts["file"] == "pkg/other.py"
    patch = make_patch(tmp_path, "0001-good.patch", GOOD)
    apply_patch(tree, patch)
    with pytest.raises(PatchError, match="already holds this change"):
        apply_patch(tree, patch)


def test_series_stops_at_first_failure(tmp_path: Path, tree: Path) -> None:
    series = PatchSeries(
        ProjectName("demo"), Version("1.0"), tmp_path,
        (make_patch(tmp_path, "0001-good.patch", GOOD),
         make_patch(tmp_path, "0002-bad.patch", BAD_SECOND_HUNK.replace("line 3", "line three"))),
    )
    with pytest.raises(PatchError, match="0002-bad.patch"):
        apply_series(tree, series)
    assert "inserted" in (tree / "pkg" / "mod.py").read_text()


@pytest.mark.parametrize("target", ["/etc/passwd", "a/../../escape.py"])
def test_paths_outside_the_tree_are_refused(target: str) -> None:
    diff = f"--- {target}\n+++ {target}\n@@ -1 +1 @@\n-a\n+b\n"
    with pytest.raises(PatchError, match="outside the source tree"):
        parse_diff(diff, strip=0 if target.startswith("/") else 1, name="x.patch")


def test_symlinks_and_empty_diffs_are_refused() -> None:
    with pytest.raises(PatchError, match="symbolic link"):
        parse_diff("diff --git a/l b/l\nnew file mode 120000\n--- /dev/null\n+++ b/l\n")
    with pytest.raises(PatchError, match="no unified diff"):
        parse_diff("just words\n")


def test_parse_diff_and_output() -> None:
    [only] = parse_diff(GOOD)
    assert only.path == "pkg/mod.py"
    assert only.hunks == ("@@ -2,3 +2,3 @@", "@@ -15,4 +15,5 @@")
    outcome = parse_patch_output(
        "checking file pkg/mod.py\nHunk #2 FAILED at 10.\n1 out of 2 hunks FAILED\n"
        "can't find file to patch at input line 20\nThe text leading up to this was:\n"
        "|--- a/pkg/gone.py\n|+++ b/pkg/gone.py\nNo file to patch.  Skipping patch.\n"
    )
    assert not outcome.ok
    assert [(f.file, f.hunk, f.line) for f in outcome.failures] == [("pkg/mod.py", 2, 10)]
    assert outcome.missing == ("pkg/gone.py",)
