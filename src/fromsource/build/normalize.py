"""Rewrite a freshly built wheel so the same inputs give the same bytes.

Build backends differ in member order, timestamps, permissions, directory
entries and compression; none of that is part of what a wheel means.  This
module fixes all of it (see :func:`normalize_wheel`) so two builds of the same
sdist with the same build dependencies are bit-for-bit equal, and so a digest
in an attestation can be reproduced by anyone.

Determinism assumes the same zlib: DEFLATE output is stable for one zlib
version and level, but a different zlib implementation (zlib-ng, a future
release) may compress differently; the uncompressed contents, and so RECORD,
never change.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fromsource.bounded import DEFAULT_LIMITS, Budget, OutputLimits
from fromsource.dist.distinfo import ZIP_ERRORS, find_dist_info
from fromsource.dist.record import RecordEntry, is_record_path, render_record
from fromsource.errors import InvalidDistributionError

__all__ = ["COMPRESS_LEVEL", "normalize_wheel"]

COMPRESS_LEVEL = 6
"""The DEFLATE level of every member of a normalized wheel."""

_ZIP_MIN_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest ZIP (DOS) timestamp
_ZIP_MAX_EPOCH = 4354819198  # 2107-12-31T23:59:58Z, the latest one
_CHUNK = 1 << 20
# Signatures over the old RECORD; they cannot survive its regeneration
# (PEP 427 "Signed wheel files"), so they are dropped.
_RECORD_SIGNATURES = ("RECORD.jws", "RECORD.p7s")


@dataclass(frozen=True)
class _Member:
    """One file to write: its name, where its bytes come from, its mode."""

    name: str
    executable: bool
    source: zipfile.ZipInfo | None  # None: the bytes are in add_files
    data: bytes = b""


def _check_member_name(wheel: str, name: str) -> None:
    """Reject a member name that is absolute or climbs out of the archive root."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
        raise InvalidDistributionError(
            f"{wheel}: member {name!r} is an absolute path or contains '..'; the wheel "
            "was rejected, fix the build backend's output",
            filename=wheel,
            member=name,
        )
    if "\x00" in name or name == "" or any(p == "" for p in parts[:-1]):
        raise InvalidDistributionError(
            f"{wheel}: member name {name!r} is malformed; the wheel was rejected",
            filename=wheel,
            member=name,
        )


def _open(wheel: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(wheel)
    except ZIP_ERRORS as exc:
        raise InvalidDistributionError(
            f"{wheel.name}: not a readable zip archive ({exc})", filename=wheel.name
        ) from exc




def _zip_time(epoch: int) -> tuple[int, int, int, int, int, int]:
    clamped = min(max(epoch, _ZIP_MIN_EPOCH), _ZIP_MAX_EPOCH)
    t = datetime.fromtimestamp(clamped, UTC)
    return (t.year, t.month, t.day, t.hour, t.minute, t.second)


def _sort_key(dist_info: str, name: str) -> tuple[int, str]:
    """Payload first, then ``.dist-info`` (PEP 427 recommends it last), RECORD last."""
    if name == f"{dist_info}/RECORD":
        return (2, name)
    if name.startswith(dist_info + "/"):
        return (1, name)
    return (0, name)


def _collect(
    wheel: Path, archive: zipfile.ZipFile, dist_info: str, add_files: Mapping[str, bytes]
) -> list[_Member]:
    """The members of the normalized wheel, sorted, without RECORD."""
    members: dict[str, _Member] = {}
    for info in archive.infolist():
        name = info.filename
        _check_member_name(wheel.name, name)
        if info.is_dir():
            continue
        if name in members:
            raise InvalidDistributionError(
                f"{wheel.name}: member {name} appears twice; the wheel was rejected",
                filename=wheel.name,
                member=name,
            )
        if is_record_path(name) or name in {f"{dist_info}/{s}" for s in _RECORD_SIGNATURES}:
            continue
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise InvalidDistributionError(
                f"{wheel.name}: member {name} is a symbolic link; wheels cannot carry links",
                filename=wheel.name,
                member=name,
            )
        members[name] = _Member(name, bool(mode & 0o111), info)
    for relative, data in add_files.items():
        name = f"{dist_info}/{relative}"
        _check_member_name(wheel.name, relative)
        if relative in {"RECORD", *_RECORD_SIGNATURES} or relative.endswith("/"):
            raise InvalidDistributionError(
                f"add_files key {relative!r} cannot be written into {dist_info}",
                member=relative,
            )
        # An added file replaces a member of the same name (it is ours, e.g. the SBOM).
        members[name] = _Member(name, False, None, bytes(data))
    return sorted(members.values(), key=lambda m: _sort_key(dist_info, m.name))


def _new_info(
    name: str, executable: bool, date_time: tuple[int, int, int, int, int, int], size: int
) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time)
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = COMPRESS_LEVEL  # type: ignore[attr-defined]  # no public knob in 3.11
    info.create_system = 3  # Unix, so that external_attr carries the permission bits
    info.external_attr = (stat.S_IFREG | (0o755 if executable else 0o644)) << 16
    info.file_size = size  # decides ZIP64 up front, deterministically
    return info


def normalize_wheel(
    wheel: Path,
    out_dir: Path,
    *,
    epoch: int,
    add_files: Mapping[str, bytes] | None = None,
    limits: OutputLimits = DEFAULT_LIMITS,
) -> Path:
    """Write a normalized copy of *wheel* into *out_dir* and return its path.

    The copy has the same filename and the same file contents, plus
    *add_files* (keys relative to the ``.dist-info`` folder, e.g.
    ``sboms/fromsource.cdx.json`` per PEP 770; an added file replaces a member
    of the same name).  In the copy: members sorted by name with the
    ``.dist-info`` folder last and RECORD the very last; no directory entries;
    every timestamp ``max(epoch, 1980-01-01)`` UTC; mode 0644, or 0755 when
    the built file had any execute bit; DEFLATE at :data:`COMPRESS_LEVEL`; no
    extra fields or comments; RECORD regenerated from the actual bytes (the
    built RECORD is not trusted, and RECORD.jws/.p7s signatures are dropped).

    The file is written under a temporary name in *out_dir*, fsynced and
    renamed, so readers see the old file or the whole new one.  *out_dir* may
    be the wheel's own folder.  Raises InvalidDistributionError for an
    unreadable zip, a member with an absolute path, ``..``, a symbolic link or
    a duplicate name, or a wheel without exactly one ``.dist-info`` folder;
    OversizedError (``oversized-output``) when the members, decompressed, are
    more than ``limits.wheel_bytes`` together (counted as they are read, not
    from the sizes the zip declares).
    """
    add_files = add_files or {}
    date_time = _zip_time(epoch)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / wheel.name
    fd, tmp_name = tempfile.mkstemp(prefix=f".{wheel.name}.", suffix=".tmp", dir=out_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as raw, _open(wheel) as source:
            dist_info = find_dist_info(wheel.name, source.namelist())
            members = _collect(wheel, source, dist_info, add_files)
            what = f"{wheel.name} decompressed"
            # The sizes the zip declares refuse a bomb early; the bytes read decide.
            Budget(limits.wheel_bytes, what).spend(
                sum(m.source.file_size for m in members if m.source is not None)
            )
            budget = Budget(limits.wheel_bytes, what)
            entries: list[RecordEntry] = []
            with zipfile.ZipFile(raw, "w") as out:
                for member in members:
                    entries.append(_write_member(source, out, member, date_time, budget))
                record_name = f"{dist_info}/RECORD"
                record = render_record(entries, record_name).encode("utf-8")
                info = _new_info(record_name, False, date_time, len(record))
                with out.open(info, "w") as handle:
                    handle.write(record)
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _write_member(
    source: zipfile.ZipFile,
    out: zipfile.ZipFile,
    member: _Member,
    date_time: tuple[int, int, int, int, int, int],
    budget: Budget,
) -> RecordEntry:
    """Copy one member into *out*, streaming within *budget*, and return its RECORD entry."""
    digest = hashlib.sha256()
    size = len(member.data) if member.source is None else member.source.file_size
    info = _new_info(member.name, member.executable, date_time, size)
    written = 0
    with out.open(info, "w") as handle:
        if member.source is None:
            handle.write(member.data)
            digest.update(member.data)
            written = len(member.data)
        else:
            try:
                with source.open(member.source) as reader:
                    while chunk := reader.read(_CHUNK):
                        budget.spend(len(chunk))
                        handle.write(chunk)
                        digest.update(chunk)
                        written += len(chunk)
            except ZIP_ERRORS as exc:
                raise InvalidDistributionError(
                    f"{member.name}: cannot be read from the built wheel ({exc})",
                    member=member.name,
                ) from exc
    return RecordEntry(member.name, digest.hexdigest(), written)
