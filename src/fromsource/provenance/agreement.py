"""Independent builds that made one wheel: the statement's ``internalParameters.agreement``.

A wheel is published only when two builds, made independently (other
workers, other sandboxes), produced the same bytes (issue 17).  Its
provenance then names both: :class:`Agreement` is that entry as a value,
:meth:`Agreement.to_json` writes it as docs/attestations.md lays it out,
:func:`parse_agreement` reads it back, and :meth:`Agreement.summary` is the
sentence ``verify --detailed`` and the web UI show ("2 independent builds
agreed").  An operator's override (published although the builds differed)
is part of the entry, so it can never be mistaken for an agreement.

Pure values; the statement (:mod:`fromsource.provenance.statement`) embeds
and parses the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from fromsource.errors import ProvenanceError
from fromsource.provenance._reader import JsonReader

__all__ = ["AgreeingBuild", "Agreement", "Override", "parse_agreement"]


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ProvenanceError(f"agreement: {moment} has no time zone; pass an aware datetime")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class AgreeingBuild:
    """One of the independent builds: who built it (builder id and version, the worker
    process), its invocation id, when, the sha256 of its wheel and its build key.

    *sandbox* says how its sandbox differed from the other's (``variant``,
    ``build_uid``: None when the builder did not run as root).
    """

    invocation_id: str
    worker: str
    started: datetime
    finished: datetime
    wheel_sha256: str
    build_key: str
    builder_id: str
    builder_version: str
    sandbox: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> dict[str, Any]:
        """The build's entry of ``agreement.builds``."""
        return {
            "invocationId": self.invocation_id,
            "builder": {"id": self.builder_id, "version": {"fromsource": self.builder_version}},
            "worker": self.worker,
            "startedOn": _rfc3339(self.started),
            "finishedOn": _rfc3339(self.finished),
            "wheel": {"sha256": self.wheel_sha256},
            "build_key": self.build_key,
            "sandbox": dict(self.sandbox),
        }


@dataclass(frozen=True)
class Override:
    """An operator published although the builds differed: why, who, which members differ."""

    reason: str
    by: str
    differing: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The entry's ``override``."""
        return {"reason": self.reason, "by": self.by, "differing": list(self.differing)}


@dataclass(frozen=True)
class Agreement:
    """How many builds had to agree (*required*), the builds, and whether they did.

    *agreed* is true only when every build made the wheel the statement's
    subject is; otherwise *override* says who published it anyway.
    """

    required: int
    builds: tuple[AgreeingBuild, ...]
    agreed: bool
    override: Override | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``internalParameters.agreement`` entry (docs/attestations.md)."""
        entry: dict[str, Any] = {
            "required": self.required,
            "agreed": self.agreed,
            "builds": [b.to_json() for b in self.builds],
        }
        if self.override is not None:
            entry["override"] = self.override.to_json()
        return entry

    def summary(self, *, workers: bool = True) -> str:
        """One sentence for people: ``2 independent builds agreed (build-41 on w1, ...)``
        (without the workers' names unless *workers*)."""
        who = ", ".join(
            f"{b.invocation_id} on {b.worker}" if workers else b.invocation_id for b in self.builds
        )
        if self.agreed:
            return f"{len(self.builds)} independent builds agreed ({who})"
        members = ", ".join(self.override.differing[:5]) if self.override else ""
        return (
            f"{len(self.builds)} independent builds did NOT agree ({who}); published by "
            f"operator override{' (' + self.override.by + ')' if self.override else ''}"
            + (f"; differing: {members}" if members else "")
        )


def _build(item: JsonReader) -> AgreeingBuild:
    builder = item["builder"]
    sandbox = item.obj().get("sandbox")
    return AgreeingBuild(
        invocation_id=item["invocationId"].text(),
        worker=item["worker"].text(),
        started=item["startedOn"].time(),
        finished=item["finishedOn"].time(),
        wheel_sha256=item["wheel"].sha256(),
        build_key=item["build_key"].text(),
        builder_id=builder["id"].text(),
        builder_version=builder["version"]["fromsource"].text(),
        sandbox=MappingProxyType(dict(sandbox) if isinstance(sandbox, dict) else {}),
    )


def parse_agreement(value: object, path: str, subject_sha256: str) -> Agreement:
    """Read an ``agreement`` entry found at *path* of a statement about *subject_sha256*.

    Raises ProvenanceError for a wrong shape, and for an entry that claims
    agreement while a build it lists made another wheel than the subject.
    """
    entry = JsonReader(value, path)
    agreed = entry.obj().get("agreed")
    if not isinstance(agreed, bool):
        raise ProvenanceError(f"attestation: {path}.agreed is not true or false", field=path)
    builds = tuple(_build(b) for b in entry["builds"].items())
    raw_override = entry.obj().get("override")
    override = None
    if raw_override is not None:
        over = entry["override"]
        override = Override(
            reason=over["reason"].text(),
            by=over["by"].text(),
            differing=tuple(d.text() for d in over["differing"].items()),
        )
    if agreed and any(b.wheel_sha256 != subject_sha256 for b in builds):
        raise ProvenanceError(
            f"attestation: {path} says the builds agreed, but one of them made another wheel "
            "than the subject; the statement is inconsistent",
            field=path,
        )
    if not agreed and override is None:
        raise ProvenanceError(
            f"attestation: {path} says the builds differed, without the override that "
            "published the wheel anyway",
            field=path,
        )
    return Agreement(entry["required"].integer(), builds, agreed, override)
