"""Lock files: read what they pin; rewrite their hashes (and URLs) to the index's rebuilt files.

One reader per format (requirements, uv.lock, poetry.lock, pdm.lock,
pylock.toml, Pipfile.lock), each a pure function from the file's text to
:class:`PinnedPackage` values; :func:`read_lock` detects the format, reads
the file and follows requirements includes.  One editor per format, each a
pure function from the file's text and a :data:`Lookup` to a
:class:`LockUpdate`, takes its pins from that format's reader; :class:`IndexLookup` answers the
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
from fromsource.lockfiles.pinned import Lock, PinnedFile, PinnedPackage, Source, SourceKind
from fromsource.lockfiles.read import FORMATS, detect_format, parse_lock, read_lock
from fromsource.lockfiles.update import FileResult, update_files, update_text, write_atomic

__all__ = [
    "FORMATS",
    "STATUSES",
    "FileResult",
    "IndexFile",
    "IndexLookup",
    "Lock",
    "LockUpdate",
    "Lookup",
    "PackageReport",
    "PinnedFile",
    "PinnedPackage",
    "Release",
    "Source",
    "SourceKind",
    "Status",
    "choose_release",
    "detect_format",
    "index_target",
    "parse_lock",
    "pinnable_files",
    "read_lock",
    "update_files",
    "update_text",
    "write_atomic",
]
