"""``fromsource verify PATH``: which packages provably came from this index's builds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console

from fromsource.cli.common import EXIT_FINDINGS, EXIT_OK, handle_errors
from fromsource.dist.names import normalize
from fromsource.errors import VerifyError
from fromsource.indexclient import default_netrc, resolve_credentials
from fromsource.verify.fetch import (
    AttestationSource,
    IndexSource,
    OfflineSource,
    load_keys,
)
from fromsource.verify.report import FORMATS, nothing_verified, render, render_rich
from fromsource.verify.run import Options, verify_artifact
from fromsource.verify.vulns import read_advisories

_HELP = """Verify that the packages in PATH were built from source by a fromsource index.

PATH is a virtualenv, a site-packages folder, a wheel, a folder of wheels, a
pylock.toml, a uv.lock or a requirements.txt with --hash pins.

Trust comes from --index URL (the index root or a /<repo>/simple/ URL; its
published keys unless --keys pins them) or, offline, from --attestations DIR
with --keys FILE.  Credentials: --username/--password, the URL,
FROMSOURCE_USERNAME/FROMSOURCE_PASSWORD, or ~/.netrc ($NETRC); they are sent
to the index's host only.

Known vulnerabilities come from the advisories the index holds (its
/api/advisories), or from --advisories DIR when given.

Exit codes: 0 ok, 1 coverage below --fail-under or nothing to verify in PATH (unless
--allow-empty), 2 usage or operational error.
"""


def _display(path: Path, typed: str) -> str:
    return typed if not path.is_dir() or typed.endswith("/") else typed + "/"


def _source(
    index: str | None, keys_file: Path | None, attestations: Path | None,
    username: str | None, password: str | None, timeout: float,
) -> tuple[AttestationSource, list[str]]:
    if index and attestations:
        raise click.UsageError("use either --index or --attestations, not both")
    if attestations:
        if keys_file is None:
            raise click.UsageError(
                "--attestations needs --keys FILE (a copy of the index's keys.json) to trust"
            )
        return OfflineSource(attestations, load_keys(keys_file)), []
    if not index:
        raise click.UsageError(
            "say where attestations come from: --index URL, or --attestations DIR --keys FILE"
        )
    creds, warnings = resolve_credentials(
        index, username, password, os.environ, default_netrc(os.environ)
    )
    pinned = load_keys(keys_file) if keys_file else None
    return IndexSource(index, creds, pinned, timeout=timeout), warnings


@click.command("verify", help=_HELP, context_settings={"max_content_width": 100})
@click.argument("path", type=click.Path(path_type=str))
@click.option("--index", "index", envvar="FROMSOURCE_INDEX_URL", metavar="URL",
              help="The index: its root URL or a /<repo>/simple/ URL [env FROMSOURCE_INDEX_URL].")
@click.option("--keys", "keys_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Pin the trusted keys: a keys.json file (the index's /.well-known/fromsource/"
              "keys.json).")
@click.option("--attestations", type=click.Path(path_type=Path, file_okay=False),
              help="Offline: a folder of <wheel>.provenance.json or <wheel>.dsse.json files.")
@click.option("--username", help="User name (a token id) for the index.")
@click.option("--password", help="Password (a token secret) for the index.")
@click.option("--advisories", type=click.Path(path_type=Path, file_okay=False),
              help="A folder of OSV advisories (JSON/YAML) to list known vulnerabilities "
              "(default with --index: the advisories the index holds).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--detailed", is_flag=True, help="Show every package with its status and details.")
@click.option("--fail-under", type=click.FloatRange(0, 100), metavar="PCT",
              help="Exit 1 when coverage is below PCT percent.")
@click.option("--allow-empty", is_flag=True,
              help="Exit 0 when PATH holds no package to verify (default: exit 1, so a gate "
              "aimed at the wrong environment fails).")
@click.option("--exclude", multiple=True, metavar="NAME",
              help="Leave a package out of the count (repeatable), e.g. --exclude pip.")
@click.option("--timeout", type=float, default=30.0, show_default=True,
              help="Seconds per HTTP request.")
@click.option("--quiet", "-q", is_flag=True, help="No warnings on stderr.")
@handle_errors
def verify(
    path: str, index: str | None, keys_file: Path | None,
    attestations: Path | None, username: str | None, password: str | None,
    advisories: Path | None, fmt: str, detailed: bool, fail_under: float | None,
    allow_empty: bool, exclude: tuple[str, ...], timeout: float, quiet: bool,
) -> None:
    """Verify PATH and print the report; exit 1 below --fail-under or when nothing was counted."""
    target = Path(path)
    if not target.exists():
        raise VerifyError(f"{path}: no such file or folder")
    source, warnings = _source(index, keys_file, attestations, username, password, timeout)
    try:
        options = Options(
            exclude=frozenset(normalize(n) for n in exclude),
            advisories=read_advisories(advisories) if advisories else None,
            advisories_origin=f"advisories folder {advisories}",
            # Without a folder, the index's own advisories (an offline folder of
            # attestations holds none).
            source_advisories=True,
        )
        report = verify_artifact(target, _display(target, path), source, options)
    finally:
        source.close()
    if not quiet:
        for message in [*warnings, *report.warnings]:
            click.echo(f"warning: {message}", err=True)
    if fmt == "text" and sys.stdout.isatty():
        Console().print(render_rich(report, detailed))
    else:
        click.echo(render(report, fmt, detailed), nl=False)
    empty = nothing_verified(report)
    if empty is not None:
        if allow_empty:
            if not quiet:
                click.echo(f"verify: {empty} (allowed by --allow-empty)", err=True)
            sys.exit(EXIT_OK)
        # Even with --quiet: this exit 1 must never be a mystery.
        click.echo(f"verify: {empty}; check PATH, or pass --allow-empty if an empty "
                   "artifact is expected", err=True)
        sys.exit(EXIT_FINDINGS)
    if fail_under is not None and report.coverage < fail_under:
        if not quiet:
            click.echo(
                f"verify: coverage {report.coverage:.2f}% is below --fail-under {fail_under:g}%",
                err=True,
            )
        # sys.exit, not ctx.exit: the root main() runs click with standalone_mode=False,
        # which turns ctx.exit into a return value that it does not pass on.
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_OK)


__all__ = ["verify"]
