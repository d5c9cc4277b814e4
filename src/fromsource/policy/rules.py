"""Policy rules as values: what a rule says, which purl it names, which versions it covers.

Pure: parsing a purl, matching a rule against a project and version.  A
rule is one of

- ``block``: ``pkg:pypi/NAME`` (every version), ``pkg:pypi/NAME@VERSION`` or
  ``pkg:pypi/NAME`` with a PEP 440 specifier (``<2``, ``>=1.4,!=1.5``);
- ``allow``: the same subjects; a deliberate exception that wins over block,
  malware and cooldown, and always carries a reason;
- ``cooldown``: ``pkg:pypi/NAME[...]`` or ``pkg:pypi/*`` (the default) with a
  number of days a release must have been public before it is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from packageurl import PackageURL
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from fromsource.dist.names import normalize
from fromsource.errors import PolicyError

__all__ = [
    "ANY_PROJECT",
    "DEFAULT_COOLDOWN_DAYS",
    "KINDS",
    "Rule",
    "RuleKind",
    "Subject",
    "parse_purl",
    "purl_of",
    "version_spec",
]

RuleKind = Literal["block", "allow", "cooldown"]
KINDS: tuple[RuleKind, ...] = ("block", "allow", "cooldown")

DEFAULT_COOLDOWN_DAYS = 7
"""How long an upstream release must have been public before it is used, unless a rule says."""

ANY_PROJECT = "*"
"""The project of a rule about every project (``pkg:pypi/*``: the default cooldown)."""

_NAME = re.compile(r"^([a-z0-9]|[a-z0-9][a-z0-9._-]*[a-z0-9])$", re.IGNORECASE)  # PEP 508


@dataclass(frozen=True)
class Subject:
    """What a purl names: a normalized project (or ``*``) and, optionally, one version."""

    project: str
    version: str | None = None


def parse_purl(text: str) -> Subject:
    """Parse ``pkg:pypi/NAME``, ``pkg:pypi/NAME@VERSION`` or ``pkg:pypi/*``.

    The name is PEP 503 normalized.  Raises PolicyError for anything that is
    not a purl of type ``pypi`` without qualifiers or subpath.
    """
    stripped = text.strip()
    if stripped == f"pkg:pypi/{ANY_PROJECT}":
        return Subject(ANY_PROJECT)
    try:
        purl = PackageURL.from_string(stripped)
    except ValueError as exc:
        raise PolicyError(
            f"{text!r} is not a package URL such as pkg:pypi/requests or "
            f"pkg:pypi/requests@2.31.0 ({exc})",
            purl=text,
        ) from exc
    if purl.type != "pypi" or purl.namespace or purl.qualifiers or purl.subpath:
        raise PolicyError(
            f"{text!r}: policy rules name PyPI packages as pkg:pypi/NAME or "
            "pkg:pypi/NAME@VERSION, without namespace, qualifiers or subpath",
            purl=text,
        )
    if purl.name == ANY_PROJECT:
        if purl.version:
            raise PolicyError(f"{text!r}: pkg:pypi/* takes no version", purl=text)
        return Subject(ANY_PROJECT)
    if not _NAME.match(purl.name):
        raise PolicyError(
            f"{text!r}: {purl.name!r} is not a valid Python project name (PEP 508)", purl=text
        )
    return Subject(normalize(purl.name), purl.version or None)


def purl_of(project: str, version: str | None = None) -> str:
    """``pkg:pypi/NAME`` or ``pkg:pypi/NAME@VERSION`` (``+`` percent-encoded, as purls need)."""
    if project == ANY_PROJECT:
        return f"pkg:pypi/{ANY_PROJECT}"
    return PackageURL(type="pypi", name=project, version=version).to_string()


def version_spec(subject: Subject, versions: str | None) -> str:
    """The specifier a rule stores: ``==V`` for a purl with ``@V``, *versions*, or ``""`` (all).

    Raises PolicyError when both are given or *versions* is not a PEP 440
    specifier set.
    """
    if subject.version is not None and versions:
        raise PolicyError(
            f"give either a version in the purl (@{subject.version}) or a specifier "
            f"({versions}), not both",
        )
    if subject.version is not None:
        try:
            Version(subject.version)
        except InvalidVersion as exc:
            raise PolicyError(
                f"{subject.version!r} is not a PEP 440 version", version=subject.version
            ) from exc
        return f"=={subject.version}"
    if not versions:
        return ""
    try:
        return str(SpecifierSet(versions))
    except InvalidSpecifier as exc:
        raise PolicyError(
            f"{versions!r} is not a PEP 440 version specifier such as '<2' or '>=1.4,!=1.5'",
            versions=versions,
        ) from exc


@dataclass(frozen=True)
class Rule:
    """One stored rule.

    *specifier* is ``""`` for every version; *days* is set for cooldown rules
    only; *reason* says why (required for allow rules).
    """

    id: int
    kind: RuleKind
    project: str
    specifier: str
    days: int | None
    reason: str
    created_at: datetime
    created_by: str

    @property
    def purl(self) -> str:
        """The rule's subject as a purl: ``@V`` when it names one exact version."""
        if self.specifier.startswith("==") and "," not in self.specifier:
            version = self.specifier[2:]
            if "*" not in version:
                return purl_of(self.project, version)
        return purl_of(self.project)

    @property
    def subject(self) -> str:
        """The purl, with the specifier when it is not one exact version (for people)."""
        purl = self.purl
        if self.specifier and "@" not in purl:
            return f"{purl} {self.specifier}"
        return purl

    @property
    def whole_project(self) -> bool:
        """True when the rule covers every version of its project."""
        return not self.specifier

    @property
    def cooldown(self) -> timedelta | None:
        """The cooldown a cooldown rule sets (None for other kinds)."""
        return (
            timedelta(days=self.days) if self.kind == "cooldown" and self.days is not None else None
        )

    def covers(self, project: str, version: str) -> bool:
        """True when this rule names *project* (normalized) and *version*.

        Pre-releases are matched too; a version that is not PEP 440 is covered
        only by a rule for every version.  ``==X.Y.Z`` covers ``X.Y.Z+fs.N``
        (PEP 440 local versions), so a rule on a release also covers our
        remediated builds of it.
        """
        if self.project not in (project, ANY_PROJECT):
            return False
        if not self.specifier:
            return True
        try:
            parsed = Version(version)
        except InvalidVersion:
            return False
        return SpecifierSet(self.specifier, prereleases=True).contains(parsed)

    def to_json(self) -> dict[str, object]:
        """The rule as JSON (stable keys)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "purl": self.purl,
            "project": self.project,
            "versions": self.specifier,
            "days": self.days,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }
