"""``fromsource targets``: the interpreters this host can build for, and which the index builds."""

from __future__ import annotations

import sys

import click

from fromsource.build.interpreters import Discovery, discover_targets
from fromsource.build.targets import builds_target
from fromsource.cli.common import EXIT_ERROR, EXIT_OK, handle_errors, print_json, settings_from


def render_text(found: Discovery, wanted: list[str]) -> list[str]:
    """One aligned line per target (version, ABI, platform, glibc, built, path)."""
    rows = [("version", "abi", "platform", "glibc", "built", "interpreter")]
    rows += [
        (
            t.full_version,
            t.abi_tag,
            t.platform_tag,
            t.glibc or "-",
            "yes" if builds_target(t, wanted) else "no",
            t.interpreter,
        )
        for t in found.targets
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]) for r in rows
    ]


@click.command(
    help="List this host's build targets: every CPython >= 3.9 found without downloading "
    "anything (the --python entries, else the interpreter fromsource runs on, python3.X on PATH "
    "and pyenv's versions folder), each probed for its version, ABI, platform and glibc, and "
    "whether the index builds it (the build_pythons setting, FROMSOURCE_BUILD_PYTHONS; default "
    "every one found except free-threaded builds). Interpreters that cannot be used are listed "
    "on stderr (text) or under 'skipped' (JSON) with the reason.\n\n"
    "Exit codes: 0 ok, 2 no target found, or a --python entry gave none."
)
@click.option(
    "--python",
    "pythons",
    multiple=True,
    metavar="VERSION|PATH",
    help="Use only these interpreters: a version (3.12, 3.13t), a command name or a path; "
    "repeatable [env FROMSOURCE_PYTHONS, comma-separated].",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_context
@handle_errors
def targets(ctx: click.Context, pythons: tuple[str, ...], fmt: str) -> None:
    settings = settings_from(ctx)
    found = discover_targets(list(pythons) or settings.pythons)
    wanted = settings.build_pythons
    if fmt == "json":
        print_json(
            {
                "schema_version": 1,
                "targets": [
                    {**t.to_json(), "built": builds_target(t, wanted)} for t in found.targets
                ],
                "skipped": [s.to_json() for s in found.skipped],
                "unresolved": list(found.unresolved),
            }
        )
    else:
        if found.targets:
            for line in render_text(found, wanted):
                click.echo(line)
        for skipped in found.skipped:
            click.echo(f"skipped {skipped.candidate}: {skipped.reason}", err=True)
    if found.unresolved:
        click.echo(
            f"error: no target for {', '.join(found.unresolved)} (see why under skipped); "
            "fix or drop those --python entries",
            err=True,
        )
        sys.exit(EXIT_ERROR)
    if not found.targets:
        click.echo(
            "error: no CPython >= 3.9 found; install one (pyenv install 3.12) or name it "
            "with --python PATH",
            err=True,
        )
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_OK)
