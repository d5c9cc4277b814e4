"""``remediate NAME==VER``: build a patch series through the pipeline into python-remediated.

The one I/O entry point of remediation: reads what is published, plans the
next ``+fs.N`` (:mod:`fromsource.remediate.plan`) and hands the build to
:func:`fromsource.build.matrix.build_release` (every build target, once per
distinct wheel) with ``repo="python-remediated"``,
the series as the ``patch_tree`` step, the patches (name, sha256, fixes) for
the SBOM pedigree and the provenance, and ``fs.N`` as the local label the
built wheel receives.
"""

from __future__ import annotations

from dataclasses import dataclass

from fromsource.build.matrix import build_release, overall
from fromsource.build.outcome import BuildOutcome
from fromsource.build.pipeline import BuildContext, Progress
from fromsource.remediate.feed import REMEDIATED_REPO
from fromsource.remediate.plan import RemediationPlan, plan_remediation
from fromsource.remediate.series import PatchSeries
from fromsource.store.catalog import project_files

__all__ = ["RemediationOutcome", "remediate_release"]


@dataclass(frozen=True)
class RemediationOutcome:
    """The plan that was built and what the pipeline made of it: *builds* one per
    distinct wheel, *build* all of them folded into one."""

    plan: RemediationPlan
    build: BuildOutcome
    builds: tuple[BuildOutcome, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the remediated wheel is published (now or before)."""
        return self.build.status in ("succeeded", "skipped")

    def to_json(self) -> dict[str, object]:
        """A JSON-ready mapping with stable keys."""
        return {
            "project": self.plan.project,
            "upstream_version": str(self.plan.upstream),
            "version": str(self.plan.version),
            "revision": self.plan.revision,
            "repository": REMEDIATED_REPO,
            "patches": [
                {"name": p.name, "sha256": p.sha256, "fixes": list(p.fixes)}
                for p in self.plan.patch_infos
            ],
            "build": self.build.to_json(),
        }

    def summary(self) -> str:
        """One line for people: what was built and what it fixes, or why it failed."""
        fixes = ", ".join(self.plan.series.fixes)
        if self.ok:
            return (f"{self.plan.project} {self.plan.version}: {self.build.status}, "
                    f"{self.build.wheel or ''} in {REMEDIATED_REPO}; fixes {fixes}")
        return (f"{self.plan.project} {self.plan.version}: failed "
                f"({self.build.category}): {self.build.message}")


def remediate_release(
    ctx: BuildContext,
    series: PatchSeries,
    *,
    revision: int | None = None,
    progress: Progress | None = None,
) -> RemediationOutcome:
    """Build *series* as ``VER+fs.N`` and publish it to python-remediated.

    N is *revision*, or one more than the highest published.  Raises
    RemediateError when that revision is already published; a failed build
    (a hunk that does not apply: category ``patch-failed``) is reported in
    the outcome, not raised.
    """
    published = [f.version for f in project_files(ctx.db, REMEDIATED_REPO, series.project)]
    plan = plan_remediation(series, published, revision=revision)
    outcomes = build_release(
        ctx,
        plan.requirement,
        repo=REMEDIATED_REPO,
        patches=plan.patch_infos,
        patch_tree=plan.tree_step,
        local_version=plan.local_label,
        progress=progress,
    )
    return RemediationOutcome(plan, overall(outcomes), outcomes)
