"""The one bounded reader for whatever the host reads from untrusted output.

A build's output (the wheel a backend made, a hook's JSON result, the build
log) and the members of a wheel are read only through these functions, so a
limit written once holds everywhere (STYLE.md "One home for each idea"):

- a file is opened with ``O_NONBLOCK | O_NOFOLLOW`` and checked with
  ``fstat`` before the first read: a link is not followed, and a FIFO,
  socket, device or folder is refused (:class:`NotRegularFileError`, category
  ``unsafe-output``) instead of wedging the host in ``open()`` (issue 18);
- at most a cap is read: one byte more raises :class:`OversizedError`
  (category ``oversized-output``) naming what was read and the cap, and
  nothing past the cap is ever held in memory;
- an optional deadline (a :func:`time.monotonic` value) is checked between
  chunks (:class:`ReadDeadlineError`, category ``timeout``).

:class:`OutputLimits` holds the caps, so tests and operators can set them.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from fromsource.errors import NotRegularFileError, OversizedError, ReadDeadlineError

if TYPE_CHECKING:
    from fromsource.config import Settings

__all__ = [
    "DEFAULT_LIMITS",
    "Budget",
    "OutputLimits",
    "check_deadline",
    "copy_file",
    "copy_head",
    "open_regular",
    "open_zip",
    "read_file",
    "read_member",
    "read_stream",
    "read_tail",
    "zip_directory",
]

MiB = 1 << 20
_CHUNK = 1 << 20
_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class OutputLimits:
    """The caps on what the host reads from a build or a wheel, in bytes."""

    metadata_bytes: int = 16 * MiB
    """A wheel's METADATA (also its ``.metadata`` blob, served on every install)."""
    record_bytes: int = 64 * MiB
    """A wheel's RECORD."""
    wheel_file_bytes: int = 64 << 10
    """A wheel's WHEEL file (a handful of short lines)."""
    entry_points_bytes: int = 4 * MiB
    """A wheel's entry_points.txt."""
    wheel_bytes: int = 4 << 30
    """A built wheel: the file, and all its members decompressed (normalize rewrites them)."""
    hook_result_bytes: int = 4 * MiB
    """A PEP 517 hook's JSON result."""
    log_bytes: int = 64 * MiB
    """The full build log kept as a blob; past it the log is cut and marked truncated."""
    log_tail_bytes: int = 512 << 10
    """The end of the build log kept in the build's row (what ``builds show`` prints)."""
    document_bytes: int = 64 * MiB
    """A stored document read whole to be parsed (provenance, SBOM)."""
    zip_members: int = 100_000
    """Members of a zip archive (a wheel, a zip sdist): zipfile holds its whole directory."""
    zip_directory_bytes: int = 64 * MiB
    """The central directory of a zip archive, read whole when the archive is opened."""

    @classmethod
    def from_settings(cls, settings: Settings) -> OutputLimits:
        """The caps the operator set (``FROMSOURCE_MAX_*_BYTES``), defaults for the rest."""
        return cls(
            metadata_bytes=settings.max_metadata_bytes,
            wheel_bytes=settings.max_wheel_bytes,
            log_bytes=settings.max_log_bytes,
        )


DEFAULT_LIMITS = OutputLimits()
"""The default caps (a module-level value, so signatures can name it as their default)."""


def _too_large(what: str, limit: int, size: int | None = None) -> OversizedError:
    shown = f"{size} bytes" if size is not None else f"more than {limit} bytes"
    return OversizedError(
        f"{what} is {shown}, over the cap of {limit} bytes; it was refused and nothing "
        "past the cap was read (raise the cap if a real package needs more)",
        what=what,
        limit=limit,
        size=size,
        category="oversized-output",
    )


def check_deadline(deadline: float | None, what: str) -> None:
    """Raise ReadDeadlineError when the monotonic *deadline* has passed."""
    if deadline is not None and time.monotonic() > deadline:
        raise ReadDeadlineError(
            f"reading {what} ran past the build's deadline; it was abandoned",
            what=what,
            category="timeout",
        )


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def open_regular(path: str | os.PathLike[str], *, what: str, dir_fd: int | None = None) -> int:
    """A read-only descriptor of the regular file *path* (relative to *dir_fd* if given).

    Opened with ``O_NONBLOCK | O_NOFOLLOW``, so neither a FIFO nor a link can
    make the host wait or read elsewhere; raises NotRegularFileError for a
    link or anything but a regular file; other OSErrors (a missing file)
    pass through.  The caller closes the descriptor.
    """
    try:
        fd = os.open(path, _FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegularFileError(
                f"{what} is a symbolic link; it was not followed",
                what=what,
                category="unsafe-output",
            ) from exc
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegularFileError(
            f"{what} is {_kind(mode)}, not a regular file; it was not read",
            what=what,
            category="unsafe-output",
        )
    return fd


def read_stream(
    stream: IO[bytes], limit: int, *, what: str, deadline: float | None = None
) -> bytes:
    """All bytes of *stream*, which must be at most *limit* (OversizedError otherwise)."""
    chunks: list[bytes] = []
    total = 0
    while True:
        check_deadline(deadline, what)
        chunk = stream.read(min(_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise _too_large(what, limit)
        chunks.append(chunk)


def read_file(
    path: str | os.PathLike[str],
    limit: int,
    *,
    what: str,
    dir_fd: int | None = None,
    deadline: float | None = None,
) -> bytes:
    """The bytes of the regular file *path*, at most *limit* of them.

    Raises NotRegularFileError, OversizedError, ReadDeadlineError, or the
    OSError of a missing file.
    """
    fd = open_regular(path, what=what, dir_fd=dir_fd)
    size = os.fstat(fd).st_size
    if size > limit:
        os.close(fd)
        raise _too_large(what, limit, size)
    with os.fdopen(fd, "rb", buffering=0) as handle:
        return read_stream(handle, limit, what=what, deadline=deadline)


def copy_file(
    path: str | os.PathLike[str],
    dest: Path,
    limit: int,
    *,
    what: str,
    dir_fd: int | None = None,
    deadline: float | None = None,
) -> int:
    """Copy the regular file *path* to *dest* (a new file), at most *limit* bytes; the size.

    Raises as :func:`read_file`; *dest* is removed when the copy fails.
    """
    fd = open_regular(path, what=what, dir_fd=dir_fd)
    total = 0
    try:
        with os.fdopen(fd, "rb", buffering=0) as source, dest.open("wb") as out:
            while True:
                check_deadline(deadline, what)
                chunk = source.read(_CHUNK)
                if not chunk:
                    return total
                total += len(chunk)
                if total > limit:
                    raise _too_large(what, limit)
                out.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def read_tail(path: str | os.PathLike[str], limit: int, *, what: str) -> tuple[bytes, int]:
    """The last *limit* bytes of the regular file *path*, and its whole size.

    Only the tail is read, however large the file; raises NotRegularFileError
    or the OSError of a missing file.
    """
    fd = open_regular(path, what=what)
    with os.fdopen(fd, "rb", buffering=0) as handle:
        size = os.fstat(fd).st_size
        handle.seek(max(0, size - limit))
        chunks: list[bytes] = []
        wanted = min(limit, size)
        while wanted > 0 and (chunk := handle.read(min(_CHUNK, wanted))):
            chunks.append(chunk)
            wanted -= len(chunk)
    return b"".join(chunks), size


def read_member(
    archive: zipfile.ZipFile, member: str | zipfile.ZipInfo, limit: int, *, what: str
) -> bytes:
    """The decompressed bytes of one zip *member*, at most *limit* of them.

    The declared size is not trusted: decompression stops one byte past the
    cap.  Raises OversizedError, KeyError for a missing member, and
    zipfile's own errors for a corrupt one.
    """
    info = archive.getinfo(member) if isinstance(member, str) else member
    if info.file_size > limit:
        raise _too_large(what, limit, info.file_size)
    with archive.open(info) as stream:
        return read_stream(stream, limit, what=what)


class Budget:
    """One cap spent in parts (the decompressed members of one wheel)."""

    def __init__(self, limit: int, what: str) -> None:
        self.limit = limit
        self.what = what
        self.used = 0

    def spend(self, count: int) -> None:
        """Count *count* more bytes; OversizedError once the total is past the cap."""
        self.used += count
        if self.used > self.limit:
            raise _too_large(self.what, self.limit)


def copy_head(
    path: str | os.PathLike[str], dest: Path, limit: int, *, what: str
) -> tuple[int, int]:
    """Copy at most the first *limit* bytes of the regular file *path* to *dest* (a new file).

    Returns ``(bytes copied, size of the file)``: a copy shorter than the
    file was cut.  Raises NotRegularFileError or the OSError of a missing file.
    """
    fd = open_regular(path, what=what)
    copied = 0
    with os.fdopen(fd, "rb", buffering=0) as source, dest.open("wb") as out:
        while copied < limit and (chunk := source.read(min(_CHUNK, limit - copied))):
            out.write(chunk)
            copied += len(chunk)
        size = max(os.fstat(fd).st_size, copied)
    return copied, size


_EOCD = struct.Struct("<4s4H2LH")
_EOCD64_LOCATOR = struct.Struct("<4sLQL")
_EOCD64 = struct.Struct("<4sQ2H2L4Q")


def zip_directory(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(members, central directory bytes)`` of the zip archive at *path*, from its end
    records alone (zip64 included), before anything else of it is read.

    Raises zipfile.BadZipFile when there is no end record, OSError when
    *path* cannot be read.
    """
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        tail_start = max(0, size - _EOCD.size - 0xFFFF)  # the record, then a comment
        handle.seek(tail_start)
        tail = handle.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < _EOCD.size:
            raise zipfile.BadZipFile("no end of central directory record")
        *_, members, directory, _offset, _comment = _EOCD.unpack_from(tail, at)
        if members != 0xFFFF and directory != 0xFFFFFFFF:
            return members, directory
        locator_at = tail_start + at - _EOCD64_LOCATOR.size
        if locator_at < 0:
            raise zipfile.BadZipFile("a zip64 archive without its zip64 locator")
        handle.seek(locator_at)
        signature, _disk, record_at, _disks = _EOCD64_LOCATOR.unpack(
            handle.read(_EOCD64_LOCATOR.size)
        )
        if signature != b"PK\x06\x07":
            raise zipfile.BadZipFile("a zip64 archive without its zip64 locator")
        handle.seek(record_at)
        record = handle.read(_EOCD64.size)
        if len(record) < _EOCD64.size or record[:4] != b"PK\x06\x06":
            raise zipfile.BadZipFile("a zip64 locator that points at no zip64 record")
        *_, members64, directory64, _offset64 = _EOCD64.unpack(record)
        return members64, directory64


def open_zip(
    path: str | os.PathLike[str], limits: OutputLimits = DEFAULT_LIMITS, *, what: str
) -> zipfile.ZipFile:
    """Open the zip archive at *path* once its end records say its directory is within
    :attr:`OutputLimits.zip_members` and :attr:`OutputLimits.zip_directory_bytes`.

    zipfile reads the whole central directory into memory on open (a
    ``ZipInfo`` per member), so a small archive declaring millions of members
    would cost the host gigabytes; this refuses it first (OversizedError).
    Raises zipfile.BadZipFile for an archive without end records.
    """
    members, directory = zip_directory(path)
    if members > limits.zip_members:
        raise OversizedError(
            f"{what} declares {members} members, over the cap of {limits.zip_members}; it was "
            "refused before its directory was read",
            what=what,
            limit=limits.zip_members,
            size=members,
            category="oversized-output",
        )
    if directory > limits.zip_directory_bytes:
        raise _too_large(f"{what}'s central directory", limits.zip_directory_bytes, directory)
    return zipfile.ZipFile(path)
