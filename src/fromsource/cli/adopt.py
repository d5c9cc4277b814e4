"""``fromsource adopt PATH --index URL``: build a lock's closure, re-hash it, configure the client.

Thin: the steps are ``build --lock`` (:func:`fromsource.cli.closure.build_locks`),
``lock update-hashes`` (:func:`fromsource.lockfiles.update_files`) and
``setup`` (:func:`fromsource.setup.plan_setup`); the choices between them
are :mod:`fromsource.build.adopt`.  The client's configuration is planned
(and so checked) before anything is built.
"""

from __future__ import annotations

import os
import platform
import sys
from collections import Counter
from pathlib import Path

import click

from fromsource.build.adopt import install_command, lock_files_to_update, setup_target, unserved
from fromsource.build.closure import main_index, same_index
from fromsource.build.coverage import SCHEMA_VERSION
from fromsource.cli.build_options import (
    SandboxOptions,
    closure_options,
    live_progress,
    sandbox_options,
)
from fromsource.cli.closure import BuildOptions, build_locks, print_report
from fromsource.cli.common import (
    EXIT_CODES_HELP,
    EXIT_FINDINGS,
    handle_errors,
    index_root_option,
    print_json,
    settings_from,
)
from fromsource.config import ALL_REPOSITORIES
from fromsource.indexclient import Credentials, default_netrc, redact, resolve_credentials
from fromsource.lockfiles import STATUSES, IndexLookup, Lock, read_lock, update_files
from fromsource.setup import DEFAULT_NAME, SetupRequest, index_spec, locations, plan_setup
from fromsource.setup.files import apply_change, read_text
from fromsource.setup.tomlconf import foreign_sources, named_sources

__all__ = ["adopt"]

_HELP = """Adopt a project: build exactly what its lock file PATH pins, point the lock
and the client at this index, and say how to install.

\b
1. build: every pin of PATH (requirements, uv.lock, poetry.lock, pdm.lock,
   pylock.toml or Pipfile.lock) from its upstream sdist, into python;
2. lock update-hashes: PATH (and the requirements files it includes) pin
   the index's files, from --repo;
3. setup: the client that goes with the format is pointed at --repo, in
   the lock's folder (uv.lock: uv, poetry.lock: poetry, pdm.lock: pdm,
   requirements: pip, the index in the file); pylock.toml holds the index's
   file URLs, and pipenv has no setup: for them only the credentials;
4. prints the install command and what the index cannot serve, and why.

Run it where the index's data lives (the builds are published there);
--index is that index's root URL. Credentials: --username/--password or
FROMSOURCE_USERNAME/FROMSOURCE_PASSWORD (a token that reads --repo); they
go to ~/.netrc or the client's own file, never into the project. See
docs/adopt.md.

"""


def _source_name(lock: Lock, path: Path) -> str:
    """The name the index gets in the client's configuration.

    A poetry.lock names each package's source, and ``poetry lock`` keeps a
    locked version only from a source of that name: the source the lock's
    pins come from keeps its name and gets this index's URL.
    """
    if lock.format != "poetry.lock":
        return DEFAULT_NAME
    main = main_index(lock.packages)
    pyproject = read_text(path.parent / "pyproject.toml") or ""
    names = [n for n, url in named_sources(pyproject, "poetry") if main and same_index(url, main)]
    return names[0] if names else DEFAULT_NAME


@click.command(help=_HELP + EXIT_CODES_HELP + " (1: a build failed or the index lacks a pin)")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@index_root_option
@click.option(
    "--repo",
    type=click.Choice(ALL_REPOSITORIES),
    default="python-all",
    show_default=True,
    help="The repository the client installs from.",
)
@click.option(
    "--remediated",
    is_flag=True,
    help="Move each pin to the highest X.Y.Z+fs.N of its version the index has.",
)
@click.option(
    "--username", envvar="FROMSOURCE_USERNAME", help="Token id [env FROMSOURCE_USERNAME]."
)
@click.option(
    "--password",
    envvar="FROMSOURCE_PASSWORD",
    help="Token secret [env FROMSOURCE_PASSWORD; prefer the variable].",
)
@closure_options
@sandbox_options
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.pass_context
@handle_errors
def adopt(
    ctx: click.Context,
    path: Path,
    index_url: str,
    repo: str,
    remediated: bool,
    username: str | None,
    password: str | None,
    with_build_deps: bool,
    retry_failed: bool,
    jobs: int,
    sandbox: SandboxOptions,
    fmt: str,
    quiet: bool,
) -> None:
    lock = read_lock(path)
    spec = index_spec(index_url, (repo,), _source_name(lock, path))
    credentials = Credentials(username.strip(), password.strip()) if username and password else None
    target = setup_target(lock.format)
    if target == "netrc" and credentials is None:
        raise click.UsageError(
            f"adopting a {lock.format} writes only credentials: pass "
            "--username and --password (or FROMSOURCE_USERNAME/_PASSWORD)"
        )
    request = SetupRequest(
        target=target,
        spec=spec,
        credentials=credentials,
        locations=locations(os.environ, Path.home(), platform.system()),
        project=None if target == "netrc" else path.parent.resolve(),
        requirements=path.resolve() if target == "pip" else None,
        hashes_updated=True,
    )
    plan_setup(request, read_text)  # checked now: a wrong project fails before building

    def say(text: str) -> None:
        if fmt != "json":
            click.echo(text)

    say(f"== 1. build the {len(lock.packages)} pins of {path} ({lock.format})")
    report = build_locks(
        settings_from(ctx),
        [lock],
        BuildOptions(sandbox, jobs, "python", with_build_deps, retry_failed),
        live=live_progress(fmt),
        quiet=quiet,
    )
    if fmt != "json":
        print_report(report, "text")

    say(f"== 2. lock update-hashes from {spec.simple_url(repo)}")
    lookup_credentials, warnings = resolve_credentials(
        index_url, username, password, os.environ, default_netrc(os.environ)
    )
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    constraints = {c.origin for c in lock.constraints} - {p.origin for p in lock.packages}
    files = [Path(f) for f in lock_files_to_update(lock.files, constraints)]
    with IndexLookup(spec.simple_url(repo), lookup_credentials, remediated=remediated) as lookup:
        results = update_files(files, lookup, prefetch=lookup.prefetch)
    counts = Counter(p.status for r in results for p in r.packages)
    for result in results:
        say(f"{result.path} ({result.format}): {'written' if result.changed else 'unchanged'}")
    say(", ".join(f"{counts.get(s, 0)} {s}" for s in STATUSES))

    say(f"== 3. setup {target}")
    plan = plan_setup(request, read_text)  # again: update-hashes may have changed the files
    changes = []
    for change in plan.changes:
        state = (
            ("updated" if change.before is not None else "created")
            if apply_change(change)
            else "unchanged"
        )
        changes.append({"path": str(change.path), "what": change.what, "state": state})
        say(f"{state}: {change.path} ({change.what})")
    pyproject = (
        read_text(path.parent / "pyproject.toml") if target in ("uv", "poetry", "pdm") else None
    )
    notes = [
        *plan.notes,
        *(
            f"pyproject.toml still names the index {name!r} ({redact(url)}); {target} may "
            "take packages from it: remove it to install from this index only"
            for name, url in foreign_sources(pyproject or "", target, spec)
        ),
    ]
    for note in notes:
        say(f"note: {note}")
    if plan.purge:
        say(
            "Purge cached downloads so wheels fetched before are not reused: "
            + "; ".join(plan.purge)
        )

    command = install_command(lock.format, path, Path("."))
    missing = unserved(report, results)
    if fmt == "json":
        print_json(
            {
                "schema_version": SCHEMA_VERSION,
                "lock": str(path),
                "format": lock.format,
                "index": spec.simple_url(repo),
                "coverage": report.to_json(),
                "lock_update": [r.to_json() for r in results],
                "setup": {
                    "client": target,
                    "changes": changes,
                    "notes": notes,
                    "purge": list(plan.purge),
                },
                "install": command,
                "cannot_serve": [u.to_json() for u in missing],
            }
        )
    else:
        click.echo("== 4. install")
        click.echo(f"  {command}")
        if missing:
            click.echo(f"The index cannot serve {len(missing)} pinned package(s):")
            for item in missing:
                click.echo(f"  {item.line()}")
        else:
            click.echo("The index serves every pinned package, built from source.")
    if report.failed or any(u.category == "not-on-index" for u in missing):
        sys.exit(EXIT_FINDINGS)
