"""Moving bytes from an index under a size cap, hashing them on the way.

A page or file is copied chunk by chunk and stopped as soon as it passes
its :class:`Cap` (issue 18: a link to ``/dev/zero`` must not fill the
disk).  Local files (a ``file:`` index) are opened only when they are
regular files, without following a final symlink.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fromsource.errors import IndexClientError

CHUNK = 1 << 16
_MIB = 1 << 20
MAX_DOWNLOAD_BYTES = 1024 * _MIB
"""Default cap on one downloaded file (sdist or build-dependency wheel): the
unpacker's limit on an sdist's whole content (``UnpackLimits.max_total_bytes``)."""
MAX_PAGE_BYTES = 64 * _MIB
"""Default cap on one page or small document (the largest public pages are a few MB)."""


@dataclass(frozen=True)
class Cap:
    """How many bytes one download of *what* may hold: the *limit*, or fewer when *listed*."""

    what: str
    limit: int
    listed: int | None = None

    @property
    def bytes(self) -> int:
        """The cap in force."""
        return self.limit if self.listed is None else min(self.limit, self.listed)

    def exceeded(self) -> IndexClientError:
        """The error for a download that passed the cap."""
        if self.listed is not None and self.listed < self.limit:
            why = f"more than the {self.listed} bytes the index lists"
        else:
            why = f"larger than the {self.limit}-byte limit for one download"
        return IndexClientError(
            f"{self.what}: {why}; the download was stopped and removed", limit=self.bytes
        )


def open_regular(path: Path, what: str) -> BinaryIO:
    """*path* opened for reading when it is a regular file (not a final symlink, FIFO or device).

    ``O_NONBLOCK`` keeps a FIFO from blocking the open; the type is checked
    on the open descriptor, so nothing can swap the file in between.
    Raises IndexClientError otherwise.
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise IndexClientError(
            f"{what}: cannot open {path} ({exc.strerror}; a symbolic link is not followed)"
        ) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IndexClientError(f"{what}: {path} is not a regular file; it was not read")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def copy_file(src: BinaryIO, out: BinaryIO, cap: Cap | None = None) -> str:
    """Copy *src* (closed afterwards) into *out*; return the sha256 hex digest.

    Raises IndexClientError as soon as *src* holds more than the *cap* allows.
    """
    with src:
        return copy_chunks(iter(lambda: src.read(CHUNK), b""), out, cap)


def copy_chunks(chunks: Iterable[bytes], out: BinaryIO, cap: Cap | None) -> str:
    """Write *chunks* to *out* under *cap*; return their sha256 hex digest."""
    digest = hashlib.sha256()
    seen = 0
    for chunk in chunks:
        seen += len(chunk)
        if cap is not None and seen > cap.bytes:
            raise cap.exceeded()
        digest.update(chunk)
        out.write(chunk)
    return digest.hexdigest()
