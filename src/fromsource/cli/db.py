"""``fromsource db upgrade|current``: database migrations for operators."""

from __future__ import annotations

import click

from fromsource.cli.common import handle_errors, settings_from
from fromsource.store.db import open_database


@click.group(help="Database maintenance.")
def db() -> None:
    pass


@db.command(help="Apply every pending migration (safe to run on every deploy).")
@click.pass_context
@handle_errors
def upgrade(ctx: click.Context) -> None:
    url = settings_from(ctx).resolved_database_url
    database = open_database(url)
    try:
        click.echo(f"database is at the newest schema (generation {database.generation()})")
    finally:
        database.dispose()
