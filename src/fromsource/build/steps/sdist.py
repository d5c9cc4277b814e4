"""The steps that make the source tree: fetch the sdist, unpack it, patch it, read its
``[build-system]``."""

from __future__ import annotations

import shutil
from pathlib import Path

from packaging.version import Version

from fromsource.build.context import BuildContext
from fromsource.build.pep517 import BuildSystem, read_build_system
from fromsource.build.release import find_sdist
from fromsource.build.steps.values import Release, Request, Sdist, Source
from fromsource.build.unpack import read_pkg_info, unpack_sdist
from fromsource.dist.names import normalize as normalize_name
from fromsource.errors import BuildError, HashMismatchError, UpstreamError
from fromsource.indexclient import redact
from fromsource.store.blobs import sha256_file

__all__ = ["fetch", "patch", "read_system", "unpack"]


def fetch(ctx: BuildContext, release: Release, work: Path) -> Sdist:
    """The release's sdist in ``work/sdist``: from the blob store, else downloaded and archived.

    Raises UpstreamError (``no-sdist`` also when the page lists no sha256 to check),
    HashMismatchError when the archived copy is not the sha256 the page lists.
    """
    sdist = find_sdist(ctx.upstream, release.project, release.version)
    if sdist.sha256 is None:
        raise UpstreamError(
            f"{sdist.filename}: the upstream index lists no sha256; "
            "it cannot be checked, the build was refused",
            category="no-sdist",
        )
    local = ctx.blobs.local_path(sdist.sha256)
    (work / "sdist").mkdir(parents=True, exist_ok=True)
    if local is not None:
        archive = work / "sdist" / sdist.filename
        shutil.copyfile(local, archive)
        # The blob store is shared: a build that must agree with another (issue 17) may
        # not take the other builder's word for the sdist; neither does any other build.
        if (found := sha256_file(archive)[0]) != sdist.sha256:
            raise HashMismatchError(
                f"{sdist.filename}: the archived copy in the blob store has sha256 {found}, "
                f"not {sdist.sha256} as the upstream index lists; the build was refused "
                "(fromsource fsck checks the store)",
                category="hash-mismatch",
            )
    else:
        archive = ctx.upstream.download(sdist, work / "sdist")
        ctx.blobs.put_file(archive, expected=sdist.sha256)
    return Sdist(sdist.filename, redact(sdist.url), sdist.sha256, archive, local is not None)


def unpack(release: Release, sdist: Sdist, work: Path) -> Source:
    """Unpack *sdist* into ``work/build/src``; its PKG-INFO must name *release*."""
    unpacked = unpack_sdist(sdist.archive, work / "build" / "src")
    info = read_pkg_info(unpacked.root)
    if normalize_name(info.name) != release.project or info.version != Version(release.version):
        raise BuildError(
            f"{sdist.filename}: PKG-INFO says {info.name} {info.version}, not "
            f"{release.project} {release.version}; nothing was built",
            category="sdist-mismatch",
        )
    return Source(unpacked.root, unpacked.epoch)


def patch(source: Source, request: Request) -> Source:
    """Apply the request's patch series to the tree (nothing for an unpatched build)."""
    if request.patch_tree is not None:
        request.patch_tree(source.tree)
    return source


def read_system(source: Source) -> BuildSystem:
    """The tree's ``[build-system]`` (PEP 517/518 defaults when undeclared)."""
    return read_build_system(source.tree)
