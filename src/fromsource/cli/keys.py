"""``fromsource keys list|rotate``: the index's attestation signing keys.

Layout (see :mod:`fromsource.provenance.keystore`): ``<data dir>/keys/signing-key.pem``
is the current private key; ``keys/public/*.pem`` are every public key ever
used, all published in ``/.well-known/fromsource/keys.json``.  A rotation
moves the private key to ``keys/retired/`` (0600; destroy it once nothing
needs it), makes a new one, and keeps the old public key published so older
attestations still verify.  After a compromise, ``--withdraw-old`` also moves
the old public key to ``keys/withdrawn/``: every attestation it signed then
stops verifying, which is the point.
"""

from __future__ import annotations

import click

from fromsource.cli.common import handle_errors, print_json, settings_from
from fromsource.provenance.keys import key_id
from fromsource.provenance.keystore import (
    PRIVATE_KEY_FILE,
    load_or_create_signing_key,
    published_keys,
    rotate_signing_key,
)


@click.group(help="List and rotate the keys that sign attestations.")
def keys() -> None:
    pass


@keys.command("list", help="Public keys this index publishes, and which one signs now.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_context
@handle_errors
def list_keys(ctx: click.Context, fmt: str) -> None:
    key_dir = settings_from(ctx).key_dir
    current = (
        load_or_create_signing_key(key_dir).keyid
        if (key_dir / PRIVATE_KEY_FILE).is_file()
        else None
    )
    found = published_keys(key_dir)
    if fmt == "json":
        print_json({"schema_version": 1, "current": current, "published": sorted(found)})
        return
    for kid, public in sorted(found.items()):
        assert key_id(public) == kid
        click.echo(f"{kid}{'  (current)' if kid == current else ''}")


@keys.command(
    "rotate",
    help="Retire the signing key and create a new one; the old public key stays published "
    "so older attestations still verify. Restart servers and workers afterwards.",
)
@click.option(
    "--withdraw-old",
    is_flag=True,
    help="Also stop publishing the old public key (after a compromise: attestations it "
    "signed stop verifying; rebuild what must verify again).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.pass_context
@handle_errors
def rotate(ctx: click.Context, withdraw_old: bool, fmt: str) -> None:
    result = rotate_signing_key(settings_from(ctx).key_dir, withdraw_old=withdraw_old)
    if fmt == "json":
        print_json(result.to_json())
        return
    click.echo(f"retired {result.old_keyid} (private key moved to {result.retired_private})")
    click.echo(f"signing now with {result.new_keyid}")
    if result.withdrawn_public:
        click.echo(f"withdrew the old public key (moved to {result.withdrawn_public})")
    click.echo(
        "restart every server and build worker; destroy the retired private key when "
        "nothing needs it",
        err=True,
    )
