"""OSV advisories: parse records from JSON or YAML, one file, a folder or a zip.

Records are parsed once, at this boundary, into frozen :class:`Advisory`
values (the OSV schema).  The original record is kept as
canonical JSON in :attr:`Advisory.source` so it can be stored and re-read
without loss.  YAML is read with a loader that resolves no numbers and no
timestamps: ``0.10`` stays the version ``"0.10"`` and ``modified`` stays the
string the file holds.

Raises :class:`RemediateError` naming the file (and zip member) for anything
that is not an OSV record.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from fromsource.dist.names import ProjectName, normalize
from fromsource.errors import RemediateError

__all__ = [
    "PYPI",
    "Advisory",
    "Affected",
    "Event",
    "Range",
    "Reference",
    "load_advisories",
    "parse_advisory",
    "parse_document",
]

PYPI = "PyPI"
"""The OSV ecosystem name of the Python Package Index."""

EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
_EVENT_KINDS: tuple[EventKind, ...] = ("introduced", "fixed", "last_affected", "limit")
_SUFFIXES = (".json", ".yaml", ".yml")
_MAX_MEMBER_BYTES = 16 * 1024 * 1024
_MAX_ZIP_BYTES = 2 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class Event:
    """One range event: ``introduced``, ``fixed``, ``last_affected`` or ``limit`` at a version."""

    kind: EventKind
    value: str


@dataclass(frozen=True)
class Range:
    """One ``affected[].ranges[]`` entry: its type (ECOSYSTEM, SEMVER, GIT) and events in file order."""

    type: str
    events: tuple[Event, ...]
    repo: str | None = None


@dataclass(frozen=True)
class Affected:
    """One ``affected[]`` entry: a package in an ecosystem, its ranges and explicit versions."""

    ecosystem: str
    name: str
    purl: str | None
    ranges: tuple[Range, ...]
    versions: tuple[str, ...]

    @property
    def project(self) -> ProjectName:
        """The PEP 503 normalized name (meaningful for the PyPI ecosystem)."""
        return normalize(self.name)

    @property
    def is_pypi(self) -> bool:
        """True when this entry is about a package on the Python Package Index."""
        return self.ecosystem.split(":", 1)[0] == PYPI


@dataclass(frozen=True)
class Reference:
    """One ``references[]`` entry."""

    type: str
    url: str


@dataclass(frozen=True)
class Advisory:
    """One OSV record, parsed.

    *source* is the record as canonical JSON (sorted keys); *origin* says where
    it was read from and takes no part in equality.
    """

    id: str
    aliases: tuple[str, ...]
    summary: str
    details: str
    modified: str
    published: str
    withdrawn: str | None
    affected: tuple[Affected, ...]
    references: tuple[Reference, ...]
    source: str = field(repr=False)
    origin: str = field(default="", compare=False)

    @property
    def ids(self) -> frozenset[str]:
        """The id and every alias: the names this vulnerability goes by."""
        return frozenset((self.id, *self.aliases))

    @property
    def title(self) -> str:
        """The summary, or the first sentence of the details (at most 160 characters)."""
        if self.summary:
            return self.summary
        first = self.details.strip().split("\n", 1)[0]
        return first if len(first) <= 160 else first[:157] + "..."

    @property
    def projects(self) -> tuple[ProjectName, ...]:
        """Normalized names of the PyPI packages this advisory affects, in file order."""
        seen: dict[ProjectName, None] = {}
        for entry in self.affected:
            if entry.is_pypi:
                seen.setdefault(entry.project, None)
        return tuple(seen)

    def for_project(self, project: str) -> tuple[Affected, ...]:
        """The PyPI ``affected[]`` entries about *project* (any spelling)."""
        wanted = normalize(project)
        return tuple(e for e in self.affected if e.is_pypi and e.project == wanted)

    def fixed_versions(self, project: str) -> tuple[str, ...]:
        """Every ``fixed`` version in the ECOSYSTEM ranges for *project*, in file order."""
        found: dict[str, None] = {}
        for entry in self.for_project(project):
            for rng in entry.ranges:
                if rng.type == "ECOSYSTEM":
                    for event in rng.events:
                        if event.kind == "fixed":
                            found.setdefault(event.value, None)
        return tuple(found)

    def to_json(self) -> dict[str, Any]:
        """The record as a JSON-ready mapping, as it was read."""
        return cast(dict[str, Any], json.loads(self.source))


class _OsvYamlLoader(yaml.SafeLoader):
    """A safe loader that turns no scalar into a number or a date."""


_OsvYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag.rsplit(":", 1)[-1] in ("bool", "null")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _fail(origin: str, problem: str) -> RemediateError:
    return RemediateError(
        f"{origin}: {problem}; this is not a valid OSV record, fix or remove the file "
        "and import again (nothing from it was imported)",
        origin=origin,
    )


def _text(value: object, origin: str, where: str, *, required: bool = False) -> str:
    if value is None:
        if required:
            raise _fail(origin, f"{where} is missing or empty")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(origin, f"{where} must be a string, not {type(value).__name__}")
    text = str(value)
    if required and not text:
        raise _fail(origin, f"{where} is missing or empty")
    return text


def _list(value: object, origin: str, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(origin, f"{where} must be a list, not {type(value).__name__}")
    return value


def _mapping(value: object, origin: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(origin, f"{where} must be a mapping, not {type(value).__name__}")
    return value


def _range(raw: object, origin: str, where: str) -> Range:
    data = _mapping(raw, origin, where)
    events: list[Event] = []
    for j, raw_event in enumerate(_list(data.get("events"), origin, f"{where}.events")):
        event = _mapping(raw_event, origin, f"{where}.events[{j}]")
        kinds = [k for k in _EVENT_KINDS if k in event]
        if len(kinds) != 1:
            raise _fail(
                origin,
                f"{where}.events[{j}] must hold exactly one of {', '.join(_EVENT_KINDS)}",
            )
        kind = kinds[0]
        events.append(Event(kind, _text(event[kind], origin, f"{where}.events[{j}].{kind}",
                                        required=True)))
    repo = data.get("repo")
    return Range(
        type=_text(data.get("type"), origin, f"{where}.type", required=True),
        events=tuple(events),
        repo=_text(repo, origin, f"{where}.repo") if repo is not None else None,
    )


def _affected(raw: object, origin: str, where: str) -> Affected:
    data = _mapping(raw, origin, where)
    package = _mapping(data.get("package", {}), origin, f"{where}.package")
    purl = package.get("purl")
    return Affected(
        ecosystem=_text(package.get("ecosystem"), origin, f"{where}.package.ecosystem"),
        name=_text(package.get("name"), origin, f"{where}.package.name"),
        purl=_text(purl, origin, f"{where}.package.purl") if purl is not None else None,
        ranges=tuple(
            _range(r, origin, f"{where}.ranges[{i}]")
            for i, r in enumerate(_list(data.get("ranges"), origin, f"{where}.ranges"))
        ),
        versions=tuple(
            _text(v, origin, f"{where}.versions[{i}]", required=True)
            for i, v in enumerate(_list(data.get("versions"), origin, f"{where}.versions"))
        ),
    )


def parse_advisory(data: object, *, origin: str = "<record>") -> Advisory:
    """Parse one OSV record (already decoded from JSON or YAML) into an Advisory.

    Raises RemediateError naming *origin* and the offending field.
    """
    record = _mapping(data, origin, "the record")
    withdrawn = record.get("withdrawn")
    refs = []
    for i, raw in enumerate(_list(record.get("references"), origin, "references")):
        ref = _mapping(raw, origin, f"references[{i}]")
        refs.append(Reference(_text(ref.get("type"), origin, f"references[{i}].type"),
                              _text(ref.get("url"), origin, f"references[{i}].url")))
    return Advisory(
        id=_text(record.get("id"), origin, "id", required=True),
        aliases=tuple(
            _text(a, origin, f"aliases[{i}]", required=True)
            for i, a in enumerate(_list(record.get("aliases"), origin, "aliases"))
        ),
        summary=_text(record.get("summary"), origin, "summary"),
        details=_text(record.get("details"), origin, "details"),
        modified=_text(record.get("modified"), origin, "modified"),
        published=_text(record.get("published"), origin, "published"),
        withdrawn=_text(withdrawn, origin, "withdrawn") if withdrawn is not None else None,
        affected=tuple(
            _affected(a, origin, f"affected[{i}]")
            for i, a in enumerate(_list(record.get("affected"), origin, "affected"))
        ),
        references=tuple(refs),
        source=json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")),
        origin=origin,
    )


def parse_document(raw: bytes, *, origin: str) -> list[Advisory]:
    """Parse the bytes of one ``.json``, ``.yaml`` or ``.yml`` file.

    A document is one record, a list of records, or ``{"vulns": [...]}`` (the
    shape the OSV query API answers with).  The suffix of *origin* picks the
    decoder.  Raises RemediateError for undecodable or malformed content.
    """
    try:
        text = raw.decode("utf-8")
        if origin.lower().endswith(".json"):
            data: object = json.loads(text)
        else:
            data = yaml.load(text, Loader=_OsvYamlLoader)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise _fail(origin, f"cannot be decoded ({exc.__class__.__name__}: {exc})") from exc
    if isinstance(data, Mapping) and "id" not in data and isinstance(data.get("vulns"), list):
        data = data["vulns"]
    if isinstance(data, list):
        return [parse_advisory(item, origin=f"{origin}[{i}]") for i, item in enumerate(data)]
    return [parse_advisory(data, origin=origin)]


def _zip_documents(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [
                m for m in archive.infolist()
                if not m.is_dir() and m.filename.lower().endswith(_SUFFIXES)
            ]
            if sum(m.file_size for m in members) > _MAX_ZIP_BYTES:
                raise RemediateError(
                    f"{path}: the advisories in this zip expand to more than "
                    f"{_MAX_ZIP_BYTES} bytes; split it and import the parts",
                    origin=str(path),
                )
            for member in sorted(members, key=lambda m: m.filename):
                if member.file_size > _MAX_MEMBER_BYTES:
                    raise RemediateError(
                        f"{path}!{member.filename}: {member.file_size} bytes is more than "
                        f"the {_MAX_MEMBER_BYTES} allowed for one advisory file",
                        origin=f"{path}!{member.filename}",
                    )
                yield f"{path}!{member.filename}", archive.read(member)
    except zipfile.BadZipFile as exc:
        raise RemediateError(
            f"{path}: not a readable zip archive ({exc}); pass a zip, a folder or an "
            "OSV .json/.yaml file", origin=str(path),
        ) from exc


def _documents(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and child.suffix.lower() in _SUFFIXES:
                yield str(child), child.read_bytes()
    elif path.suffix.lower() == ".zip":
        yield from _zip_documents(path)
    elif path.is_file():
        if path.suffix.lower() not in _SUFFIXES:
            raise RemediateError(
                f"{path}: unknown advisory file type; expected .json, .yaml, .yml or .zip",
                origin=str(path),
            )
        yield str(path), path.read_bytes()
    else:
        raise RemediateError(
            f"{path}: no such file or folder; pass an OSV file, a folder of them or a zip",
            origin=str(path),
        )


def load_advisories(path: Path) -> list[Advisory]:
    """Every OSV record in *path*: a ``.json``/``.yaml``/``.yml`` file, a folder
    (searched recursively, other files ignored) or a ``.zip`` of such files.

    Records come back in path order.  Raises RemediateError on the first file
    that cannot be read, naming it; nothing is returned in that case.
    """
    found: list[Advisory] = []
    for origin, raw in _documents(path):
        found.extend(parse_document(raw, origin=origin))
    return found
