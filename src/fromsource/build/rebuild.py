"""Reproducibility checks: build a release again elsewhere and compare bit for bit, per target.

:func:`rebuild_check` builds the wheel one target installs again, from a
different host path, with the build dependencies, the interpreter and the
Rust crates (by digest, from the blob store) its build recorded, and
compares the two wheels bit for bit (without a published wheel, the release
is built twice).  :func:`rebuild_matrix` does
that once per distinct wheel over the build targets (``rebuild --check
[--python V]``): a pure wheel is checked once, an extension wheel once per
interpreter.
"""

from __future__ import annotations

import secrets
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import Tag

from fromsource.build.context import BuildContext
from fromsource.build.deps import ResolvedWheel
from fromsource.build.history import BuildRecord, get_build, latest_succeeded
from fromsource.build.interpreters import running_target
from fromsource.build.matrix import release_targets
from fromsource.build.outcome import BuildOutcome, RebuildReport, compare_wheels
from fromsource.build.pipeline import Progress, build_one
from fromsource.build.relabel import with_local
from fromsource.build.release import pick_version, published_wheel
from fromsource.build.targets import Target, builds_target, uncovered, wheel_tags
from fromsource.build.wheelcache import WheelCache
from fromsource.dist.names import Sha256, normalize
from fromsource.errors import BuildError, DependencyError, FromsourceError, TargetError
from fromsource.provenance.statement import PatchInfo
from fromsource.store.blobs import copy_blob, sha256_file
from fromsource.store.catalog import FileInfo

__all__ = ["rebuild_check", "rebuild_matrix"]


def _recorded_pins(
    ctx: BuildContext, build_id: int | None, details: Mapping[str, object]
) -> list[ResolvedWheel]:
    """The build dependencies build *build_id* recorded, each fetched into the wheel cache.

    Fetched here, before anything is built, so a rebuild that cannot have
    its exact inputs says so at once (and the build then finds them cached).
    """
    recorded = details.get("dependencies")
    if not isinstance(recorded, list):
        raise DependencyError(
            f"build {build_id} recorded no build dependencies, so it cannot be rebuilt with "
            "the same inputs; build the release again to record them",
            category="inputs-unavailable",
            build_id=build_id,
        )
    pins = [ResolvedWheel.from_json(d) for d in recorded]
    cache = WheelCache(ctx.cache_dir / "wheels", ctx.upstream)
    for pin in pins:
        cache.fetch_recorded(pin, ctx.blobs)
    return pins


def _check_recorded_crates(
    ctx: BuildContext, build_id: int | None, details: Mapping[str, object]
) -> None:
    """Every ``.crate`` build *build_id* fetched is still in the blob store.

    The rebuild takes its crates from there only, by digest (crates the sdist
    vendors are in the sdist).  Checked before anything is built; raises
    DependencyError (``inputs-unavailable``) naming the first crate that is gone.
    """
    rust = details.get("rust")
    if not isinstance(rust, dict) or rust.get("crate_origin") != "crate-source":
        return
    for crate in rust.get("crates") or []:
        digest = crate.get("sha256") if isinstance(crate, dict) else None
        if isinstance(digest, str) and not ctx.blobs.exists(Sha256(digest)):
            label = f"{crate.get('name')} {crate.get('version')}"
            raise DependencyError(
                f"crate {label} (sha256 {digest}), which build {build_id} compiled, is no longer "
                "in the blob store, so the build cannot be repeated with the same inputs; put "
                "the .crate back into a crate folder (FROMSOURCE_CRATES) and build the release "
                "again",
                category="inputs-unavailable",
                build_id=build_id,
                crate=crate.get("name"),
                version=crate.get("version"),
            )


def _recorded_target(ctx: BuildContext, record: BuildRecord) -> Target:
    """The interpreter on this host with the target *record* was built for.

    A build from before targets were recorded was built with the running
    interpreter.  Raises TargetError (``inputs-unavailable``) when no
    interpreter here has that target.
    """
    recorded = record.details.get("target")
    if recorded is None:
        return running_target()
    wanted = Target.from_json(recorded)
    for target in (*ctx.build_targets(), running_target()):
        if target.tag == wanted.tag:
            return target
    raise TargetError(
        f"build {record.id} was made with Python {wanted.full_version} ({wanted.tag}), which is "
        "not a build target here; install that interpreter (FROMSOURCE_PYTHONS) to check it",
        category="inputs-unavailable",
        build_id=record.id,
    )


def _reference_build(ctx: BuildContext, info: FileInfo, repo: str) -> BuildRecord | None:
    """The successful build that published *info*, if it was built here."""
    if info.build_id is not None:
        record = get_build(ctx.db, info.build_id)
        if record is not None and record.status == "succeeded":
            return record
    record = latest_succeeded(ctx.db, info.project, info.version, repo)
    wheel = record.details.get("wheel") if record is not None else None
    if isinstance(wheel, dict) and wheel.get("filename") == info.filename:
        return record
    return None


def rebuild_check(
    ctx: BuildContext,
    requirement: str,
    *,
    target: Target | None = None,
    repo: str = "python",
    progress: Progress | None = None,
    patches: Sequence[PatchInfo] = (),
    patch_tree: Callable[[Path], None] | None = None,
    patch_texts: Mapping[str, str] | None = None,
    local_version: str | None = None,
) -> RebuildReport:
    """Build the wheel *target* installs (default: the oldest build target) again from another
    host path and compare it with the reference.

    The reference is that published wheel, rebuilt with exactly the build
    dependencies (the same files by sha256, never another wheel of the same
    name built or published since) and the interpreter its build recorded;
    without one, the release is built twice for *target* (the second time
    with the first build's pins).  Nothing is published.  Raises BuildError
    when a build fails, DependencyError (category ``inputs-unavailable``)
    naming the wheel when a recorded one is gone, TargetError (the same
    category) when the interpreter that built it is not here.
    """
    start = time.monotonic()
    target = target or ctx.build_targets()[0]
    parsed = Requirement(requirement)
    project = normalize(parsed.name)
    version = pick_version(ctx.upstream, parsed, [target.full_version])
    label_version = with_local(version, local_version) if local_version else version
    scratch = ctx.work_root / f"rebuild-check-{secrets.token_hex(4)}"
    outcomes: list[BuildOutcome] = []

    def build(
        pins: Sequence[ResolvedWheel] | None, name: str, with_target: Target
    ) -> tuple[Path, BuildOutcome]:
        # Each build gets its own, differently long host path.
        work = scratch / f"{name}-{secrets.token_hex(8 if name == 'second' else 3)}"
        outcome = build_one(
            ctx,
            f"{project}=={version}",
            repo=repo,
            pinned=pins,
            publish=False,
            work_dir=work,
            wheel_dest=scratch / f"{name}-wheel",
            progress=progress,
            patches=patches,
            patch_tree=patch_tree,
            patch_texts=patch_texts,
            local_version=local_version,
            target=with_target,
        )
        outcomes.append(outcome)
        if outcome.status != "succeeded" or outcome.wheel is None:
            raise BuildError(
                f"rebuild of {project} {version} failed ({outcome.category}): {outcome.message}",
                category=outcome.category,
                build_id=outcome.build_id,
            )
        return scratch / f"{name}-wheel" / outcome.wheel, outcome

    try:
        info = published_wheel(ctx.db, repo, project, label_version, target)
        prior = _reference_build(ctx, info, repo) if info is not None else None
        if prior is not None and info is not None:
            built_with = _recorded_target(ctx, prior)
            reference = scratch / "reference" / info.filename
            reference.parent.mkdir(parents=True, exist_ok=True)
            copy_blob(ctx.blobs, info.sha256, reference)
            pins = _recorded_pins(ctx, prior.id, prior.details)
            _check_recorded_crates(ctx, prior.id, prior.details)
            rebuilt, _ = build(pins, "second", built_with)
            reference_name = f"published {info.filename} (build {prior.id})"
        else:
            built_with = target
            reference, first = build(None, "first", target)
            record = get_build(ctx.db, first.build_id) if first.build_id else None
            pins = _recorded_pins(ctx, first.build_id, record.details if record else {})
            _check_recorded_crates(ctx, first.build_id, record.details if record else {})
            rebuilt, _ = build(pins, "second", target)
            reference_name = f"first build (build {first.build_id})"
        differing, only_ref, only_new = compare_wheels(reference, rebuilt)
        ref_sha, new_sha = sha256_file(reference)[0], sha256_file(rebuilt)[0]
        return RebuildReport(
            project=project,
            version=label_version,
            identical=ref_sha == new_sha,
            reference=reference_name,
            reference_sha256=ref_sha,
            rebuilt_sha256=new_sha,
            differing=tuple(differing),
            only_in_reference=tuple(only_ref),
            only_in_rebuild=tuple(only_new),
            seconds=time.monotonic() - start,
            outcomes=tuple(outcomes),
            target=built_with.tag,
            wheel=reference.name,
        )
    finally:
        if not ctx.keep_work:
            shutil.rmtree(scratch, ignore_errors=True)


def rebuild_matrix(
    ctx: BuildContext,
    requirement: str,
    *,
    pythons: Sequence[str] = (),
    repo: str = "python",
    progress: Progress | None = None,
) -> list[RebuildReport]:
    """:func:`rebuild_check` once per distinct wheel over the build targets (those *pythons*
    names, as the ``build_pythons`` setting names them; default: all), oldest first.

    Published wheels are checked once each, with the target each serves
    first; targets without one are built twice, once per distinct wheel
    (a pure wheel once).  Raises TargetError when *pythons* names no
    target, and what :func:`rebuild_check` raises.
    """
    targets = tuple(t for t in ctx.build_targets() if not pythons or builds_target(t, pythons))
    if not targets:
        raise TargetError(
            f"--python {' '.join(pythons)} names none of the build targets "
            f"({', '.join(t.name for t in ctx.build_targets())}); see fromsource targets"
        )
    parsed = Requirement(requirement)
    project = normalize(parsed.name)
    version = pick_version(ctx.upstream, parsed, [t.full_version for t in targets])
    pinned = f"{project}=={version}"
    try:
        targets = release_targets(ctx, project, version, targets) or targets
    except FromsourceError:
        pass  # the builds say why
    reports: list[RebuildReport] = []
    checked: set[str] = set()
    unpublished: list[Target] = []
    for target in targets:
        info = published_wheel(ctx.db, repo, project, version, target)
        if info is None:
            unpublished.append(target)
        elif info.filename not in checked:
            checked.add(info.filename)
            reports.append(rebuild_check(ctx, pinned, target=target, repo=repo, progress=progress))
    built: list[frozenset[Tag]] = []
    tried: list[Target] = []
    while left := uncovered(unpublished, built, tried):
        report = rebuild_check(ctx, pinned, target=left[0], repo=repo, progress=progress)
        reports.append(report)
        tried.append(left[0])
        if report.wheel:
            built.append(wheel_tags(report.wheel))
    return reports
