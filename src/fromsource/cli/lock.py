"""``fromsource lock update-hashes``: make hash-pinned projects install the index's rebuilt files."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import click

from fromsource.cli.common import EXIT_FINDINGS, EXIT_OK, handle_errors, print_json
from fromsource.indexclient import default_netrc, resolve_credentials
from fromsource.lockfiles import STATUSES, FileResult, IndexLookup, update_files

SCHEMA_VERSION = 1

_LABELS = {
    "updated": "updated",
    "already-ours": "already ours",
    "missing": "NOT ON INDEX",
    "skipped": "skipped",
}

UPDATE_HELP = """Rewrite the hashes in lock files so that they pin the index's rebuilt files.

PATH is a hashed requirements file (pip-tools, uv pip compile), uv.lock,
poetry.lock, pdm.lock, pylock.toml or Pipfile.lock (by name, else by content).
Multi-hash formats (requirements, poetry.lock, Pipfile.lock) get the index's
sha256 added (or swapped in with --replace); single-hash formats (uv.lock,
pdm.lock, pylock.toml) get their files, hashes and URLs replaced.  With
--remediated, each pin moves to the highest X.Y.Z+fs.N of its version where
the index has one.  Everything else in the file stays as it was; each file
is written atomically.  See docs/lock.md.

Credentials: --username/--password, the --index URL, FROMSOURCE_USERNAME/
FROMSOURCE_PASSWORD, or ~/.netrc; they are sent to the index's host only and
never written into a lock file.

Exit codes: 0 every pinned package updated or already ours; 1 some package is
not on the index (left unchanged; 0 with --allow-missing); 2 usage, I/O or
index error (nothing written).
"""


@click.group(help="Lock files: make hash-pinned projects install from this index.")
def lock() -> None:
    pass


@lock.command("update-hashes", help=UPDATE_HELP)
@click.argument("paths", nargs=-1, required=True, metavar="PATH...",
                type=click.Path(path_type=Path, dir_okay=False))
@click.option("--index", "index_url", required=True, envvar="FROMSOURCE_INDEX_URL",
              help="The index: https://index.example.invalid/ (the python repository, python-all with "
              "--remediated) or https://index.example.invalid/<repo>/simple/ [env FROMSOURCE_INDEX_URL].")
@click.option("--remediated", is_flag=True,
              help="Pin the highest X.Y.Z+fs.N of each version where the index has one.")
@click.option("--replace", is_flag=True,
              help="Multi-hash formats: drop the existing hashes instead of adding to them.")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.option("--allow-missing", is_flag=True,
              help="Exit 0 even when some pinned packages are not on the index.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--username", help="User name (token id) for the index.")
@click.option("--password", help="Password (token secret) for the index.")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Seconds to wait for each index request.")
@handle_errors
def update_hashes(
    paths: tuple[Path, ...],
    index_url: str,
    remediated: bool,
    replace: bool,
    dry_run: bool,
    allow_missing: bool,
    fmt: str,
    username: str | None,
    password: str | None,
    timeout: float,
) -> None:
    credentials, warnings = resolve_credentials(index_url, username, password, os.environ,
                                                default_netrc(os.environ))
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    with IndexLookup(index_url, credentials, remediated=remediated, timeout=timeout) as lookup:
        results = update_files(list(paths), lookup, replace=replace, dry_run=dry_run,
                               prefetch=lookup.prefetch)
        index = lookup.index_url
    counts = Counter(p.status for r in results for p in r.packages)
    if fmt == "json":
        print_json({
            "schema_version": SCHEMA_VERSION,
            "index": index,
            "remediated": remediated,
            "replace": replace,
            "dry_run": dry_run,
            "files": [r.to_json() for r in results],
            "summary": {status: counts.get(status, 0) for status in STATUSES},
        })
    else:
        _print_text(results, dry_run)
        click.echo(", ".join(f"{counts.get(s, 0)} {_LABELS[s].lower()}" for s in STATUSES))
    if counts.get("missing") and not allow_missing:
        click.echo(f"{counts['missing']} pinned package(s) are not on {index} and were left "
                   "unchanged; build them, or pass --allow-missing to accept that",
                   err=True)
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_OK)


def _print_text(results: list[FileResult], dry_run: bool) -> None:
    for result in results:
        state = ("would change (dry run)" if dry_run else "written") if result.changed \
            else "unchanged"
        click.echo(f"{result.path} ({result.format}): {state}")
        for p in result.packages:
            pin = f"{p.name}=={p.version}" if p.version else p.name
            if p.new_version:
                pin += f" -> {p.new_version}"
            click.echo(f"  {_LABELS[p.status]:<13} {pin}  {p.detail}")
        for note in result.notes:
            click.echo(f"  note: {note}")

