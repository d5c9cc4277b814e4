"""Build targets: which interpreters a release is built for, and how many wheels that takes.

A :class:`Target` is one CPython interpreter on the build host: its version,
ABI and platform (issue 12, DESIGN.md "Targets").  Finding and probing the
interpreters is I/O and lives in :mod:`fromsource.build.interpreters`; this
module holds the value and the decisions over it, all pure:

- :func:`builds_target` / :func:`selected_targets`: which targets the index
  builds (the ``build_pythons`` setting);
- :func:`supported_targets`: which targets a release's Requires-Python allows;
- :func:`wheel_kind`, :func:`covers`, :func:`uncovered`: "once per distinct
  wheel" -- a pure wheel (``py3-none-any``) is built once, an ``abi3`` wheel
  once with the oldest interpreter, any other extension wheel once per
  interpreter;
- :func:`assign_wheels`: which built wheel serves which target;
- :func:`marker_environment`: the PEP 508 marker values of a target.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, compatible_tags, cpython_tags, parse_tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from fromsource.errors import TargetError

__all__ = [
    "MIN_PYTHON",
    "Target",
    "WheelKind",
    "assign_wheels",
    "builds_target",
    "covers",
    "marker_environment",
    "requires_python_allows",
    "selected_targets",
    "supported_tags",
    "supported_targets",
    "uncovered",
    "wheel_kind",
    "wheel_tags",
]

MIN_PYTHON = (3, 9)
"""The oldest CPython the index builds for."""

WheelKind = Literal["pure", "abi3", "extension"]

_VERSION = re.compile(r"^3\.(\d+)$")
_GLIBC = re.compile(r"^2\.(\d+)$")
# PEP 600 manylinux starts at glibc 2.5 on x86, 2.17 on the architectures that
# arrived later; the legacy names are aliases of three of them (PEP 513, 571, 599).
_MANYLINUX_FLOOR = {"x86_64": 5, "i686": 5}
_MANYLINUX_DEFAULT_FLOOR = 17
_LEGACY_ALIASES = {5: "manylinux1", 12: "manylinux2010", 17: "manylinux2014"}
_STABLE_ABIS = ("abi3", "abi3t")


@dataclass(frozen=True)
class Target:
    """One interpreter a release can be built with: version, ABI, platform, where it is.

    *version* is ``major.minor`` (``3.12``), *full_version* what
    ``platform.python_version()`` says (``3.12.1``); *python_tag* and
    *abi_tag* are the wheel tags it builds (``cp312``; ``cp313t`` for a
    free-threaded build); *platform_tag* its ``linux_x86_64``-style platform;
    *glibc* the C library's version (``2.36``), None on a musl or non-glibc
    system; *interpreter* the real binary's path (never a pyenv shim).
    """

    version: str
    full_version: str
    python_tag: str
    abi_tag: str
    platform_tag: str
    interpreter: str
    glibc: str | None

    @property
    def tag(self) -> str:
        """The wheel tag of a wheel built only for this target (``cp312-cp312-linux_x86_64``)."""
        return f"{self.python_tag}-{self.abi_tag}-{self.platform_tag}"

    @property
    def free_threaded(self) -> bool:
        """Whether this is a free-threaded (no-GIL, PEP 703) build."""
        return self.abi_tag.endswith("t")

    @property
    def name(self) -> str:
        """How settings and ``--python`` name it: ``3.12``, or ``3.13t`` when free-threaded."""
        return self.version + ("t" if self.free_threaded else "")

    @property
    def version_tuple(self) -> tuple[int, int]:
        """``(3, 12)``."""
        major, minor = self.version.split(".")
        return int(major), int(minor)

    def to_json(self) -> dict[str, object]:
        """The target as a JSON-ready mapping (what a worker advertises)."""
        return {
            "version": self.version,
            "full_version": self.full_version,
            "python_tag": self.python_tag,
            "abi_tag": self.abi_tag,
            "platform_tag": self.platform_tag,
            "interpreter": self.interpreter,
            "glibc": self.glibc,
            "tag": self.tag,
        }

    @classmethod
    def from_json(cls, value: object) -> Target:
        """Parse what :meth:`to_json` wrote.

        Raises TargetError naming the field when *value* is not such a mapping,
        a field is missing or has the wrong shape.
        """
        if not isinstance(value, Mapping):
            raise TargetError("target: expected a JSON object; the target description is malformed")
        fields: dict[str, str] = {}
        for key in ("version", "full_version", "python_tag", "abi_tag", "platform_tag"):
            field = value.get(key)
            if not isinstance(field, str) or not field:
                raise TargetError(
                    f"target: {key!r} is missing or not a string; the target description "
                    "is malformed",
                    field=key,
                )
            fields[key] = field
        interpreter = value.get("interpreter")
        glibc = value.get("glibc")
        if not isinstance(interpreter, str):
            raise TargetError(
                "target: 'interpreter' is missing or not a string; the target description "
                "is malformed",
                field="interpreter",
            )
        if glibc is not None and (not isinstance(glibc, str) or not _GLIBC.match(glibc)):
            raise TargetError(
                f"target: 'glibc' is {glibc!r}, not a version like 2.36 or null",
                field="glibc",
            )
        if not _VERSION.match(fields["version"]):
            raise TargetError(
                f"target: 'version' is {fields['version']!r}, not a CPython 3 version like 3.12",
                field="version",
            )
        return cls(interpreter=interpreter, glibc=glibc, **fields)


def _older_first(target: Target) -> tuple[tuple[int, int], bool, str]:
    return target.version_tuple, target.free_threaded, target.tag


def builds_target(target: Target, wanted: Sequence[str]) -> bool:
    """Whether the index builds *target* under the ``build_pythons`` setting *wanted*.

    Empty *wanted*: every CPython >= :data:`MIN_PYTHON` that is not
    free-threaded.  Otherwise a target is built when an entry names it by
    :attr:`Target.name` (``3.12``, ``3.13t``), ABI tag (``cp313t``) or whole
    tag (``cp312-cp312-linux_x86_64``); entries naming no target are ignored.
    """
    if not wanted:
        return target.version_tuple >= MIN_PYTHON and not target.free_threaded
    names = {target.name, target.abi_tag, target.tag}
    return any(entry.strip() in names for entry in wanted)


def selected_targets(targets: Iterable[Target], wanted: Sequence[str]) -> tuple[Target, ...]:
    """The targets the index builds (see :func:`builds_target`), oldest first."""
    return tuple(sorted((t for t in targets if builds_target(t, wanted)), key=_older_first))


def requires_python_allows(requires_python: str | None, python_version: str) -> bool:
    """Whether a Requires-Python specifier admits *python_version* (``3.12.1``).

    No specifier, or a malformed one, admits every version: pip ignores a
    malformed Requires-Python too.  A pre-release of Python is judged as its
    release (``3.13.0rc1`` as ``3.13.0``), as pip judges it from
    ``sys.version_info[:3]``.
    """
    if not requires_python:
        return True
    try:
        spec = SpecifierSet(requires_python)
        version = Version(Version(python_version).base_version)
    except (InvalidSpecifier, InvalidVersion):
        return True
    return spec.contains(version, prereleases=True)


def supported_targets(requires_python: str | None, targets: Iterable[Target]) -> tuple[Target, ...]:
    """The *targets* a release with this Requires-Python supports, oldest first.

    Judged by each interpreter's full version, as pip does on that interpreter.
    """
    chosen = (t for t in targets if requires_python_allows(requires_python, t.full_version))
    return tuple(sorted(chosen, key=_older_first))


def _platforms(target: Target) -> list[str]:
    """The platform tags *target*'s installers accept, most specific first."""
    platform = target.platform_tag
    if not platform.startswith("linux_"):
        return [platform]
    arch = platform.removeprefix("linux_")
    found: list[str] = []
    match = _GLIBC.match(target.glibc or "")
    if match:
        floor = _MANYLINUX_FLOOR.get(arch, _MANYLINUX_DEFAULT_FLOOR)
        for minor in range(int(match.group(1)), floor - 1, -1):
            found.append(f"manylinux_2_{minor}_{arch}")
            if minor in _LEGACY_ALIASES:
                found.append(f"{_LEGACY_ALIASES[minor]}_{arch}")
    found.append(platform)
    return found


def supported_tags(target: Target) -> tuple[Tag, ...]:
    """Every wheel tag *target* installs, most preferred first (as pip orders them)."""
    platforms = _platforms(target)
    version = target.version_tuple
    return (
        *cpython_tags(version, [target.abi_tag], platforms),
        *compatible_tags(version, target.python_tag, platforms),
    )


def wheel_tags(filename: str) -> frozenset[Tag]:
    """The tags of a wheel *filename*; raises TargetError when it is not a wheel name."""
    try:
        return frozenset(parse_wheel_filename(filename)[3])
    except InvalidWheelFilename as exc:
        raise TargetError(f"{filename}: not a wheel filename ({exc})", filename=filename) from exc


def wheel_kind(tags: Iterable[Tag | str]) -> WheelKind:
    """What a wheel with *tags* is: ``pure`` (ABI ``none`` and platform ``any``),
    ``abi3`` (the stable ABI, PEP 384), or ``extension`` (anything else)."""
    parsed = {t for tag in tags for t in (parse_tag(tag) if isinstance(tag, str) else {tag})}
    if parsed and all(t.abi == "none" and t.platform == "any" for t in parsed):
        return "pure"
    if parsed and all(t.abi in _STABLE_ABIS for t in parsed):
        return "abi3"
    return "extension"


def covers(tags: Iterable[Tag], target: Target) -> bool:
    """Whether a wheel with *tags* installs on *target*."""
    return not set(tags).isdisjoint(supported_tags(target))


def uncovered(
    targets: Iterable[Target],
    built: Iterable[Iterable[Tag]],
    tried: Iterable[Target] = (),
) -> tuple[Target, ...]:
    """The *targets* that none of the *built* wheels (their tags) serve, oldest first.

    This is the whole "once per distinct wheel" rule: build with the first
    target this returns, add the wheel's tags to *built* and the target to
    *tried*, ask again until nothing is left.  The oldest interpreter goes
    first, so a pure wheel leaves nothing (built once), an ``abi3`` wheel
    built with the oldest leaves only what the stable ABI cannot serve
    (free-threaded builds, PEP 703), and an extension wheel leaves every
    other interpreter.  Targets in *tried* are never returned, so a build
    whose wheel does not serve its own target (or that failed) is not
    repeated.
    """
    wheels = [frozenset(tags) for tags in built]
    done = {t.tag for t in tried}
    left = (t for t in targets if t.tag not in done and not any(covers(tags, t) for tags in wheels))
    return tuple(sorted(left, key=_older_first))


def assign_wheels(targets: Iterable[Target], filenames: Iterable[str]) -> dict[str, str | None]:
    """For each target's :attr:`~Target.tag`, the wheel among *filenames* it would install.

    The wheel with the target's most preferred tag wins (as pip picks);
    None when no wheel serves it.  Names that are not wheels are ignored.
    """
    tagged: list[tuple[str, frozenset[Tag]]] = []
    for filename in sorted(filenames):
        try:
            tagged.append((filename, wheel_tags(filename)))
        except TargetError:
            continue
    result: dict[str, str | None] = {}
    for target in sorted(targets, key=_older_first):
        rank = {tag: i for i, tag in enumerate(supported_tags(target))}
        best: tuple[int, str] | None = None
        for filename, tags in tagged:
            scores = [rank[t] for t in tags if t in rank]
            if scores and (best is None or min(scores) < best[0]):
                best = (min(scores), filename)
        result[target.tag] = best[1] if best else None
    return result


def marker_environment(target: Target) -> dict[str, str]:
    """The PEP 508 environment markers of *target*, as its own interpreter would report them.

    What a requirement's marker (``python_version < "3.11"``) is evaluated
    against when building for *target* rather than for the running Python.
    The kernel's release and version are not known for another interpreter
    and are left empty (no build requirement depends on them).
    """
    platform = target.platform_tag
    system, _, machine = platform.partition("_")
    system_names = {"linux": "Linux", "macosx": "Darwin", "win": "Windows"}
    return {
        "implementation_name": "cpython",
        "implementation_version": target.full_version,
        "os_name": "nt" if system == "win" else "posix",
        "platform_machine": machine,
        "platform_release": "",
        "platform_system": system_names.get(system, system),
        "platform_version": "",
        "python_full_version": target.full_version,
        "platform_python_implementation": "CPython",
        "python_version": target.version,
        "sys_platform": {"macosx": "darwin", "win": "win32"}.get(system, system),
    }
