"""``fromsource advisories import|list`` and ``fromsource remediate NAME==VER``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from packaging.version import InvalidVersion, Version

from fromsource.cli.common import (
    EXIT_ERROR,
    handle_errors,
    print_json,
    recover_lost_builds,
    settings_from,
)
from fromsource.dist.names import fs_revision, normalize
from fromsource.policy.withdraw import withdraw_malicious
from fromsource.remediate.feed import REMEDIATED_REPO, release_patches
from fromsource.remediate.match import classify
from fromsource.remediate.osv import Advisory, load_advisories
from fromsource.remediate.series import find_series, own_advisories_dir, require_series
from fromsource.remediate.store import advisories_for, import_advisories
from fromsource.store.blobs import open_blob_store
from fromsource.store.catalog import project_files
from fromsource.store.db import open_database

SCHEMA_VERSION = 1


def parse_pin(text: str, *, version_required: bool) -> tuple[str, Version | None]:
    """Split ``NAME`` or ``NAME==VERSION`` into a normalized name and a version.

    Raises click.BadParameter for anything else.
    """
    name, sep, version = text.partition("==")
    if not name.strip() or (sep and not version.strip()) or (version_required and not sep):
        raise click.BadParameter(
            f"{text!r}: expected NAME==VERSION" if version_required
            else f"{text!r}: expected NAME or NAME==VERSION"
        )
    try:
        parsed = Version(version.strip()) if sep else None
    except InvalidVersion as exc:
        raise click.BadParameter(f"{version!r} is not a PEP 440 version") from exc
    return normalize(name.strip()), parsed


@click.group(help="Import OSV advisories and list those that affect a project or version.")
def advisories() -> None:
    pass


@advisories.command(
    "import",
    help="Import OSV records (JSON or YAML; a file, a folder or a zip) into the database. "
    "--shipped also imports the records fromsource ships for its own backports. Malware "
    "records (MAL- ids) take effect as policy at once: files the index built of the versions "
    "they name are withdrawn (yanked with the MAL id) and listed (docs/policy.md).",
)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@click.option("--shipped", is_flag=True, help="Also import fromsource's own OSV records.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
@handle_errors
def import_(ctx: click.Context, paths: tuple[Path, ...], shipped: bool, fmt: str) -> None:
    sources = [*paths, *([own_advisories_dir()] if shipped else [])]
    if not sources:
        raise click.UsageError("give at least one PATH, or --shipped")
    records: list[Advisory] = []
    for path in sources:
        records.extend(load_advisories(path))
    db = open_database(settings_from(ctx).resolved_database_url)
    result = import_advisories(db, records)
    # Built files of releases a MAL- record names are withdrawn now (docs/policy.md).
    withdrawn = withdraw_malicious(db, actor="advisories import")
    if fmt == "json":
        print_json({"schema_version": SCHEMA_VERSION, "records": len(records),
                    **result.to_json(), "withdrawn": withdrawn.to_json()})
    else:
        click.echo(f"{len(records)} records read: {result.added} added, {result.updated} "
                   f"updated, {result.unchanged} unchanged, {len(result.skipped)} skipped "
                   "(no PyPI package)")
        for withdrawal in withdrawn.newly_withdrawn:
            click.echo(withdrawal.line())


def _advisory_json(advisory: Advisory, project: str) -> dict[str, object]:
    return {"id": advisory.id, "aliases": list(advisory.aliases), "summary": advisory.title,
            "fixed_in": list(advisory.fixed_versions(project)),
            "withdrawn": advisory.withdrawn, "modified": advisory.modified}


def _fixes_for(ctx: click.Context, project: str, version: Version) -> tuple[str, ...]:
    """The ids the patches of a ``+fs.N`` build fix: from its provenance, else the series."""
    if fs_revision(version) is None:
        return ()
    settings = settings_from(ctx)
    db = open_database(settings.resolved_database_url)
    files = [f for f in project_files(db, REMEDIATED_REPO, project)
             if Version(f.version) == version]
    if files:
        blobs = open_blob_store(settings.resolved_blob_url)
        patches = release_patches(files, blobs=blobs, series_root=settings.series_root)
    else:
        series = find_series(project, version, root=settings.series_root)
        patches = tuple((p.name, p.fixes) for p in series.patches) if series else ()
    return tuple(i for _name, ids in patches for i in ids)


@advisories.command(
    "list",
    help="List the advisories about NAME, or those that affect NAME==VERSION. For a "
    "remediated X.Y.Z+fs.N version, advisories its patches fix are listed as fixed.",
)
@click.argument("pin")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
@handle_errors
def list_(ctx: click.Context, pin: str, fmt: str) -> None:
    project, version = parse_pin(pin, version_required=False)
    db = open_database(settings_from(ctx).resolved_database_url)
    known = advisories_for(db, project)
    if version is None:
        if fmt == "json":
            print_json({"schema_version": SCHEMA_VERSION, "project": project,
                        "advisories": [_advisory_json(a, project) for a in known]})
            return
        if not known:
            click.echo(f"no advisories imported for {project}", err=True)
        for advisory in known:
            fixed = ", ".join(advisory.fixed_versions(project)) or "-"
            click.echo(f"{advisory.id}  {', '.join(advisory.aliases)}  fixed in {fixed}  "
                       f"{advisory.title}")
        return
    result = classify(known, project, version, fixes=_fixes_for(ctx, project, version))
    if fmt == "json":
        print_json({
            "schema_version": SCHEMA_VERSION, "project": project, "version": str(version),
            "affecting": [_advisory_json(a, project) for a in result.affecting],
            "fixed": [_advisory_json(a, project) for a in result.fixed],
        })
        return
    if not known:
        click.echo(f"no advisories imported for {project}; run 'fromsource advisories "
                   "import' first", err=True)
    for advisory in result.affecting:
        fixed = ", ".join(advisory.fixed_versions(project)) or "-"
        click.echo(f"affected  {advisory.id}  {', '.join(advisory.aliases)}  fixed in {fixed}  "
                   f"{advisory.title}")
    for advisory in result.fixed:
        click.echo(f"fixed     {advisory.id}  {', '.join(advisory.aliases)}  by our patches  "
                   f"{advisory.title}")
    if not result.affecting and not result.fixed and known:
        click.echo(f"{project} {version}: no known advisory applies", err=True)


@click.command(
    help="Build NAME==VERSION with its patch series as VERSION+fs.N and publish it to "
    "python-remediated (N: one more than the highest published, or --revision). "
    "Exit 2 when a patch does not apply or the build fails.",
)
@click.argument("pin")
@click.option("--revision", type=int, help="Build this +fs.N instead of the next one.")
@click.option("--series-root", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Your own folder of patch series, <folder>/<project>/<version>/series.toml "
              "[env FROMSOURCE_SERIES_ROOT; default: the series shipped with fromsource].")
@click.option("--upstream", help="Upstream simple index (default: pip's configured index).")
@click.option("--allow-unsandboxed", is_flag=True,
              help="Build without a sandbox when none can be set up (not for production).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
@handle_errors
def remediate(
    ctx: click.Context, pin: str, revision: int | None, series_root: Path | None,
    upstream: str | None, allow_unsandboxed: bool, fmt: str,
) -> None:
    from fromsource.build.pipeline import BuildContext
    from fromsource.remediate.run import remediate_release

    project, version = parse_pin(pin, version_required=True)
    assert version is not None
    series = require_series(project, version, root=series_root or settings_from(ctx).series_root)
    build_ctx = BuildContext.from_settings(
        settings_from(ctx), upstream=upstream, allow_unsandboxed=allow_unsandboxed
    )
    try:
        recover_lost_builds(build_ctx.db, settings_from(ctx), "remediate")
        outcome = remediate_release(build_ctx, series, revision=revision)
    finally:
        build_ctx.upstream.close()
        build_ctx.db.dispose()
    if fmt == "json":
        print_json({"schema_version": SCHEMA_VERSION, **outcome.to_json()})
    else:
        click.echo(outcome.summary(), err=not outcome.ok)
    if not outcome.ok:
        sys.exit(EXIT_ERROR)
