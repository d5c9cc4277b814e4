"""The steps that make the backend's wheel final: manylinux repair, the SBOM, the
canonical (normalized) wheel with the SBOM embedded."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from fromsource.build.context import BuildContext
from fromsource.build.crates import CrateSet
from fromsource.build.deps import ResolvedWheel
from fromsource.build.normalize import normalize_wheel
from fromsource.build.repairbox import repair_in_sandbox, system_libraries
from fromsource.build.steps.values import Release, Repaired, Request, Resolved, Sdist, Source, Wheel
from fromsource.build.targets import wheel_kind, wheel_tags
from fromsource.dist.distinfo import check_wheel
from fromsource.provenance.sbom import SBOM_PATH, SbomInput, build_sbom
from fromsource.store.blobs import sha256_file

__all__ = ["describe", "normalize", "repair"]


def repair(ctx: BuildContext, raw: Path, source: Source, resolved: Resolved) -> Repaired:
    """Repair an extension wheel for the lowest manylinux policy its symbols allow.

    auditwheel runs in the build's sandbox (:mod:`fromsource.build.repairbox`);
    a pure wheel is returned as it is.  Where repair is impossible the wheel
    keeps its ``linux_*`` tag and :attr:`Repaired.result` says why.  A
    repaired wheel is held to PEP 427 again (its tags changed).
    """
    if wheel_kind(wheel_tags(raw.name)) == "pure":
        return Repaired(raw, None)
    result = repair_in_sandbox(resolved.env, raw, epoch=source.epoch)
    if result.repaired:
        check_wheel(result.wheel, ctx.output_limits)
    return Repaired(result.wheel, result, system_libraries(result))


def describe(
    release: Release,
    sdist: Sdist,
    source: Source,
    repaired: Repaired,
    deps: Sequence[ResolvedWheel],
    request: Request,
    crates: CrateSet | None = None,
) -> bytes:
    """The CycloneDX SBOM of the (repaired) wheel, grafted libraries and *crates* included."""
    return build_sbom(
        SbomInput(
            project=release.project,
            version=release.label,
            wheel_filename=repaired.wheel.name,
            sdist_url=sdist.url,
            sdist_sha256=sdist.sha256,
            dependencies=tuple(w.dependency() for w in deps),
            patches=request.patches,
            epoch=source.epoch,
            patch_texts=request.patch_texts,
            grafted=repaired.grafted,
            bundled=crates.sbom_components() if crates is not None else (),
        )
    )


def normalize(ctx: BuildContext, raw: Path, source: Source, sbom: bytes, request: Request) -> Wheel:
    """The canonical wheel with the SBOM embedded (copied to *request.wheel_dest* too)."""
    final = normalize_wheel(
        raw,
        request.work / "dist" / "final",
        epoch=source.epoch,
        add_files={SBOM_PATH: sbom},
        limits=ctx.output_limits,
    )
    digest, size = sha256_file(final)
    if request.wheel_dest is not None:
        request.wheel_dest.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(final, request.wheel_dest / final.name)
    return Wheel(final, digest, size)
