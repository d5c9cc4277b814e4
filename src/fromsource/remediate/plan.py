"""Planning a remediated build: which ``+fs.N``, which patches, which tree steps.

Pure decisions over values (the published versions are passed in); the
resulting :class:`RemediationPlan` hands the build pipeline the patch
records for the SBOM and provenance, the ``(tree) -> None`` step that
applies the series, and the ``fs.N`` label the built wheel is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from fromsource.dist.names import ProjectName, fs_revision, remediated_version
from fromsource.errors import RemediateError
from fromsource.provenance.statement import PatchInfo
from fromsource.remediate.apply import apply_series
from fromsource.remediate.series import PatchSeries

__all__ = ["RemediationPlan", "next_revision", "plan_remediation"]


def next_revision(published_versions: Iterable[str], base: Version | str) -> int:
    """One more than the highest ``+fs.N`` of *base* among *published_versions* (1 when none).

    Versions that do not parse, belong to another release or carry another
    local label are ignored.
    """
    public = Version(Version(str(base)).public)
    highest = 0
    for text in published_versions:
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        revision = fs_revision(version)
        if revision is not None and Version(version.public) == public:
            highest = max(highest, revision)
    return highest + 1


@dataclass(frozen=True)
class RemediationPlan:
    """One remediated build to make: *series* applied to *upstream*, published as *version*."""

    project: ProjectName
    upstream: Version
    revision: int
    version: Version
    series: PatchSeries

    @property
    def patch_infos(self) -> tuple[PatchInfo, ...]:
        """The patches as the SBOM pedigree and the provenance record them."""
        return tuple(PatchInfo(p.name, p.sha256, p.fixes) for p in self.series.patches)

    @property
    def patch_texts(self) -> dict[str, str]:
        """Each patch's diff by name (embedded in the SBOM pedigree)."""
        return {p.name: p.text for p in self.series.patches}

    @property
    def local_label(self) -> str:
        """The local version label, ``fs.N`` (what the pipeline relabels the wheel with)."""
        return f"fs.{self.revision}"

    @property
    def requirement(self) -> str:
        """``project==upstream``: what the pipeline fetches and builds."""
        return f"{self.project}=={self.upstream}"

    def apply(self, tree: Path) -> None:
        """Apply the series to the unpacked sdist *tree* (the pipeline's ``patch_tree`` step).

        Raises PatchError naming the patch, file and hunk when a hunk fails.
        """
        apply_series(tree, self.series)

    @property
    def tree_step(self) -> Callable[[Path], None]:
        """:meth:`apply` as a ``(tree) -> None`` callable for the pipeline."""
        return self.apply


def plan_remediation(
    series: PatchSeries, published_versions: Iterable[str], *, revision: int | None = None
) -> RemediationPlan:
    """The plan for building *series* as its next revision (or *revision* when given).

    *published_versions* are the versions of the project already in
    ``python-remediated``.  Raises RemediateError when *revision* is below 1
    or already published (published files are immutable).
    """
    versions = list(published_versions)
    upstream = Version(Version(str(series.version)).public)
    if revision is None:
        revision = next_revision(versions, upstream)
    if revision < 1:
        raise RemediateError(f"--revision must be 1 or more, not {revision}", revision=revision)
    target = remediated_version(upstream, revision)
    if any(_equal(v, target) for v in versions):
        raise RemediateError(
            f"{series.project} {target} is already published in python-remediated; published "
            "files are immutable: omit --revision to build the next one",
            project=series.project, version=str(target),
        )
    return RemediationPlan(series.project, upstream, revision, target, series)


def _equal(text: str, version: Version) -> bool:
    try:
        return Version(text) == version
    except InvalidVersion:
        return False
