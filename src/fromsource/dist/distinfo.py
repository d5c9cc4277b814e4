"""A wheel's ``.dist-info`` folder: found, checked against the filename, read within caps.

Installers trust the folder, not the filename: uv installs
``other-1.0-py3-none-any.whl`` holding ``honest-1.0.dist-info`` over the
other project's record (issue 18).  The binary distribution format (PEP 427,
"The .dist-info directory") says a wheel holds exactly one
``{escaped name}-{version}.dist-info`` folder with a WHEEL file saying
``Wheel-Version: 1.x``.  :func:`check_wheel` holds a wheel to that, and to
its METADATA naming the same release, before anything describes, signs or
publishes it; every member it reads goes through :mod:`fromsource.bounded`.

The checks over names and bytes are pure (:func:`find_dist_info`,
:func:`check_folder`, :func:`check_wheel_file`, :func:`check_metadata`);
:func:`check_wheel` and :func:`read_record` open the zip.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.tags import Tag, parse_tag
from packaging.utils import parse_wheel_filename
from packaging.version import InvalidVersion, Version

from fromsource.bounded import DEFAULT_LIMITS, OutputLimits, open_zip, read_member
from fromsource.dist.metadata import parse_metadata
from fromsource.dist.names import DistFilename, normalize, parse_filename
from fromsource.dist.record import RecordEntry, parse_record
from fromsource.errors import InvalidDistributionError

__all__ = [
    "ZIP_ERRORS",
    "WheelFields",
    "WheelInfo",
    "check_folder",
    "check_metadata",
    "check_wheel",
    "check_wheel_file",
    "find_dist_info",
    "parse_wheel_file",
    "read_record",
]

ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    zlib.error,
    NotImplementedError,  # an unsupported compression method
    RuntimeError,  # an encrypted member
)
"""What zipfile raises for an archive or member it cannot read."""

_WHEEL_VERSION = re.compile(r"1\.\d+")


@dataclass(frozen=True)
class WheelInfo:
    """What a checked wheel's ``.dist-info`` says."""

    folder: str
    metadata: bytes
    name: str
    version: str
    requires_python: str | None
    root_is_purelib: bool
    tags: frozenset[Tag]


def _refuse(
    filename: str, message: str, category: str, **facts: object
) -> InvalidDistributionError:
    return InvalidDistributionError(
        f"{filename}: {message}; the wheel was refused",
        filename=filename,
        category=category,
        **facts,
    )


def find_dist_info(filename: str, names: Iterable[str]) -> str:
    """The one top-level ``.dist-info`` folder among the member *names* of *filename*.

    Raises InvalidDistributionError (category ``invalid-wheel``) for none or several.
    """
    folders = sorted({n.split("/", 1)[0] for n in names if "/" in n})
    found = [f for f in folders if f.endswith(".dist-info")]
    if len(found) != 1:
        raise _refuse(
            filename,
            f"expected exactly one top-level .dist-info folder, found {found or 'none'}",
            "invalid-wheel",
            found=found,
        )
    return found[0]


def _names_release(stem: str, parsed: DistFilename) -> bool:
    name, dash, version = stem.partition("-")
    if not dash or normalize(name) != parsed.project:
        return False
    try:
        return Version(version) == parsed.version
    except InvalidVersion:
        return False


def check_folder(filename: str, folder: str, names: Iterable[str] = ()) -> None:
    """Refuse a ``.dist-info`` *folder* (or a ``.data`` folder in *names*) of another release.

    The folder must be ``{name}-{version}.dist-info`` with the normalized
    name and the version of *filename*.  Raises InvalidDistributionError
    (category ``wheel-mismatch``) naming the folder.
    """
    parsed = parse_filename(filename)
    stem = folder.removesuffix(".dist-info")
    if not _names_release(stem, parsed):
        raise _refuse(
            filename,
            f"its .dist-info folder {folder!r} does not name {parsed.project} {parsed.version} "
            "(the binary distribution format wants {name}-{version}.dist-info, as in the "
            "filename); installers would file it under that name",
            "wheel-mismatch",
            folder=folder,
        )
    for data in sorted({n.split("/", 1)[0] for n in names if "/" in n}):
        if data.endswith(".data") and data != f"{stem}.data":
            raise _refuse(
                filename,
                f"its .data folder {data!r} does not match its .dist-info folder {folder!r}",
                "wheel-mismatch",
                folder=data,
            )


@dataclass(frozen=True)
class WheelFields:
    """What a wheel's WHEEL file says, as written (stripped), read leniently."""

    wheel_version: str | None
    root_is_purelib: str | None
    tags: tuple[str, ...]


def parse_wheel_file(raw: bytes) -> WheelFields:
    """The fields of the WHEEL file *raw* (PEP 427: email headers); never raises.

    Bytes that are not UTF-8 are replaced; a missing field is None.
    """
    message = Parser().parsestr(raw.decode("utf-8", errors="replace"), headersonly=True)

    def one(key: str) -> str | None:
        value = message.get(key)
        return (str(value).strip() or None) if value is not None else None

    tags = tuple(str(line).strip() for line in message.get_all("Tag") or [])
    return WheelFields(one("Wheel-Version"), one("Root-Is-Purelib"), tags)


def check_wheel_file(filename: str, folder: str, raw: bytes) -> tuple[bool, frozenset[Tag]]:
    """``(Root-Is-Purelib, tags)`` of the WHEEL file *raw*, checked against *filename*.

    WHEEL must say ``Wheel-Version: 1.x`` and ``Root-Is-Purelib: true|false``,
    and its ``Tag`` lines must be the filename's tags (compressed tag sets
    expanded).  Raises InvalidDistributionError (category ``invalid-wheel``).
    """
    where = f"{folder}/WHEEL"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse(filename, f"{where} is not UTF-8", "invalid-wheel") from exc
    fields = parse_wheel_file(raw)
    version = fields.wheel_version or ""
    if not _WHEEL_VERSION.fullmatch(version):
        raise _refuse(
            filename,
            f"{where} says Wheel-Version {version or '(none)'!r}, not 1.x",
            "invalid-wheel",
        )
    purelib = (fields.root_is_purelib or "").lower()
    if purelib not in ("true", "false"):
        raise _refuse(
            filename,
            f"{where} says Root-Is-Purelib {purelib or '(none)'!r}, not true or false",
            "invalid-wheel",
        )
    named = parse_wheel_filename(filename)[3]
    try:
        listed = frozenset(t for line in fields.tags for t in parse_tag(line))
    except ValueError as exc:
        raise _refuse(
            filename, f"{where} has a malformed Tag line ({exc})", "invalid-wheel"
        ) from exc
    if listed != named:
        raise _refuse(
            filename,
            f"{where} lists the tags {sorted(map(str, listed)) or '(none)'}, the filename says "
            f"{sorted(map(str, named))}",
            "invalid-wheel",
        )
    return purelib == "true", listed


def check_metadata(filename: str, folder: str, raw: bytes) -> tuple[str, str, str | None]:
    """``(Name, Version, Requires-Python)`` of METADATA *raw*, checked against *filename*.

    Raises InvalidDistributionError: category ``invalid-wheel`` when Name or
    Version is missing, ``wheel-mismatch`` when they name another release.
    """
    parsed = parse_filename(filename)
    meta = parse_metadata(raw, headers_only=True)
    try:
        name, version = meta.release(f"{folder}/METADATA")
    except InvalidDistributionError as exc:
        raise _refuse(filename, exc.message, "invalid-wheel") from exc
    try:
        same = normalize(name) == parsed.project and Version(version) == parsed.version
    except InvalidVersion:
        same = False
    if not same:
        raise _refuse(
            filename,
            f"METADATA says {name} {version}, the filename says {parsed.project} {parsed.version}",
            "wheel-mismatch",
        )
    return name, version, meta.requires_python


def _open(path: Path, limits: OutputLimits) -> zipfile.ZipFile:
    try:
        return open_zip(path, limits, what=path.name)
    except ZIP_ERRORS as exc:
        raise _refuse(path.name, f"not a readable zip archive ({exc})", "invalid-wheel") from exc


def _member(
    path: Path, archive: zipfile.ZipFile, name: str, limit: int, *, required: bool = True
) -> bytes | None:
    try:
        return read_member(archive, name, limit, what=f"{path.name}: {name}")
    except KeyError as exc:
        if not required:
            return None
        raise _refuse(path.name, f"{name} is missing", "invalid-wheel") from exc
    except ZIP_ERRORS as exc:
        raise _refuse(path.name, f"{name} cannot be read ({exc})", "invalid-wheel") from exc


def check_wheel(path: Path, limits: OutputLimits = DEFAULT_LIMITS) -> WheelInfo:
    """Check the wheel at *path* against its filename; what its ``.dist-info`` says.

    Exactly one ``.dist-info`` folder, named for the filename's release
    (:func:`check_folder`); a WHEEL file (:func:`check_wheel_file`); METADATA
    naming the same release (:func:`check_metadata`).  METADATA, WHEEL and
    entry_points.txt are read within *limits*.  Raises
    InvalidDistributionError (category ``wheel-mismatch`` or
    ``invalid-wheel``) or OversizedError (``oversized-output``).
    """
    filename = path.name
    with _open(path, limits) as archive:
        names = archive.namelist()
        folder = find_dist_info(filename, names)
        check_folder(filename, folder, names)
        wheel = _member(path, archive, f"{folder}/WHEEL", limits.wheel_file_bytes)
        metadata = _member(path, archive, f"{folder}/METADATA", limits.metadata_bytes)
        # Nothing here parses entry points, but installers do: refuse a bomb there too.
        _member(
            path, archive, f"{folder}/entry_points.txt", limits.entry_points_bytes, required=False
        )
    assert wheel is not None and metadata is not None
    purelib, tags = check_wheel_file(filename, folder, wheel)
    name, version, requires_python = check_metadata(filename, folder, metadata)
    return WheelInfo(folder, metadata, name, version, requires_python, purelib, tags)


def read_record(path: Path, limits: OutputLimits = DEFAULT_LIMITS) -> list[RecordEntry]:
    """The parsed RECORD of the wheel at *path*, read within *limits*.

    Raises InvalidDistributionError when the wheel has no single
    ``.dist-info`` folder or its RECORD is missing or malformed, and
    OversizedError when RECORD is over its cap.
    """
    with _open(path, limits) as archive:
        folder = find_dist_info(path.name, archive.namelist())
        raw = _member(path, archive, f"{folder}/RECORD", limits.record_bytes)
    assert raw is not None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse(path.name, f"{folder}/RECORD is not UTF-8", "invalid-wheel") from exc
    return parse_record(text)
