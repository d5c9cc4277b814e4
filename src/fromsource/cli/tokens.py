"""``fromsource token create|list|revoke|delete``: pull and admin tokens."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

import click
from rich.table import Table

from fromsource.cli.common import handle_errors, out, print_json, settings_from
from fromsource.store.db import open_database
from fromsource.store.tokens import (
    create_token,
    delete_token,
    list_tokens,
    parse_lifetime,
    revoke_token,
)


@click.group(help="Create, list and revoke pull tokens (and admin tokens for /api/).")
def token() -> None:
    pass


@token.command("create", help="Create a token and print its id and secret (shown only once).")
@click.option("--org", default="fromsource", show_default=True, help="Org part of the identity id.")
@click.option("--repo", "repos", multiple=True, help="Repository the token may read (repeatable).")
@click.option("--admin", is_flag=True, help="Also allow the management API (/api/).")
@click.option("--expires", default="30d", show_default=True, help="Lifetime: 30d, 12h, 2w (max 365d).")
@click.option("--description", default="", help="Free text shown in listings.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "env"]), default="text", show_default=True)
@click.pass_context
@handle_errors
def create(
    ctx: click.Context,
    org: str,
    repos: tuple[str, ...],
    admin: bool,
    expires: str,
    description: str,
    fmt: str,
) -> None:
    db = open_database(settings_from(ctx).resolved_database_url)
    new = create_token(
        db,
        org=org,
        repos=list(repos),
        admin=admin,
        lifetime=parse_lifetime(expires),
        description=description,
    )
    info = new.info
    if fmt == "json":
        print_json({**info.to_json(datetime.now(UTC)), "secret": new.secret})
    elif fmt == "env":
        click.echo(f"export FROMSOURCE_USERNAME={shlex.quote(info.id)}")
        click.echo(f"export FROMSOURCE_PASSWORD={shlex.quote(new.secret)}")
    else:
        click.echo(f"id:      {info.id}")
        click.echo(f"secret:  {new.secret}")
        click.echo(f"repos:   {', '.join(info.repos) or '-'}{' (admin)' if info.admin else ''}")
        click.echo(f"expires: {info.expires_at.isoformat()}")
        click.echo(
            "In URLs write the id with '_' for '/' (pip), e.g. "
            f"http://{info.id.replace('/', '_')}:<secret>@HOST/python/simple/",
            err=True,
        )


@token.command("list", help="List tokens (never their secrets).")
@click.option("--state", type=click.Choice(["active", "expired", "revoked"]), help="Only this state.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
@handle_errors
def list_(ctx: click.Context, state: str | None, fmt: str) -> None:
    db = open_database(settings_from(ctx).resolved_database_url)
    now = datetime.now(UTC)
    tokens = list_tokens(db, state=state, now=now)
    if fmt == "json":
        print_json({"schema_version": 1, "tokens": [t.to_json(now) for t in tokens]})
        return
    table = Table("id", "repos", "admin", "state", "expires", "description")
    for t in tokens:
        table.add_row(
            t.id, ",".join(t.repos), "yes" if t.admin else "", t.state(now),
            t.expires_at.date().isoformat(), t.description,
        )
    out.print(table)


@token.command("revoke", help="Revoke a token; it stops working at once on every replica.")
@click.argument("token_id")
@click.pass_context
@handle_errors
def revoke(ctx: click.Context, token_id: str) -> None:
    db = open_database(settings_from(ctx).resolved_database_url)
    info = revoke_token(db, token_id)
    click.echo(f"revoked {info.id}")


@token.command("delete", help="Remove a token record (expired and revoked tokens stay listed until then).")
@click.argument("token_id")
@click.pass_context
@handle_errors
def delete(ctx: click.Context, token_id: str) -> None:
    db = open_database(settings_from(ctx).resolved_database_url)
    delete_token(db, token_id)
    click.echo(f"deleted {token_id}")
