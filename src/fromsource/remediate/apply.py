"""Applying a patch series to an unpacked sdist tree with GNU ``patch``.

Every patch is first run with ``--dry-run``; only when every hunk of it
applies is it applied for real, so a failing patch never leaves half its
hunks behind.  Hunks must match their context exactly (``--fuzz=0``); they
may move (an offset), which patch reports and we accept.  Reversed or
already-applied patches are refused (``--forward``), no backup or reject
files are written.  On failure :class:`PatchError` names the patch, the file
and the hunk (its ``@@`` header), with the facts as attributes.

Patches earlier in the series stay applied when a later one fails: the tree
is a throwaway work folder and the build stops.

Pure parsing of diffs and of patch's report is kept apart from the one
function that runs the program.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from fromsource.errors import PatchError
from fromsource.remediate.series import PatchSeries, SeriesPatch

__all__ = [
    "DiffFile",
    "HunkFailure",
    "PatchOutcome",
    "apply_patch",
    "apply_series",
    "parse_diff",
    "parse_patch_output",
]

PATCH_TIMEOUT_SECONDS = 120
_HUNK_FAILED = re.compile(r"^Hunk #(\d+) FAILED at (\d+)")
_FILE_LINE = re.compile(r"^(?:checking|patching) file (.+)$")
_HUNK_HEADER = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")


@dataclass(frozen=True)
class DiffFile:
    """One file section of a unified diff: its target path (after strip) and hunk headers."""

    path: str
    hunks: tuple[str, ...]


@dataclass(frozen=True)
class HunkFailure:
    """A hunk patch could not apply: the file, the hunk's number (1-based) and line."""

    file: str
    hunk: int
    line: int


@dataclass(frozen=True)
class PatchOutcome:
    """What patch reported: failed hunks, files it could not find, files already patched."""

    failures: tuple[HunkFailure, ...]
    missing: tuple[str, ...]
    reversed: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when every hunk applied."""
        return not (self.failures or self.missing or self.reversed)


def _strip_path(raw: str, strip: int) -> str:
    name = raw.split("\t", 1)[0].strip()
    parts = name.split("/")
    return "/".join(parts[strip:]) if len(parts) > strip else name


def parse_diff(text: str, *, strip: int = 1, name: str = "<patch>") -> tuple[DiffFile, ...]:
    """The files and hunk headers of the unified diff *text*, paths after stripping *strip* parts.

    Raises PatchError (naming *name*) when the diff holds no file section, a
    target path is absolute or climbs out with ``..``, or it would create a
    symbolic link.
    """
    files: list[DiffFile] = []
    old: str | None = None
    current: str | None = None
    hunks: list[str] = []
    for line in text.splitlines():
        if line.startswith(("new file mode 120000", "new mode 120000")):
            raise PatchError(f"{name}: creates a symbolic link; patches may only change "
                             "regular files", patch=name)
        if line.startswith("--- "):
            old = line[4:]
        elif line.startswith("+++ ") and old is not None:
            if current is not None:
                files.append(DiffFile(current, tuple(hunks)))
            target = line[4:] if not line[4:].startswith("/dev/null") else old
            current, hunks, old = _strip_path(target, strip), [], None
            pure = PurePosixPath(current)
            if pure.is_absolute() or ".." in pure.parts or not current:
                raise PatchError(
                    f"{name}: targets {current!r}, outside the source tree; patch paths "
                    "must be relative to the sdist root", patch=name, file=current,
                )
        elif current is not None and _HUNK_HEADER.match(line):
            hunks.append(line)
    if current is not None:
        files.append(DiffFile(current, tuple(hunks)))
    if not files:
        raise PatchError(f"{name}: holds no unified diff ('--- ' / '+++ ' headers)", patch=name)
    return tuple(files)


def parse_patch_output(output: str, *, strip: int = 1) -> PatchOutcome:
    """Read GNU patch's report (run with ``LC_ALL=C``) into failures, missing and reversed files."""
    failures: list[HunkFailure] = []
    missing: list[str] = []
    reversed_files: list[str] = []
    current = ""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if m := _FILE_LINE.match(line):
            current = m.group(1)
        elif m := _HUNK_FAILED.match(line):
            failures.append(HunkFailure(current, int(m.group(1)), int(m.group(2))))
        elif line.startswith("Reversed (or previously applied) patch detected"):
            reversed_files.append(current)
        elif line.startswith("can't find file to patch"):
            target = next(
                (nxt[5:] for nxt in lines[i + 1:] if nxt.startswith("|+++ ")), "?"
            )
            missing.append(_strip_path(target, strip))
    return PatchOutcome(tuple(failures), tuple(missing), tuple(reversed_files))


def _hunk_header(files: tuple[DiffFile, ...], path: str, number: int) -> str:
    for diff_file in files:
        if diff_file.path == path and 0 < number <= len(diff_file.hunks):
            return diff_file.hunks[number - 1]
    return "?"


def _error(patch: SeriesPatch, outcome: PatchOutcome, files: tuple[DiffFile, ...]) -> PatchError:
    if outcome.failures:
        first = outcome.failures[0]
        header = _hunk_header(files, first.file, first.hunk)
        more = f" ({len(outcome.failures) - 1} more hunks failed too)" if len(
            outcome.failures) > 1 else ""
        return PatchError(
            f"{patch.name}: hunk #{first.hunk} ({header}) of {first.file} does not apply "
            f"(expected near line {first.line}){more}; the source differs from what the "
            "patch was written against: rebase the patch on this sdist",
            patch=patch.name, file=first.file, hunk=first.hunk, line=first.line, header=header,
            failures=[[f.file, f.hunk, f.line] for f in outcome.failures],
        )
    if outcome.missing:
        path = outcome.missing[0]
        return PatchError(
            f"{patch.name}: {path} is not in the source tree; check the patch's paths "
            f"and its strip level ({patch.strip})", patch=patch.name, file=path, hunk=None,
        )
    path = outcome.reversed[0] if outcome.reversed else "?"
    return PatchError(
        f"{patch.name}: {path} already holds this change (the patch looks reversed or "
        "applied before); drop it from the series for this version",
        patch=patch.name, file=path, hunk=None,
    )


def _run_patch(tree: Path, patch: SeriesPatch, *, dry_run: bool) -> tuple[int, str]:
    program = shutil.which("patch")
    if program is None:
        raise PatchError(
            "GNU patch is not installed; install it (Debian/Ubuntu package 'patch') to "
            "build remediated versions", patch=patch.name,
        )
    args = [
        program, "--batch", "--forward", "--fuzz=0", f"--strip={patch.strip}",
        "--no-backup-if-mismatch", "--reject-file=-", "--quoting-style=literal",
        "--directory", str(tree), "--input", str(patch.path.resolve()),
    ]
    if dry_run:
        args.append("--dry-run")
    # The C locale keeps patch's report in the English our parser reads.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            args, capture_output=True, text=True, env=env, timeout=PATCH_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise PatchError(f"{patch.name}: patch ran longer than {PATCH_TIMEOUT_SECONDS} s",
                         patch=patch.name) from exc
    return proc.returncode, proc.stdout + proc.stderr


def apply_patch(tree: Path, patch: SeriesPatch) -> str:
    """Apply *patch* to the source *tree*: dry run first, then for real.

    Returns patch's report (offsets show there).  Raises PatchError naming
    the patch, the file and the hunk when any hunk does not apply exactly;
    the tree is then unchanged by this patch.
    """
    try:
        return _apply(tree, patch)
    except PatchError as exc:
        # The build pipeline files the failure under this category.
        exc.facts.setdefault("category", "patch-failed")
        raise


def _apply(tree: Path, patch: SeriesPatch) -> str:
    files = parse_diff(patch.text, strip=patch.strip, name=patch.name)
    for dry_run in (True, False):
        code, output = _run_patch(tree, patch, dry_run=dry_run)
        outcome = parse_patch_output(output, strip=patch.strip)
        if code != 0 or not outcome.ok:
            if outcome.ok:
                raise PatchError(
                    f"{patch.name}: patch failed (exit {code}): {output.strip()[-400:]}",
                    patch=patch.name, file=None, hunk=None,
                )
            raise _error(patch, outcome, files)
    return output


def apply_series(tree: Path, series: PatchSeries) -> list[str]:
    """Apply every patch of *series* to *tree* in order; returns patch's reports.

    Raises PatchError on the first patch that does not apply (earlier ones
    stay applied).
    """
    return [apply_patch(tree, patch) for patch in series.patches]
