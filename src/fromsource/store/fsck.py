"""Checking (and repairing) that the database and the blob store agree.

A publish writes blobs first and commits one transaction after, so a crash
can leave blobs nobody references (orphans) but never a visible row without
its bytes.  ``fsck`` checks exactly that, and more that only a broken disk
or an operator's hand can cause:

- the database's own integrity (SQLite ``PRAGMA integrity_check``);
- **orphans**: blobs no ``files`` row (file, metadata, provenance, SBOM) and
  no build record (the archived sdist, the source of truth; the full log;
  the ``.crate`` archives of a Rust build; the wheel an independent build kept to be compared, issue 17) references;
- **missing**: a reference whose blob is not in the store;
- **mismatched**: a blob whose bytes do not hash to its name.

Repairs (``repair=True``): orphans older than the grace period are deleted
(the grace, one hour by default, keeps a publish in flight safe: its blobs
are fresh until its transaction commits); a missing metadata blob is
restored from its wheel; a mismatched blob is moved aside (FileBlobStore:
``tmp/quarantine-<digest>``) and so becomes missing; a wheel or sdist whose
bytes are missing is yanked (PEP 592) with a reason, so resolvers stop
choosing it, and stays a problem until it is rebuilt.  Leftovers of killed
writers in the blob store's ``tmp/`` (half-written blobs, the upload spools
of a killed server, quarantined blobs) are removed after the grace period too.

:func:`classify` is the pure core; :func:`run_fsck` does the I/O.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

import sqlalchemy as sa

from fromsource.dist.names import Sha256
from fromsource.errors import FromsourceError, StoreError
from fromsource.store.blobs import BlobStore, FileBlobStore, copy_blob
from fromsource.store.db import Database
from fromsource.store.models import BuildRow, FileRow
from fromsource.store.publish import read_wheel_metadata, set_yanked

__all__ = [
    "DEFAULT_GRACE",
    "BlobRef",
    "FsckReport",
    "Mismatched",
    "Missing",
    "Orphan",
    "classify",
    "collect_references",
    "run_fsck",
]

DEFAULT_GRACE = timedelta(hours=1)
"""How old an orphan must be before a repair deletes it."""

SCHEMA_VERSION = 1
MISSING_REASON = "fsck: the file's bytes are missing from the blob store; rebuild it"

Role = Literal["file", "metadata", "provenance", "sbom", "sdist", "log", "crate", "candidate"]


@dataclass(frozen=True)
class BlobRef:
    """One reference to a blob: which row points at it, and as what."""

    digest: Sha256
    role: Role
    repo: str
    name: str
    """The filename of a files row, or ``build <id>`` for an archived sdist."""
    kind: str = ""
    """``wheel`` or ``sdist`` for a files row (what a missing metadata blob is restored from)."""
    file_digest: Sha256 | None = None
    """For metadata: the digest of the wheel it was taken from."""


@dataclass(frozen=True)
class Orphan:
    """A stored blob nothing references."""

    digest: Sha256
    age_seconds: float | None
    action: str


@dataclass(frozen=True)
class Missing:
    """A reference whose blob is not stored."""

    ref: BlobRef
    action: str
    repaired: bool = False


@dataclass(frozen=True)
class Mismatched:
    """A stored blob whose bytes hash to something other than its name."""

    digest: Sha256
    actual: str
    action: str
    repaired: bool = False


@dataclass(frozen=True)
class FsckReport:
    """What one fsck run found and did; ``problems`` counts what is still wrong."""

    database: str
    references: int
    blobs: int
    orphans: tuple[Orphan, ...] = ()
    missing: tuple[Missing, ...] = ()
    mismatched: tuple[Mismatched, ...] = ()
    temp_files_removed: int = 0
    repair: bool = False
    grace_seconds: float = DEFAULT_GRACE.total_seconds()
    notes: tuple[str, ...] = field(default=())

    @property
    def problems(self) -> int:
        """Problems found and not repaired (young orphans are not problems: see the grace)."""
        stale = [o for o in self.orphans if o.action == "stale"]
        return (
            (self.database != "ok" and not self.database.startswith("not checked"))
            + len(stale)
            + sum(not m.repaired for m in self.missing)
            + sum(not m.repaired for m in self.mismatched)
        )

    @property
    def ok(self) -> bool:
        """True when nothing is left to repair."""
        return self.problems == 0

    def to_json(self) -> dict[str, object]:
        """The report as JSON (stable keys, ``schema_version`` 1)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "ok": self.ok,
            "problems": self.problems,
            "repair": self.repair,
            "grace_seconds": self.grace_seconds,
            "database": self.database,
            "references": self.references,
            "blobs": self.blobs,
            "orphans": [
                {"digest": o.digest, "age_seconds": o.age_seconds, "action": o.action}
                for o in self.orphans
            ],
            "missing": [
                {
                    "digest": m.ref.digest,
                    "role": m.ref.role,
                    "repo": m.ref.repo,
                    "name": m.ref.name,
                    "action": m.action,
                    "repaired": m.repaired,
                }
                for m in self.missing
            ],
            "mismatched": [
                {"digest": m.digest, "actual": m.actual, "action": m.action, "repaired": m.repaired}
                for m in self.mismatched
            ],
            "temp_files_removed": self.temp_files_removed,
            "notes": list(self.notes),
        }


def classify(
    refs: Iterable[BlobRef], stored: Iterable[str]
) -> tuple[frozenset[Sha256], tuple[BlobRef, ...]]:
    """``(orphans, missing)``: stored digests nobody references, references to absent blobs.

    Pure.  Missing references keep their order (files first, as collected).
    """
    refs = list(refs)
    have = frozenset(Sha256(d) for d in stored)
    wanted = {r.digest for r in refs}
    return frozenset(have - wanted), tuple(r for r in refs if r.digest not in have)


def collect_references(db: Database) -> list[BlobRef]:
    """Every blob reference the database holds: files rows, then archived sdists."""
    refs: list[BlobRef] = []
    with db.session() as session:
        for row in session.scalars(sa.select(FileRow).order_by(FileRow.id)):
            where = (row.repo, row.filename)
            refs.append(BlobRef(Sha256(row.sha256), "file", *where, kind=row.kind))
            if row.metadata_sha256:
                refs.append(
                    BlobRef(Sha256(row.metadata_sha256), "metadata", *where, kind=row.kind,
                            file_digest=Sha256(row.sha256))
                )
            if row.provenance_sha256:
                refs.append(BlobRef(Sha256(row.provenance_sha256), "provenance", *where))
            if row.sbom_sha256:
                refs.append(BlobRef(Sha256(row.sbom_sha256), "sbom", *where))
        for build in session.execute(sa.select(BuildRow.id, BuildRow.repo, BuildRow.details)):
            sdist = (build.details or {}).get("sdist") if isinstance(build.details, dict) else None
            digest = sdist.get("sha256") if isinstance(sdist, dict) else None
            if isinstance(digest, str) and digest:
                refs.append(BlobRef(Sha256(digest), "sdist", build.repo, f"build {build.id}"))
            log = (build.details or {}).get("log") if isinstance(build.details, dict) else None
            digest = log.get("sha256") if isinstance(log, dict) else None
            if isinstance(digest, str) and digest:  # the build's full log (pipeline.keep_log)
                refs.append(BlobRef(Sha256(digest), "log", build.repo, f"build {build.id}"))
            refs += _crate_references(build.details, build.repo, build.id)
            agreement = (build.details or {}).get("agreement")
            kept = agreement.get("candidate") if isinstance(agreement, dict) else None
            digest = kept.get("sha256") if isinstance(kept, dict) else None
            if isinstance(digest, str) and digest:  # the wheel it voted (build.agree)
                refs.append(BlobRef(Sha256(digest), "candidate", build.repo, f"build {build.id}"))
    return refs


def _crate_references(details: object, repo: str, build_id: int) -> list[BlobRef]:
    """The ``.crate`` archives a Rust build fetched and kept as blobs (details ``rust``).

    Only crates from a crate source are archived; those the sdist vendors are in it.
    """
    rust = details.get("rust") if isinstance(details, dict) else None
    if not isinstance(rust, dict) or rust.get("crate_origin") != "crate-source":
        return []
    crates = rust.get("crates")
    return [
        BlobRef(Sha256(crate["sha256"]), "crate", repo, f"build {build_id}")
        for crate in (crates if isinstance(crates, list) else [])
        if isinstance(crate, dict) and isinstance(crate.get("sha256"), str) and crate["sha256"]
    ]


def _database_check(db: Database) -> str:
    if db.engine.dialect.name != "sqlite":
        return f"not checked ({db.engine.dialect.name}: use the database's own tools)"
    with db.engine.connect() as connection:
        rows = [str(r[0]) for r in connection.exec_driver_sql("PRAGMA integrity_check")]
    return "ok" if rows == ["ok"] else "integrity_check: " + "; ".join(rows[:5])


def _hash_blob(blobs: BlobStore, digest: Sha256) -> str:
    path = blobs.local_path(digest)
    sha = hashlib.sha256()
    if path is not None:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                sha.update(chunk)
        return sha.hexdigest()
    size = blobs.size(digest)
    for chunk in blobs.iter_range(digest, 0, size - 1) if size else ():
        sha.update(chunk)
    return sha.hexdigest()


def _age(blobs: BlobStore, digest: Sha256, now: float) -> float | None:
    """Seconds since the blob was written, or None when the backend cannot tell."""
    path = blobs.local_path(digest)
    if path is not None:
        with contextlib.suppress(OSError):
            return now - path.stat().st_mtime
        return None
    modified: Callable[[Sha256], float | None] | None = getattr(blobs, "modified", None)
    if callable(modified):
        moment = modified(digest)
        return None if moment is None else now - moment
    return None


def _remove_orphan(blobs: BlobStore, digest: Sha256, grace: float, now: float) -> bool:
    """Delete an orphan unless a writer just put it back; True when it is gone.

    On a FileBlobStore the blob is renamed aside first and its inode compared
    with the one that was old enough: a publisher always writes a new inode
    (temp file, then rename), so a blob rewritten in between is moved back.
    """
    if not isinstance(blobs, FileBlobStore):
        blobs.delete(digest)
        return True
    path = blobs.local_path(digest)
    if path is None:
        return True
    try:
        before = path.stat()
    except FileNotFoundError:
        return True
    if now - before.st_mtime < grace:
        return False
    aside = blobs.root / "tmp" / f"fsck-{digest}-{os.getpid()}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return True
    if os.stat(aside).st_ino != before.st_ino:
        os.rename(aside, path)  # rewritten by a publisher at this very moment: keep it
        return False
    aside.unlink()
    return True


def _remove_temp_files(blobs: BlobStore, grace: float, now: float) -> int:
    scratch = blobs.scratch_dir()
    if scratch is None:
        return 0
    removed = 0
    for tmp in scratch.glob("*"):
        with contextlib.suppress(OSError):
            if now - tmp.lstat().st_mtime < grace:
                continue
            if tmp.is_dir() and not tmp.is_symlink():  # an upload spool of a killed server
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
            removed += 1
    return removed


def _quarantine(blobs: BlobStore, digest: Sha256) -> str:
    path = blobs.local_path(digest)
    if isinstance(blobs, FileBlobStore) and path is not None:
        target = blobs.root / "tmp" / f"quarantine-{digest}"
        os.replace(path, target)
        return f"moved to {target.relative_to(blobs.root)}"
    blobs.delete(digest)
    return "deleted"


def _restore_metadata(blobs: BlobStore, ref: BlobRef) -> str | None:
    """Re-extract a wheel's METADATA into the store; None when restored, else why not."""
    if ref.file_digest is None or not blobs.exists(ref.file_digest):
        return "the wheel's own bytes are missing too"
    with tempfile.TemporaryDirectory(prefix="fromsource-fsck-") as tmp:
        wheel = Path(tmp) / ref.name
        copy_blob(blobs, ref.file_digest, wheel)
        try:
            raw = read_wheel_metadata(wheel).raw
        except FromsourceError as exc:
            return f"the wheel's METADATA cannot be read ({exc.message})"
    actual = hashlib.sha256(raw).hexdigest()
    if actual != ref.digest:
        return f"the wheel's METADATA has sha256 {actual}, not {ref.digest}"
    blobs.put_bytes(raw)
    return None


def _repair_missing(db: Database, blobs: BlobStore, ref: BlobRef, yanked: set[tuple[str, str]]) -> Missing:
    if ref.role == "metadata":
        why = _restore_metadata(blobs, ref)
        if why is None:
            return Missing(ref, "restored from the wheel", repaired=True)
        return Missing(ref, f"not restored: {why}")
    if ref.role == "file":
        if (ref.repo, ref.name) not in yanked:
            set_yanked(db, ref.repo, ref.name, MISSING_REASON, True)
            yanked.add((ref.repo, ref.name))
        return Missing(ref, "yanked; rebuild it to restore it")
    return Missing(ref, "reported; rebuild the file to restore it")


def run_fsck(
    db: Database,
    blobs: BlobStore,
    *,
    repair: bool = False,
    grace: timedelta = DEFAULT_GRACE,
    verify_digests: bool = True,
    clock: Callable[[], float] = time.time,
) -> FsckReport:
    """Check that *db* and *blobs* agree; with *repair*, fix what can be fixed.

    Raises StoreError, changing nothing, when a repair would treat every
    reference as missing (an empty or wrong blob store: check the blob URL).
    """
    now = clock()
    grace_s = max(grace.total_seconds(), 0.0)
    database = _database_check(db)
    refs = collect_references(db)
    stored = set(blobs.digests())
    if repair and refs and not stored:
        raise StoreError(
            f"the blob store holds no blobs at all while the database references {len(refs)}; "
            "nothing was changed: check the blob store URL (--blob-url) and its mount",
        )
    notes: list[str] = []
    mismatched: list[Mismatched] = []
    if verify_digests:
        for digest in sorted(stored):
            try:
                actual = _hash_blob(blobs, digest)
            except (OSError, StoreError):
                continue  # removed while we looked: the classification below sees it gone
            if actual == digest:
                continue
            if repair:
                action = _quarantine(blobs, digest)
                stored.discard(digest)
                mismatched.append(Mismatched(digest, actual, action, repaired=True))
            else:
                mismatched.append(Mismatched(digest, actual, "reported"))
    orphan_set, missing_refs = classify(refs, stored)
    missing: list[Missing] = []
    yanked: set[tuple[str, str]] = set()
    for ref in missing_refs:
        missing.append(_repair_missing(db, blobs, ref, yanked) if repair else Missing(ref, "reported"))
    orphans: list[Orphan] = []
    for digest in sorted(orphan_set):
        age = _age(blobs, digest, now)
        if age is None:
            orphans.append(Orphan(digest, None, "kept: the store cannot tell its age"))
        elif age < grace_s:
            orphans.append(Orphan(digest, round(age, 3), "young"))
        elif repair and _remove_orphan(blobs, digest, grace_s, clock()):
            orphans.append(Orphan(digest, round(age, 3), "removed"))
        else:
            orphans.append(Orphan(digest, round(age, 3), "stale"))
    if repair and any(o.action == "removed" for o in orphans):
        # A publish that committed meanwhile may reference a blob we removed.
        raced = {o.digest for o in orphans if o.action == "removed"} & {
            r.digest for r in collect_references(db)
        }
        for digest in sorted(raced):
            notes.append(f"{digest} was referenced by a publish during fsck; run fsck again")
    temp_removed = _remove_temp_files(blobs, grace_s, clock()) if repair else 0
    return FsckReport(
        database=database,
        references=len(refs),
        blobs=len(stored),
        orphans=tuple(orphans),
        missing=tuple(missing),
        mismatched=tuple(mismatched),
        temp_files_removed=temp_removed,
        repair=repair,
        grace_seconds=grace_s,
        notes=tuple(notes),
    )


def summary_lines(
    report: FsckReport, extra: Sequence[str] = (), extra_problems: int = 0
) -> list[str]:
    """The report as short human lines (what the CLI prints).

    *extra* lines and *extra_problems* come from checks outside the store
    (the CLI's look at builds left behind) and go before the verdict.
    """
    lines = [
        f"database: {report.database}",
        f"references: {report.references}, blobs: {report.blobs}",
    ]
    counts = Counter(o.action for o in report.orphans)
    if report.orphans:
        lines.append(
            "orphan blobs: " + ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))
        )
    for m in report.missing:
        lines.append(
            f"missing {m.ref.role} blob {m.ref.digest} of {m.ref.repo}/{m.ref.name}: {m.action}"
        )
    for mm in report.mismatched:
        lines.append(f"blob {mm.digest} hashes to {mm.actual}: {mm.action}")
    if report.temp_files_removed:
        lines.append(f"temporary files removed: {report.temp_files_removed}")
    lines += [f"note: {n}" for n in report.notes]
    lines += extra
    problems = report.problems + extra_problems
    if not problems:
        lines.append("ok: the database and the blob store agree")
    else:
        hint = "" if report.repair else "; `fromsource fsck --repair` fixes what can be fixed"
        lines.append(f"{problems} problem(s) left{hint}")
    return lines
