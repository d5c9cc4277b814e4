"""The values ``verify`` works with: what was found on disk, what a source offers, what we concluded.

Frozen dataclasses, parsed once at the boundary (``inputs``, the lock
readers of ``fromsource.lockfiles``, ``fetch``) and handed inward to the pure decisions in ``decide``.  Digests
are lower-case hex sha256 throughout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from fromsource.provenance.agreement import Agreement

ArtifactType = Literal["environment", "wheel", "wheels", "pylock", "uv-lock", "requirements"]


class Status(StrEnum):
    """What verify concluded about one package (stable strings: JSON and CSV carry them)."""

    VERIFIED = "verified"
    VERIFIED_REMEDIATED = "verified-remediated"
    NOT_BUILT = "not-built-by-index"
    MODIFIED = "modified-after-install"
    INVALID = "attestation-invalid"
    UPSTREAM = "upstream"
    """Served by the index from its upstream under policy (``python-upstream``), not built
    from source: not verified."""
    REFUSED = "refused-by-index"
    """The index refuses every version of the project (``409 Conflict`` on its page: a
    malware record or a block rule): not verified; the details carry the index's reason."""

    @property
    def is_verified(self) -> bool:
        """Whether this status counts towards coverage."""
        return self in (Status.VERIFIED, Status.VERIFIED_REMEDIATED)


# -- what was found --------------------------------------------------------------------------


@dataclass(frozen=True)
class InstalledFile:
    """One row of an installed RECORD and what is on disk under that path.

    *recorded* is the RECORD digest (None for rows without one); *actual* the
    digest of the file on disk (None when it is missing or unreadable, or was
    not hashed because an installer rule accounts for it).  *variants* holds
    the digests of the file with its rewritten shebang put back to the forms
    a wheel ships (``#!python``), for scripts installed outside site-packages.
    """

    path: str
    recorded: str | None
    actual: str | None
    variants: frozenset[str] = frozenset()


@dataclass(frozen=True)
class InstalledDist:
    """One installed distribution (a ``.dist-info`` or ``.egg-info`` folder).

    *files* maps each RECORD path (as written, relative to site-packages) to
    what was found; it is None when the distribution has no readable RECORD,
    and *problem* then says why.  *tags* are the WHEEL file's tags, *scripts*
    the console and GUI script names from ``entry_points.txt``.
    """

    name: str
    version: str
    dist_info: str
    location: str
    files: Mapping[str, InstalledFile] | None
    tags: tuple[str, ...] = ()
    scripts: frozenset[str] = frozenset()
    problem: str | None = None


@dataclass(frozen=True)
class WheelFile:
    """A wheel file on disk: its name, parsed name/version, sha256 and member digests.

    *members* maps every archive member to the sha256 of its bytes (computed,
    not taken from the wheel's own RECORD).
    """

    filename: str
    location: str
    name: str
    version: str
    sha256: str
    members: Mapping[str, str]


@dataclass(frozen=True)
class LockedPackage:
    """One package pinned by a lock file.

    *version* is None when the entry is not pinned to one version; *hashes*
    are the sha256 digests the lock allows; *allow_local* is True when the
    pin is ``==X.Y.Z`` in a requirements file, which PEP 440 lets a local
    version ``X.Y.Z+fs.N`` satisfy.  *unverifiable* says why an entry cannot
    come from an index at all (a VCS or path source, no hashes, ...).
    """

    name: str
    version: str | None
    hashes: frozenset[str]
    location: str
    allow_local: bool = False
    unverifiable: str | None = None


@dataclass(frozen=True)
class Excluded:
    """A package deliberately left out of the count, with the reason shown to the user."""

    name: str
    version: str | None
    reason: str


# -- what a source offers -------------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    """A wheel (or sdist) a source lists for a project version, before its provenance is fetched.

    *listed_sha256* is the digest the index lists (None offline); *ref* is
    where the source finds the provenance (a URL or a path; None when the
    file has none) or, for a file the index serves from its upstream, the
    file itself.  *served_from* is the ``origin`` of the index's
    ``_fromsource`` mark (``upstream``), *policy_generation* the policy it
    was served under.
    """

    filename: str
    origin: str
    listed_sha256: str | None = None
    repository: str | None = None
    ref: str | None = None
    served_from: str | None = None
    policy_generation: int | None = None


@dataclass(frozen=True)
class Candidate:
    """One attested file a source offers for a project and version.

    *envelope* is the DSSE envelope (bytes) or None when the source lists the
    file without provenance; *listed_sha256* is the digest the index lists
    for the file (None offline); *problem* says why there is no envelope.
    """

    filename: str
    origin: str
    envelope: bytes | None
    listed_sha256: str | None = None
    repository: str | None = None
    problem: str | None = None


# -- what we concluded ----------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """The upstream file an ``upstream`` package is: served by the index under policy."""

    filename: str
    sha256: str
    repository: str
    policy_generation: int | None


@dataclass(frozen=True)
class Provenance:
    """The facts of a verified attestation that a report shows."""

    subject: str
    subject_sha256: str
    repository: str
    build_id: str
    sdist_url: str
    sdist_sha256: str
    keyid: str
    patches: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()
    agreement: Agreement | None = None
    """The independent builds that made the wheel, when more than one had to (issue 17)."""


@dataclass(frozen=True)
class VulnerabilityFinding:
    """A known advisory for a package version.

    *state* is ``affected`` or ``fixed-by-patch`` (an attested patch of this
    build fixes it); *fixed_in* are upstream versions that fix it;
    *remediated_in* are versions on the index whose attested patches fix it.
    """

    id: str
    aliases: tuple[str, ...]
    summary: str
    state: Literal["affected", "fixed-by-patch"]
    fixed_in: tuple[str, ...] = ()
    remediated_in: tuple[str, ...] = ()


@dataclass(frozen=True)
class PackageResult:
    """The verdict on one package, with everything a report prints about it.

    *files* are the files that differ from the attestation (for
    ``modified-after-install``, or for another build's install); *installer_files*
    the installed files accounted for by installer rules; *checked* and
    *matched* count attested files compared and found equal.  *served* names
    the upstream file of an ``upstream`` package.
    """

    name: str
    version: str | None
    status: Status
    details: str
    location: str
    provenance: Provenance | None = None
    files: tuple[str, ...] = ()
    installer_files: tuple[str, ...] = ()
    checked: int = 0
    matched: int = 0
    vulnerabilities: tuple[VulnerabilityFinding, ...] = ()
    served: Served | None = None

    @property
    def coverage(self) -> float:
        """Percentage of this package verified: 100 if verified, else the share of files matching."""
        if self.status.is_verified:
            return 100.0
        if self.status is Status.MODIFIED and self.checked:
            return round(100.0 * self.matched / self.checked, 2)
        return 0.0


@dataclass(frozen=True)
class Report:
    """The result of one ``verify`` run over one artifact.

    *advisories_checked* says whether every package was matched against
    advisories, and *advisories_source* where they came from (an advisories
    folder, or the index's own).
    """

    artifact: str
    artifact_type: ArtifactType
    source: str
    results: tuple[PackageResult, ...]
    trusted_keys: tuple[str, ...] = ()
    excluded: tuple[Excluded, ...] = ()
    warnings: tuple[str, ...] = ()
    advisories_checked: bool = False
    advisories_source: str | None = None

    @property
    def total(self) -> int:
        """Packages counted."""
        return len(self.results)

    @property
    def verified(self) -> int:
        """Packages verified (plain or remediated)."""
        return sum(1 for r in self.results if r.status.is_verified)

    @property
    def coverage(self) -> float:
        """verified / total as a percentage rounded to two places.

        0 when nothing is counted: an empty artifact proves nothing, so no
        gate on the number may pass on it (``nothing_verified`` says why).
        """
        if not self.results:
            return 0.0
        return round(100.0 * self.verified / self.total, 2)

    @property
    def keys_used(self) -> tuple[str, ...]:
        """Ids of the keys that signed the verified packages' attestations, sorted."""
        return tuple(sorted({r.provenance.keyid for r in self.results if r.provenance}))
