"""The policy decision: may this release (or file) be listed, served or built?

Pure: :func:`decide` takes a project, a version, optionally the release's
upload time and its files' sha256 digests, the :class:`Policy` in force and
the time, and returns a :class:`Decision`.  No database, no clock.

Order (issue 15): an **allow** rule covering the release wins over
everything and is reported as such (so it can be audited); otherwise a
**malware** record (by version, then by a file's sha256), a **block** rule
and the **cooldown** deny, in that order.  The cooldown is only weighed when
the caller knows when the release was published upstream (*upload_time*):
the index's own builds are not held back by it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from fromsource.dist.names import ProjectName, Sha256, normalize
from fromsource.errors import PolicyError
from fromsource.policy.malware import MalwareRecord, by_project
from fromsource.policy.rules import ANY_PROJECT, DEFAULT_COOLDOWN_DAYS, Rule, parse_purl, purl_of

__all__ = ["Decision", "Policy", "Verdict", "decide", "decide_purl", "project_refusal"]

Verdict = Literal["pass", "allow", "malware", "block", "cooldown"]
"""``pass``: nothing applies; ``allow``: an allow rule let through what would be denied."""


@dataclass(frozen=True)
class Policy:
    """Everything a decision reads: rules, malware records by project and by file hash.

    *generation* is the policy counter these were read at (pages are cached per
    generation; the JSON of ``verify`` names it).  *malware* may be any
    mapping: the store hands in one that reads a project's records on first
    use (:class:`fromsource.policy.store.StoredMalware`); *record_count*, when
    known, saves counting them.
    """

    rules: tuple[Rule, ...] = ()
    malware: Mapping[ProjectName, tuple[MalwareRecord, ...]] = field(default_factory=dict)
    hashes: Mapping[Sha256, MalwareRecord] = field(default_factory=dict)
    generation: int = 0
    record_count: int | None = None

    @classmethod
    def of(
        cls, rules: Iterable[Rule], records: Iterable[MalwareRecord], generation: int = 0
    ) -> Policy:
        """A policy from rules and malware records (indexed here by project and by hash)."""
        records = list(records)
        hashes: dict[Sha256, MalwareRecord] = {}
        for record in sorted(records, key=lambda r: r.id):
            for item in record.hashes:
                hashes.setdefault(item.sha256, record)
        return cls(
            rules=tuple(sorted(rules, key=lambda r: r.id)),
            malware=by_project(records),
            hashes=hashes,
            generation=generation,
        )

    @property
    def records(self) -> int:
        """How many malware records are held."""
        if self.record_count is not None:
            return self.record_count
        return len({r.id for rs in self.malware.values() for r in rs})

    @property
    def default_cooldown_days(self) -> int:
        """The days of the newest ``pkg:pypi/*`` cooldown rule, else the built-in default."""
        days = [r.days for r in self.rules if r.kind == "cooldown" and r.project == ANY_PROJECT]
        return days[-1] if days and days[-1] is not None else DEFAULT_COOLDOWN_DAYS

    def cooldown(self, project: str, version: str) -> tuple[timedelta, Rule | None]:
        """The cooldown for a release and the rule that set it (None: the default).

        The most specific rule wins: one on this project with a specifier, then
        one on this project for every version, then ``pkg:pypi/*``; the newest
        rule among equals.
        """
        ranked: list[tuple[int, int, Rule]] = []
        for rule in self.rules:
            if rule.kind != "cooldown" or rule.days is None or not rule.covers(project, version):
                continue
            rank = 0 if rule.project == ANY_PROJECT else 1 if rule.whole_project else 2
            ranked.append((rank, rule.id, rule))
        if not ranked:
            return timedelta(days=DEFAULT_COOLDOWN_DAYS), None
        chosen = max(ranked, key=lambda item: item[:2])[2]
        return timedelta(days=chosen.days or 0), chosen


@dataclass(frozen=True)
class Decision:
    """What policy says about one release (or, with *version* None, a whole project).

    *rule* is the rule that decided (block, allow or cooldown); *mal_id* and
    *summary* name the malware record; for an ``allow``, *overridden* is the
    verdict it overrode (and *mal_id* the record, if any); *until* is when a
    release in cooldown becomes usable.
    """

    allowed: bool
    verdict: Verdict
    project: str
    version: str | None
    reason: str
    rule: Rule | None = None
    mal_id: str | None = None
    summary: str | None = None
    overridden: Verdict | None = None
    until: datetime | None = None

    @property
    def purl(self) -> str:
        """The release (or project) as a purl."""
        return purl_of(self.project, self.version)

    @property
    def status(self) -> int:
        """The HTTP status for a file (or page) of this release: 200, 404 or 409.

        Malware and block rules answer ``409 Conflict``; a release still in
        its cooldown is ``404`` ("not yet released to users", FIELD-NOTES).
        """
        if self.allowed:
            return 200
        return 404 if self.verdict == "cooldown" else 409

    @property
    def audited(self) -> bool:
        """True when the decision hid, blocked or let something through (not a plain pass)."""
        return self.verdict != "pass"

    def to_json(self) -> dict[str, object]:
        """The decision as JSON (stable keys)."""
        return {
            "purl": self.purl,
            "project": self.project,
            "version": self.version,
            "allowed": self.allowed,
            "verdict": self.verdict,
            "status": self.status,
            "reason": self.reason,
            "rule": self.rule.to_json() if self.rule else None,
            "mal_id": self.mal_id,
            "summary": self.summary,
            "overridden": self.overridden,
            "until": self.until.isoformat() if self.until else None,
        }


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _days(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.0f} day(s)" if days >= 1 else f"{delta.total_seconds() / 3600:.1f} hour(s)"


def _denial(
    project: ProjectName,
    version: str,
    policy: Policy,
    upload_time: datetime | None,
    sha256s: Iterable[str],
    now: datetime | None,
) -> Decision | None:
    label = f"{project} {version}"
    for record in policy.malware.get(project, ()):
        if record.affects(project, version):
            return Decision(
                False,
                "malware",
                project,
                version,
                f"{label} is malware: {record.id} ({record.summary})",
                mal_id=record.id,
                summary=record.summary,
            )
    for digest in sha256s:
        hit = policy.hashes.get(Sha256(digest.lower()))
        if hit is not None:
            named = next((h.filename for h in hit.hashes if h.sha256 == digest.lower()), "")
            return Decision(
                False,
                "malware",
                project,
                version,
                f"{label}: a file has the sha256 {digest} of the malicious file "
                f"{named or 'named'} in {hit.id} ({hit.summary})",
                mal_id=hit.id,
                summary=hit.summary,
            )
    for rule in policy.rules:
        if rule.kind == "block" and rule.covers(project, version):
            return Decision(
                False,
                "block",
                project,
                version,
                f"{label} is blocked by rule {rule.id} ({rule.subject})"
                + (f": {rule.reason}" if rule.reason else ""),
                rule=rule,
            )
    if upload_time is not None:
        if now is None:
            raise ValueError("decide() needs now= to weigh an upload time against the cooldown")
        cooldown, setter = policy.cooldown(project, version)
        published = _aware(upload_time)
        until = published + cooldown
        if _aware(now) < until:
            source = f"rule {setter.id} ({setter.subject})" if setter else "the default"
            return Decision(
                False,
                "cooldown",
                project,
                version,
                f"{label} was published {_days(_aware(now) - published)} ago; the cooldown "
                f"({source}) is {_days(cooldown)}, so it is used from "
                f"{until.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
                rule=setter,
                until=until,
            )
    return None


def decide(
    project: str,
    version: str,
    *,
    policy: Policy,
    upload_time: datetime | None = None,
    sha256s: Iterable[str] = (),
    now: datetime | None = None,
) -> Decision:
    """Decide whether *version* of *project* may be listed, served and built.

    *sha256s* are the digests of the files in question (matched against the
    malware records' ``package_integrity``); *upload_time* is when the
    release was published upstream (weighed against the cooldown at *now*;
    None skips the cooldown).  Raises ValueError when *upload_time* is given
    without *now*.
    """
    name = normalize(project)
    denial = _denial(name, version, policy, upload_time, sha256s, now)
    if denial is None:
        return Decision(True, "pass", name, version, f"{name} {version}: no rule applies")
    for rule in policy.rules:
        if rule.kind == "allow" and rule.covers(name, version):
            return Decision(
                True,
                "allow",
                name,
                version,
                f"{name} {version} is let through by allow rule {rule.id} ({rule.subject})"
                + (f": {rule.reason}" if rule.reason else "")
                + f"; without it: {denial.reason}",
                rule=rule,
                mal_id=denial.mal_id,
                summary=denial.summary,
                overridden=denial.verdict,
            )
    return denial


def project_refusal(project: str, policy: Policy) -> Decision | None:
    """The denial of every version of *project* at once, or None.

    A project is refused whole when a block rule names it without versions or
    a malware record covers all its versions (``introduced: "0"``, never
    fixed), and no allow rule names it at all (an allow rule makes it a
    matter of single versions).
    """
    name = normalize(project)
    if any(r.kind == "allow" and r.project == name for r in policy.rules):
        return None
    for record in policy.malware.get(name, ()):
        if record.all_versions(name):
            return Decision(
                False,
                "malware",
                name,
                None,
                f"every version of {name} is malware: {record.id} ({record.summary})",
                mal_id=record.id,
                summary=record.summary,
            )
    for rule in policy.rules:
        if rule.kind == "block" and rule.project == name and rule.whole_project:
            return Decision(
                False,
                "block",
                name,
                None,
                f"{name} is blocked by rule {rule.id} ({rule.subject})"
                + (f": {rule.reason}" if rule.reason else ""),
                rule=rule,
            )
    return None


def decide_purl(
    purl: str,
    *,
    policy: Policy,
    upload_time: datetime | None = None,
    sha256s: Iterable[str] = (),
    now: datetime | None = None,
) -> Decision:
    """What policy decides about *purl*: a release (``@VERSION``) or, without one, the project.

    What ``fromsource policy test`` and ``/api/policy/test`` answer.  Raises
    PolicyError for a malformed purl or ``pkg:pypi/*``.
    """
    subject = parse_purl(purl)
    if subject.project == ANY_PROJECT:
        raise PolicyError("a test takes one package: pkg:pypi/NAME[@VERSION]", purl=purl)
    if subject.version is None:
        refusal = project_refusal(subject.project, policy)
        return refusal or Decision(
            True,
            "pass",
            subject.project,
            None,
            f"{subject.project}: no rule refuses the whole project (give @VERSION to test one "
            "release)",
        )
    return decide(
        subject.project,
        subject.version,
        policy=policy,
        upload_time=upload_time,
        sha256s=sha256s,
        now=now,
    )
