"""``fromsource setup pip|uv|poetry|pdm|netrc``: point a client at this index."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import click

from fromsource.cli.common import EXIT_CODES_HELP, handle_errors, index_root_option
from fromsource.config import ALL_REPOSITORIES
from fromsource.errors import ConfigError
from fromsource.setup import (
    DEFAULT_NAME,
    TARGETS,
    Credentials,
    SetupRequest,
    index_spec,
    locations,
    plan_setup,
)
from fromsource.setup.files import apply_change, read_text, render_diff

_HELP = """Write the configuration that makes TARGET (pip, uv, poetry, pdm or netrc)
install from this index, show what changed (secrets masked), and print the
commands that purge the client's cache.

Credentials come from --username/--password or FROMSOURCE_USERNAME and
FROMSOURCE_PASSWORD (what `fromsource token create --format env` prints).
Project files never receive a secret: the token goes to ~/.netrc, poetry's
auth.toml or (--global only) pip.conf / pdm's config.toml, each mode 0600.
Running it again with the same options changes nothing.

\b
Examples:
  eval "$(fromsource token create --repo python --repo python-remediated --format env)"
  fromsource setup pip --index https://pkgs.example.com/
  fromsource setup uv --project . --index https://pkgs.example.com/ \\
      --repo python-remediated --repo python
  fromsource setup poetry --project . --index https://pkgs.example.com/ --dry-run

"""


def _credentials(
    username: str | None, password: str | None, none: bool
) -> Credentials | None:
    if none:
        return None
    if username and not password and sys.stdin.isatty():
        password = click.prompt(f"secret of {username}", hide_input=True)
    if not username or not password:
        raise ConfigError(
            "no credentials: pass --username and --password, or set FROMSOURCE_USERNAME and "
            "FROMSOURCE_PASSWORD (eval \"$(fromsource token create ... --format env)\"), "
            "or pass --no-credentials"
        )
    return Credentials(username.strip(), password.strip())


@click.command(help=_HELP + EXIT_CODES_HELP)
@click.argument("target", type=click.Choice(TARGETS))
@index_root_option
@click.option(
    "--repo",
    "repos",
    multiple=True,
    type=click.Choice(ALL_REPOSITORIES),
    help="Repository to use, highest priority first (repeatable) [default: python-all].",
)
@click.option("--username", envvar="FROMSOURCE_USERNAME", help="Token id [env FROMSOURCE_USERNAME].")
@click.option(
    "--password",
    envvar="FROMSOURCE_PASSWORD",
    help="Token secret [env FROMSOURCE_PASSWORD; prefer the variable: options show in `ps`].",
)
@click.option("--no-credentials", is_flag=True, help="Write only the index settings, no token.")
@click.option("--global", "global_", is_flag=True, help="User-level configuration (the default).")
@click.option(
    "--project",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Configure the project in this folder instead (pyproject.toml, requirements.txt).",
)
@click.option(
    "--requirements",
    type=click.Path(dir_okay=False, path_type=Path),
    help="pip --project: the requirements file to edit [default: DIR/requirements.txt].",
)
@click.option("--name", default=DEFAULT_NAME, show_default=True, help="Source/index name in the client's config.")
@click.option("--dry-run", is_flag=True, help="Show the changes (secrets masked) without writing.")
@click.option("--quiet", "-q", is_flag=True, help="Do not print the diffs.")
@handle_errors
def setup(
    target: str,
    index_url: str,
    repos: tuple[str, ...],
    username: str | None,
    password: str | None,
    no_credentials: bool,
    global_: bool,
    project: Path | None,
    requirements: Path | None,
    name: str,
    dry_run: bool,
    quiet: bool,
) -> None:
    if global_ and project is not None:
        raise click.UsageError("pass either --global or --project DIR, not both")
    if requirements is not None and (target != "pip" or project is None):
        raise click.UsageError("--requirements goes with `setup pip --project DIR`")
    spec = index_spec(index_url, repos, name)
    credentials = _credentials(username, password, no_credentials)
    request = SetupRequest(
        target=target,  # type: ignore[arg-type]  # click.Choice(TARGETS) checked it
        spec=spec,
        credentials=credentials,
        locations=locations(os.environ, Path.home(), platform.system()),
        project=project.resolve() if project else None,
        requirements=requirements.resolve() if requirements else None,
    )
    plan = plan_setup(request, read_text)
    secrets = credentials.secrets if credentials else ()
    for change in plan.changes:
        if dry_run:
            state = "would change" if change.changed else "unchanged"
        else:
            state = ("updated" if change.before is not None else "created") if apply_change(
                change
            ) else "unchanged"
        click.echo(f"{state}: {change.path} ({change.what})")
        if change.changed and not quiet:
            click.echo(render_diff(change, secrets), nl=False)
    for note in plan.notes:
        click.echo(f"note: {note}", err=True)
    click.echo("Purge cached downloads so wheels fetched before are not reused:")
    for command in plan.purge:
        click.echo(f"  {command}")
