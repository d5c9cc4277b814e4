"""Lock files: rewrite the hashes (and URLs) of hash-pinned projects to the index's rebuilt files.

One editor per format (requirements, uv.lock, poetry.lock, pdm.lock,
pylock.toml, Pipfile.lock), each a pure function from the file's text and a
:data:`Lookup` to a :class:`LockUpdate`; :class:`IndexLookup` answers the
lookups from a fromsource index; :func:`update_files` reads, edits and
atomically writes files.
"""

from fromsource.lockfiles.index import IndexLookup, choose_release, index_target, pinnable_files
from fromsource.lockfiles.model import (
    STATUSES,
    IndexFile,
    LockUpdate,
    Lookup,
    PackageReport,
    Release,
    Status,
)
from fromsource.lockfiles.update import (
    FORMATS,
    FileResult,
    detect_format,
    update_files,
    update_text,
    write_atomic,
)

__all__ = [
    "FORMATS",
    "STATUSES",
    "FileResult",
    "IndexFile",
    "IndexLookup",
    "LockUpdate",
    "Lookup",
    "PackageReport",
    "Release",
    "Status",
    "choose_release",
    "detect_format",
    "index_target",
    "pinnable_files",
    "update_files",
    "update_text",
    "write_atomic",
]
