"""What every command shares: settings from flags, error handling, output helpers."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console

from fromsource.config import Settings
from fromsource.errors import FromsourceError

if TYPE_CHECKING:
    from fromsource.store.db import Database

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
EXIT_CODES_HELP = "Exit codes: 0 ok, 1 findings, 2 usage or operational error."

index_root_option = click.option(
    "--index",
    "index_url",
    envvar="FROMSOURCE_INDEX_URL",
    required=True,
    help="The index server's root URL, e.g. https://pkgs.example.com/ [env FROMSOURCE_INDEX_URL].",
)
"""``--index``: the root URL of the index a command configures clients for (setup, adopt)."""

err = Console(stderr=True)
out = Console()


def settings_from(ctx: click.Context) -> Settings:
    """The Settings the root group built from flags and environment."""
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def handle_errors(func: F) -> F:
    """Turn FromsourceError into a message on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FromsourceError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(EXIT_ERROR)

    return wrapper  # type: ignore[return-value]


def print_json(value: object) -> None:
    """Write *value* as indented JSON to stdout."""
    click.echo(json.dumps(value, indent=2, sort_keys=False, default=str))


def recover_lost_builds(db: Database, settings: Settings, command: str) -> None:
    """Close builds left open by dead processes of this host and remove stale work trees.

    What ``build``, ``worker``, ``serve`` and ``remediate`` do first (see
    :mod:`fromsource.build.lost`); says what it did on stderr.  A failure
    to look is a warning, never a reason not to start.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from fromsource.build.lost import recover

    try:
        done = recover(
            db, settings.work_root, repair=True, closed_by=f"`fromsource {command}` at start"
        )
    except (OSError, SQLAlchemyError) as exc:
        click.echo(
            f"warning: could not look for builds left behind by killed processes "
            f"({type(exc).__name__}: {exc}); `fromsource fsck` reports them",
            err=True,
        )
        return
    if done.changed:
        click.echo(f"fromsource {command}: {done.summary()}", err=True)
