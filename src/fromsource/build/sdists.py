"""Serving a release's sdist beside its wheels, with a "mirrored source" attestation.

Clients on a platform the index builds no wheel for (macOS, Windows, musl,
an interpreter not in the matrix) install from the sdist.  The sdist served
is the upstream's own file, the very bytes the fetch step checked against
the upstream sha256 and archived; for a remediated release it is that tree
with the patches applied, repacked reproducibly as ``X.Y.Z+fs.N``
(:mod:`fromsource.build.repack`; a client's build of it says ``X.Y.Z+fs.N``
too, through the wrapper backend the repack puts in when the version is not
pinned in pyproject.toml).  Either way it is published with a signed
statement of what it is (:mod:`fromsource.provenance.source`).

The pipeline calls :func:`publish_sdist` once per build, in its publish
step.  ``serve_sdists`` off (``FROMSOURCE_SERVE_SDISTS=0``) publishes none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from packaging.version import Version

from fromsource.build.context import BuildContext
from fromsource.build.repack import repack_sdist
from fromsource.errors import FromsourceError
from fromsource.indexclient import redact
from fromsource.provenance.source import SourceFacts, source_statement
from fromsource.provenance.statement import PatchInfo, sign_statement
from fromsource.store.blobs import sha256_file
from fromsource.store.db import Database
from fromsource.store.models import BuildRow
from fromsource.store.publish import publish_file

__all__ = ["first_fetched", "publish_sdist"]


def first_fetched(db: Database, project: str, sha256: str) -> datetime | None:
    """When the index first fetched the sdist *sha256* of *project*: the start of the
    earliest build whose facts name it (later builds read it from the blob store)."""
    query = (
        sa.select(BuildRow.started_at, BuildRow.details)
        .where(BuildRow.project == project, BuildRow.started_at.is_not(None))
        .order_by(BuildRow.id)
    )
    with db.session() as session:
        for started, details in session.execute(query):
            sdist = (details or {}).get("sdist")
            if isinstance(sdist, dict) and sdist.get("sha256") == sha256:
                moment: datetime = started
                return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def publish_sdist(
    ctx: BuildContext,
    repo: str,
    archive: Path,
    *,
    project: str,
    version: str,
    upstream_url: str,
    upstream_sha256: str,
    build_id: int,
    work: Path,
    epoch: int,
    patches: Sequence[PatchInfo] = (),
    patch_tree: Callable[[Path], None] | None = None,
) -> str:
    """Publish the sdist of the release *version* of *project* into *repo*; a line for the log.

    *archive* is the upstream sdist as fetched (sha256 *upstream_sha256*,
    from *upstream_url*).  With *patch_tree* (a remediated build, *version*
    ``X.Y.Z+fs.N``) the patched tree is repacked under *work* with mtimes
    *epoch*; otherwise *archive* itself is published.  Publishing the same
    bytes again is a no-op, so every target's build may call this.

    Never raises for what fromsource refuses: the wheel is already
    published and does not depend on its sdist.  An sdist the index cannot
    serve (an old format such as ``.tar.bz2``, a filename or PKG-INFO that
    disagrees with the release, an archive the unpack rules refuse), a
    repack that fails or a store that fails leaves the sdist out, and the
    line says why.
    """
    if not ctx.serve_sdists:
        return "   sdist not published: serve_sdists is off (FROMSOURCE_SERVE_SDISTS=0)"
    try:
        repacked = patch_tree is not None or Version(version).local is not None
        note = ""
        if repacked:
            result = repack_sdist(
                archive,
                work / "sdist-repack",
                project=project,
                version=version,
                epoch=epoch,
                patch_tree=patch_tree,
            )
            path = result.path
            if result.wrapped:
                note = f"; its build backend is wrapped to build {version}"
            elif result.unwrapped is not None:
                note = (
                    f"; a local build from this sdist reports the upstream version (the "
                    f"backend could not be wrapped: {result.unwrapped})"
                )
        else:
            path = archive
        digest, _size = sha256_file(path)
        now = datetime.now(UTC)
        facts = SourceFacts(
            project=project,
            version=version,
            repository=repo,
            upstream_url=redact(upstream_url),
            upstream_sha256=upstream_sha256,
            fetched=first_fetched(ctx.db, project, upstream_sha256) or now,
            published=now,
            invocation_id=f"build-{build_id}",
            patches=tuple(patches) if repacked else (),
            source_date_epoch=epoch if repacked else None,
        )
        envelope = sign_statement(source_statement(path.name, digest, facts), ctx.signing_key)
        published = publish_file(
            ctx.db,
            ctx.blobs,
            path,
            repo,
            provenance=envelope,
            build_id=build_id,
            limits=ctx.output_limits,
        )
    except FromsourceError as exc:
        return f"   sdist not published: {exc.message}"
    what = "repacked with the patches" if repacked else "mirrored source"
    again = "already " if published.already_present else ""
    return f"   {path.name} sha256 {digest} ({what}) {again}published in {repo}{note}"
