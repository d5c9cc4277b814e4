"""``fromsource publish`` and ``yank``: the operator-only path into a repository."""

from __future__ import annotations

from pathlib import Path

import click

from fromsource.bounded import OutputLimits
from fromsource.cli.common import handle_errors, settings_from
from fromsource.config import REPOSITORIES
from fromsource.store.blobs import open_blob_store
from fromsource.store.db import open_database
from fromsource.store.publish import publish_file, set_yanked


@click.command(
    help="Publish WHEEL files into a repository (operators only: the index's promise is "
    "'built here'; the build pipeline publishes its own output)."
)
@click.argument("wheels", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--repo", type=click.Choice(REPOSITORIES), default="python", show_default=True)
@click.option("--attestation", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="DSSE envelope for a single WHEEL.")
@click.option("--sbom", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CycloneDX SBOM for a single WHEEL.")
@click.pass_context
@handle_errors
def publish(
    ctx: click.Context, wheels: tuple[Path, ...], repo: str, attestation: Path | None, sbom: Path | None
) -> None:
    if (attestation or sbom) and len(wheels) != 1:
        raise click.UsageError("--attestation and --sbom go with exactly one WHEEL")
    settings = settings_from(ctx)
    db = open_database(settings.resolved_database_url)
    blobs = open_blob_store(settings.resolved_blob_url)
    for wheel in wheels:
        result = publish_file(
            db,
            blobs,
            wheel,
            repo,
            provenance=attestation.read_bytes() if attestation else None,
            sbom=sbom.read_bytes() if sbom else None,
            limits=OutputLimits.from_settings(settings),
        )
        state = "already published" if result.already_present else "published"
        click.echo(f"{state}: {repo}/{result.filename} sha256={result.sha256}")


@click.command(help="Yank (PEP 592) a published file, or un-yank it with --undo.")
@click.argument("filename")
@click.option("--repo", type=click.Choice(REPOSITORIES), default="python", show_default=True)
@click.option("--reason", default="", help="Shown to installers.")
@click.option("--undo", is_flag=True, help="Un-yank.")
@click.pass_context
@handle_errors
def yank(ctx: click.Context, filename: str, repo: str, reason: str, undo: bool) -> None:
    db = open_database(settings_from(ctx).resolved_database_url)
    set_yanked(db, repo, filename, reason or None, not undo)
    click.echo(f"{'un-yanked' if undo else 'yanked'} {repo}/{filename}")
