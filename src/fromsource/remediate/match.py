"""Which advisories affect a version: pure PEP 440 matching over OSV data.

OSV semantics (the OSV schema, "Evaluation"): a version is
affected by an ``affected[]`` entry when it is listed in ``versions`` or lies
inside one of its ``ECOSYSTEM`` ranges.  A range's events are sorted by
version (``introduced: "0"`` sorts first) and walked in order: ``introduced``
opens the range at or above its version, ``fixed`` closes it at its version
(exclusive), ``last_affected`` closes it above its version (inclusive);
``limit`` events bound the whole range from above.  Versions compare with
:mod:`packaging`, so pre-releases sort before their release (``2.3.0rc1`` is
below ``introduced: 2.3.0``).

Our remediated versions ``X.Y.Z+fs.N`` are matched as their public part
``X.Y.Z``; the advisories fixed by the patches of that build are then moved
from *affecting* to *fixed*.  ``GIT`` and ``SEMVER`` ranges are ignored (no
PyPI record needs them when it lists ECOSYSTEM ranges or versions).  A range
with an event that is not a PEP 440 version is skipped; the explicit
``versions`` list still applies.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from packaging.version import InvalidVersion, Version

from fromsource.dist.names import normalize
from fromsource.remediate.osv import Advisory, Affected, Range

__all__ = [
    "VersionAdvisories",
    "affected_includes",
    "classify",
    "fixed_by",
    "is_affected",
    "range_includes",
]


@dataclass(frozen=True)
class VersionAdvisories:
    """The advisories about one version of one project.

    *affecting* apply to it; *fixed* apply to its upstream version but are
    fixed by the patches it was built with.  Both are sorted by advisory id.
    """

    project: str
    version: str
    affecting: tuple[Advisory, ...]
    fixed: tuple[Advisory, ...]


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def range_includes(rng: Range, version: Version) -> bool:
    """True when the ECOSYSTEM range *rng* includes *version* (compared by its public part).

    Returns False for other range types and for ranges holding an event that
    is not a PEP 440 version.
    """
    if rng.type != "ECOSYSTEM":
        return False
    v = Version(version.public)
    keyed: list[tuple[tuple[int, Version], str]] = []
    limits: list[Version] = []
    for event in rng.events:
        if event.kind == "introduced" and event.value == "0":
            keyed.append(((0, Version("0")), event.kind))
            continue
        parsed = _version(event.value)
        if parsed is None:
            return False
        if event.kind == "limit":
            limits.append(parsed)
        else:
            keyed.append(((1, parsed), event.kind))
    if limits and not any(v < limit for limit in limits):
        return False
    affected = False
    # sorted() is stable, so events at the same version keep their file order.
    for (_, at), kind in sorted(keyed, key=lambda item: item[0]):
        if kind == "introduced":
            if v >= at:
                affected = True
        elif kind == "fixed":
            if v >= at:
                affected = False
        elif kind == "last_affected" and v > at:
            affected = False
    return affected


def affected_includes(entry: Affected, version: Version) -> bool:
    """True when *version* (its public part) is listed in or ranged by *entry*."""
    public = Version(version.public)
    for listed in entry.versions:
        parsed = _version(listed)
        if parsed is None:
            if listed == version.public:
                return True
        elif parsed == public:
            return True
    return any(range_includes(rng, public) for rng in entry.ranges)


def is_affected(advisory: Advisory, project: str, version: Version | str) -> bool:
    """True when *advisory* affects *project* at *version* (ignoring any patches).

    Withdrawn advisories affect nothing.  Raises InvalidVersion for a
    *version* string that is not PEP 440.
    """
    if advisory.withdrawn:
        return False
    v = version if isinstance(version, Version) else Version(version)
    return any(affected_includes(entry, v) for entry in advisory.for_project(project))


def fixed_by(advisory: Advisory, fixes: Collection[str]) -> bool:
    """True when one of *fixes* names *advisory* (by its id or any alias)."""
    return not advisory.ids.isdisjoint(fixes)


def classify(
    advisories: Iterable[Advisory],
    project: str,
    version: Version | str,
    *,
    fixes: Collection[str] = (),
) -> VersionAdvisories:
    """Split the advisories that affect *project* at *version* into affecting and fixed.

    *fixes* are the ids and aliases the version's patches resolve (for a
    ``+fs.N`` build: the ``fixes`` of its series); an advisory matching any of
    them counts as fixed.  Duplicates (the same id twice) are reported once.
    """
    v = version if isinstance(version, Version) else Version(version)
    affecting: dict[str, Advisory] = {}
    fixed: dict[str, Advisory] = {}
    for advisory in advisories:
        if not is_affected(advisory, project, v):
            continue
        (fixed if fixed_by(advisory, fixes) else affecting).setdefault(advisory.id, advisory)
    return VersionAdvisories(
        project=normalize(project),
        version=str(v),
        affecting=tuple(affecting[k] for k in sorted(affecting)),
        fixed=tuple(fixed[k] for k in sorted(fixed)),
    )
