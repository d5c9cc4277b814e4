"""Safe extraction of sdists (.tar.gz, .tar.bz2, .tar.xz, .tar, .zip).

An sdist is untrusted input.  :func:`unpack_sdist` reads the archive twice:
the first pass checks every member (name, type, link target, sizes counted
from the real decompressed bytes) and writes nothing; the second pass writes
regular files and directories with our own code (never ``extractall``),
modes 0644/0755, owner not kept, and creates the checked symlinks last, so no
write ever goes through a link.  Anything refused raises
:class:`UnsafeArchiveError` naming the archive and the member; whatever the
second pass had written is removed again.

The SOURCE_DATE_EPOCH of an sdist is the mtime of its ``PKG-INFO`` member
(the newest member mtime is not a property the author controls), raised to
1980-01-01 since zip cannot store older times and flit writes 0.
"""

from __future__ import annotations

import bz2
import calendar
import contextlib
import gzip
import lzma
import os
import shutil
import stat
import tarfile
import weakref
import zipfile
import zlib
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple, Self, cast

from packaging.version import InvalidVersion, Version

from fromsource.bounded import DEFAULT_LIMITS, read_stream, zip_directory
from fromsource.build.archive_rules import (
    EPOCH_FLOOR,
    Member,
    check_tree,
    clamp_mtime,
    epoch_of,
    link_target,
    split_name,
    symlink_target,
)
from fromsource.dist.metadata import parse_metadata
from fromsource.errors import (
    BuildError,
    InvalidDistributionError,
    RefusedMemberError,
    UnsafeArchiveError,
)

__all__ = [
    "EPOCH_FLOOR",
    "PkgInfo",
    "UnpackLimits",
    "Unpacked",
    "read_pkg_info",
    "read_sdist_pkg_info",
    "unpack_sdist",
]

MiB = 1 << 20
_CHUNK = 1 << 20
_MAX_LINK_TARGET = 4096


@dataclass(frozen=True)
class UnpackLimits:
    """How much an sdist may hold; past any of these it is refused.

    ``max_ratio`` guards against compression bombs: decompressed content may
    be at most that many times the archive's size, checked once more than
    ``ratio_floor_bytes`` were decompressed (small archives of very
    compressible files are fine).
    """

    max_total_bytes: int = 1024 * MiB
    max_members: int = 100_000
    max_member_bytes: int = 512 * MiB
    max_ratio: int = 200
    ratio_floor_bytes: int = 8 * MiB


class Unpacked(NamedTuple):
    """What :func:`unpack_sdist` produced: the source tree and its epoch."""

    root: Path
    epoch: int


class PkgInfo(NamedTuple):
    """Name and version from an unpacked sdist's PKG-INFO, and its epoch."""

    name: str
    version: Version
    epoch: int


_Opener = Callable[[], IO[bytes]]
_UNREADABLE = (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, zlib.error,
               lzma.LZMAError, ValueError, NotImplementedError)  # fmt: skip


def unpack_sdist(archive: Path, dest: Path, limits: UnpackLimits = UnpackLimits()) -> Unpacked:
    """Extract *archive* into *dest* (empty or absent); the source tree and its epoch.

    The source tree is the single top-level directory every sdist has; an
    archive without exactly one gives *dest* itself.  The epoch is the
    SOURCE_DATE_EPOCH of the sdist (:func:`~fromsource.build.archive_rules.epoch_of`).
    Raises UnsafeArchiveError when any member is refused (nothing is left in
    *dest*) and BuildError when *dest* is not empty or cannot be written.
    """
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BuildError(
            f"{dest} is not an empty folder; unpack {archive.name} into an empty or absent one",
            archive=archive.name,
            dest=str(dest),
        )
    members = _scan(archive, limits, dest)
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        _extract(archive, dest, limits, members)
    except BaseException as exc:
        _clear(dest, remove_self=created)
        if isinstance(exc, RefusedMemberError):
            raise _unsafe(archive, dest, exc) from None
        if isinstance(exc, OSError):
            raise BuildError(
                f"{archive.name}: extracting into {dest} failed ({exc}); "
                "nothing was kept, check the disk and retry",
                archive=archive.name,
            ) from exc
        raise
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return Unpacked(entries[0], epoch_of(members))
    return Unpacked(dest, epoch_of(members))


def read_pkg_info(tree: Path) -> PkgInfo:
    """Name, version and epoch from ``tree/PKG-INFO`` of an unpacked sdist.

    The epoch is the file's mtime, which :func:`unpack_sdist` set from the
    archive member (so it equals the epoch that returned), raised to
    :data:`EPOCH_FLOOR`.  Raises InvalidDistributionError when PKG-INFO is
    missing or lacks a valid Name or Version.
    """
    path = tree / "PKG-INFO"
    try:
        raw = path.read_bytes()
        mtime = int(path.stat().st_mtime)
    except OSError as exc:
        raise InvalidDistributionError(
            f"{tree.name}: no readable PKG-INFO at the top of the sdist ({exc.strerror}); "
            "an sdist must carry one (PEP 643), build from a proper sdist",
            tree=str(tree),
        ) from exc
    try:
        name, version = parse_metadata(raw, headers_only=True).release(f"{tree.name}/PKG-INFO")
    except InvalidDistributionError as exc:
        raise InvalidDistributionError(
            f"{exc.message}; the sdist is broken", tree=str(tree), **exc.facts
        ) from exc
    try:
        parsed = Version(version)
    except InvalidVersion as exc:
        raise InvalidDistributionError(
            f"{tree.name}/PKG-INFO: version {version!r} is not PEP 440; "
            "fromsource builds only PEP 440 versions",
            tree=str(tree),
        ) from exc
    return PkgInfo(name, parsed, max(EPOCH_FLOOR, mtime))


def _unsafe(archive: Path, dest: Path, rej: RefusedMemberError) -> UnsafeArchiveError:
    where = f"member {rej.member!r} " if rej.member is not None else ""
    return UnsafeArchiveError(
        f"{archive.name}: {where}{rej.reason}; the sdist was rejected, "
        f"nothing was extracted outside {dest}",
        archive=archive.name,
        member=rej.member,
        reason=rej.reason,
    )


# -- pass 1: read everything, write nothing -------------------------------------------


def read_sdist_pkg_info(archive: Path, limit: int, limits: UnpackLimits = UnpackLimits()) -> bytes:
    """The top ``PKG-INFO`` of the sdist *archive* (``name-1.0/PKG-INFO``), without unpacking.

    Every member is held to the rules and limits of :func:`unpack_sdist`'s
    first pass, so an sdist this accepts is one the pipeline would unpack.
    The least deep PKG-INFO at most one folder down is read through the
    bounded reader, at most *limit* bytes.  Raises UnsafeArchiveError for a
    refused member or an unreadable archive, OversizedError for a PKG-INFO
    over *limit*, InvalidDistributionError when there is no top PKG-INFO.
    """
    found: dict[tuple[str, ...], bytes] = {}
    # Nothing is written: the folder only anchors tarfile's data filter.
    _scan(archive, limits, archive.parent / f".{archive.name}.check", (found, limit))
    if not found:
        raise InvalidDistributionError(
            f"{archive.name}: no PKG-INFO at the top of the sdist; an sdist must carry one "
            "(PEP 643), nothing was published",
            filename=archive.name,
        )
    return found[min(found, key=len)]


def _is_top_pkg_info(member: Member) -> bool:
    return member.kind == "file" and member.parts[-1] == "PKG-INFO" and len(member.parts) <= 2


def _scan(
    archive: Path,
    limits: UnpackLimits,
    dest: Path,
    keep: tuple[dict[tuple[str, ...], bytes], int] | None = None,
) -> list[Member]:
    """Check every member (pass 1); with *keep* (found, cap), also read the top PKG-INFOs."""
    members: list[Member] = []
    budget = _Budget(limits, archive)
    try:
        # tarfile's data filter needs a destination; pass 2 skips it (done here).
        with contextlib.closing(_entries(archive, limits, str(dest))) as entries:
            for member, opener in entries:
                budget.count(member)
                if member.kind == "file":
                    try:
                        if keep is not None and _is_top_pkg_info(member):
                            what = f"{archive.name}: {member.name}"
                            with opener() as stream:
                                data = read_stream(stream, keep[1], what=what)
                            budget.add(member, len(data))
                            keep[0][member.parts] = data
                        else:
                            _drain(opener(), None, member, budget)
                    except _UNREADABLE as exc:  # e.g. a zip whose directory and headers disagree
                        raise RefusedMemberError(member.name, f"cannot be read ({exc})") from exc
                members.append(member)
        hardlinks = check_tree(members)
        for member in members:
            if member.kind == "hardlink":
                budget.add(member, hardlinks[member.parts].size)
    except RefusedMemberError as rej:
        raise _unsafe(archive, dest, rej) from None
    return members


class _Budget:
    """Counts members and real decompressed bytes against the limits."""

    def __init__(self, limits: UnpackLimits, archive: Path) -> None:
        self.limits = limits
        self.archive_size = max(1, archive.stat().st_size)
        self.members = 0
        self.total = 0

    def count(self, member: Member) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise RefusedMemberError(
                member.name, f"is past the limit of {self.limits.max_members} members"
            )

    def add(self, member: Member, n: int, so_far: int = 0) -> None:
        lim = self.limits
        self.total += n
        if so_far + n > lim.max_member_bytes:
            raise RefusedMemberError(
                member.name, f"is larger than the {lim.max_member_bytes}-byte limit"
            )
        if self.total > lim.max_total_bytes:
            raise RefusedMemberError(
                member.name,
                f"takes the content past the {lim.max_total_bytes}-byte limit",
            )
        if self.total > lim.ratio_floor_bytes and self.total > lim.max_ratio * self.archive_size:
            raise RefusedMemberError(
                member.name,
                f"decompresses past {lim.max_ratio} times the archive's size (a compression bomb)",
            )


def _drain(src: IO[bytes], out: IO[bytes] | None, member: Member, budget: _Budget) -> None:
    """Copy (or just count) a member's real bytes, enforcing the limits."""
    done = 0
    with src:
        while chunk := src.read(_CHUNK):
            budget.add(member, len(chunk), done)
            done += len(chunk)
            if out is not None:
                out.write(chunk)


_Entries = Generator[tuple[Member, _Opener], None, None]


def _entries(archive: Path, limits: UnpackLimits, filter_dest: str | None) -> _Entries:
    """Each member of *archive*, checked one by one, with a way to read it."""
    with archive.open("rb") as fh:
        magic = fh.read(6)
    try:
        if magic[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            yield from _zip_entries(archive, limits)
        else:
            yield from _tar_entries(archive, magic, limits, filter_dest)
    except _UNREADABLE as exc:
        raise RefusedMemberError(None, f"cannot be read as a tar or zip archive ({exc})") from exc


class _Counting:
    """A read-only stream that caps how many decompressed bytes pass through."""

    def __init__(self, raw: IO[bytes], cap: int) -> None:
        self.raw, self.cap, self.seen = raw, cap, 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.seen += len(data)
        if self.seen > self.cap:
            raise RefusedMemberError(
                None, f"decompresses to more than {self.cap} bytes of tar stream"
            )
        return data

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decompressed(archive: Path, magic: bytes) -> IO[bytes]:
    """The archive's bytes, decompressed by what its first bytes say it is."""
    if magic[:2] == b"\x1f\x8b":
        return cast(IO[bytes], gzip.open(archive, "rb"))
    if magic[:3] == b"BZh":
        return cast(IO[bytes], bz2.open(archive, "rb"))
    if magic == b"\xfd7zXZ\x00":
        return cast(IO[bytes], lzma.open(archive, "rb"))
    return archive.open("rb")


_EXTENDED_HEADERS = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)
_MAX_EXTENDED_HEADER = MiB
_MAX_HEADER_CHAIN = 8
_HEADER_SLACK = 4096  # tar stream bytes per member beyond its content: header, pax, padding
_CHAIN_DEPTH: weakref.WeakKeyDictionary[tarfile.TarFile, int] = weakref.WeakKeyDictionary()


class _CheckedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses extended headers (pax, GNU long names) before reading them
    when they are oversized or chained without end.

    tarfile reads such a header's whole content into memory, and follows a
    chain of them by recursion: a 1 MB archive holding a 300 MB pax header
    took ~900 MB of memory, and a long chain a RecursionError (issue 8).
    """

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type not in _EXTENDED_HEADERS:
            return super()._proc_member(tarfile_)  # type: ignore[misc, no-any-return]
        if self.size > _MAX_EXTENDED_HEADER:
            raise RefusedMemberError(
                self.name,
                f"is an extended header of {self.size} bytes, past the "
                f"{_MAX_EXTENDED_HEADER}-byte limit (a memory bomb)",
            )
        depth = _CHAIN_DEPTH.get(tarfile_, 0)
        if depth >= _MAX_HEADER_CHAIN:
            raise RefusedMemberError(
                self.name, f"chains more than {_MAX_HEADER_CHAIN} extended headers"
            )
        _CHAIN_DEPTH[tarfile_] = depth + 1
        try:
            return super()._proc_member(tarfile_)  # type: ignore[misc, no-any-return]
        finally:
            _CHAIN_DEPTH[tarfile_] = depth


def _tar_entries(
    archive: Path, magic: bytes, limits: UnpackLimits, filter_dest: str | None
) -> _Entries:
    # The whole decompressed stream is held to the content limits plus some
    # slack per member actually seen (headers and padding), so headers alone
    # cannot decompress without bound either.
    cap = limits.max_total_bytes + _HEADER_SLACK * (limits.max_members + 1) + MiB
    ratio_cap = max(limits.ratio_floor_bytes, limits.max_ratio * archive.stat().st_size)
    stream = _Counting(_decompressed(archive, magic), min(cap, ratio_cap + _HEADER_SLACK + MiB))
    with (
        stream,
        tarfile.open(fileobj=cast(IO[bytes], stream), mode="r|", tarinfo=_CheckedTarInfo) as tf,
    ):
        for seen, info in enumerate(tf, start=1):
            stream.cap = min(cap, ratio_cap + _HEADER_SLACK * (seen + 1) + MiB)
            member = _from_tar(info)
            try:  # tarfile's own filter, a second line of defence behind ours
                if filter_dest is not None:
                    tarfile.data_filter(info, filter_dest)
            except tarfile.FilterError as exc:
                raise RefusedMemberError(
                    info.name, f"is refused by tarfile's data filter ({exc})"
                ) from exc

            def member_bytes(info: tarfile.TarInfo = info) -> IO[bytes]:
                return cast(IO[bytes], tf.extractfile(info))

            yield member, member_bytes


def _from_tar(info: tarfile.TarInfo) -> Member:
    name, parts, mtime = info.name, split_name(info.name), clamp_mtime(info.mtime)
    if info.ischr() or info.isblk():
        raise RefusedMemberError(name, "is a device file")
    if info.isfifo():
        raise RefusedMemberError(name, "is a FIFO")
    if info.issparse():
        raise RefusedMemberError(name, "is a sparse file, which sdists never need")
    if info.isreg():
        return Member(name, parts, "file", info.size, bool(info.mode & 0o111), mtime)
    if info.isdir():
        return Member(name, parts, "dir", mtime=mtime)
    if info.issym():
        target = symlink_target(name, parts, info.linkname)
        return Member(name, parts, "symlink", mtime=mtime, target=target)
    if info.islnk():
        target = link_target(name, info.linkname)
        if ".." in target.split("/"):
            raise RefusedMemberError(name, f"is a hard link to {target!r}, outside the tree")
        return Member(name, parts, "hardlink", mtime=mtime, target=target)
    raise RefusedMemberError(name, f"has the unsupported tar member type {info.type!r}")


def _zip_entries(archive: Path, limits: UnpackLimits) -> _Entries:
    # zipfile reads the whole directory on open: count the members from the end record first.
    members, directory = zip_directory(archive)
    if members > limits.max_members:
        raise RefusedMemberError(
            None, f"declares {members} members, past the limit of {limits.max_members}"
        )
    if directory > DEFAULT_LIMITS.zip_directory_bytes:
        raise RefusedMemberError(
            None,
            f"declares a central directory of {directory} bytes, past the limit of "
            f"{DEFAULT_LIMITS.zip_directory_bytes}",
        )
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():

            def member_bytes(info: zipfile.ZipInfo = info) -> IO[bytes]:
                return zf.open(info)

            yield _from_zip(zf, info), member_bytes


def _from_zip(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Member:
    name = info.orig_filename  # zipfile cuts .filename at a NUL; the original keeps it
    parts = split_name(name)
    mtime = clamp_mtime(calendar.timegm((*info.date_time, 0, 0, 0)))
    if info.flag_bits & 0x1:
        raise RefusedMemberError(name, "is encrypted")
    mode = info.external_attr >> 16  # unix mode, where the zip tool wrote one
    ftype = stat.S_IFMT(mode)
    if ftype in (stat.S_IFCHR, stat.S_IFBLK):
        raise RefusedMemberError(name, "is a device file (by its unix mode)")
    if ftype == stat.S_IFIFO:
        raise RefusedMemberError(name, "is a FIFO (by its unix mode)")
    if ftype == stat.S_IFSOCK:
        raise RefusedMemberError(name, "is a socket (by its unix mode)")
    if info.is_dir() or ftype == stat.S_IFDIR:
        return Member(name, parts, "dir", mtime=mtime)
    if ftype == stat.S_IFLNK:
        if info.file_size > _MAX_LINK_TARGET:
            raise RefusedMemberError(name, "is a symlink with an overlong target")
        with zf.open(info) as fh:
            raw = fh.read(_MAX_LINK_TARGET + 1)
        target = symlink_target(name, parts, os.fsdecode(raw))
        return Member(name, parts, "symlink", mtime=mtime, target=target)
    if ftype not in (0, stat.S_IFREG):
        raise RefusedMemberError(name, f"has the unsupported unix file type {ftype:o}")
    return Member(name, parts, "file", info.file_size, bool(mode & 0o111), mtime)


# -- pass 2: write what pass 1 accepted -----------------------------------------------


def _extract(archive: Path, dest: Path, limits: UnpackLimits, plan: list[Member]) -> None:
    budget = _Budget(limits, archive)
    hardlinks = check_tree(plan)
    written: set[tuple[str, ...]] = set()
    made: set[tuple[str, ...]] = set()
    with contextlib.closing(_entries(archive, limits, None)) as entries:
        index = 0
        for member, opener in entries:
            if index >= len(plan) or plan[index] != member:
                raise RefusedMemberError(
                    member.name, "differs from the first read (the file changed)"
                )
            index += 1
            budget.count(member)
            if not member.parts or member.kind == "symlink":
                continue
            path = dest.joinpath(*member.parts)
            _mkdirs(dest, member.parts if member.kind == "dir" else member.parts[:-1], made)
            if member.kind == "dir":
                continue
            if member.parts in written:
                path.unlink()
            source = hardlinks.get(member.parts)
            src = dest.joinpath(*source.parts).open("rb") if source else opener()
            mode = 0o755 if (source or member).executable else 0o644
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
            with os.fdopen(fd, "wb") as out:
                _drain(src, out, member, budget)
                out.flush()
                os.fchmod(fd, mode)  # whatever the umask; never setuid
                os.utime(fd, (member.mtime, member.mtime))
            written.add(member.parts)
    if index != len(plan):
        raise RefusedMemberError(
            None, "has fewer members than at the first read (the file changed)"
        )
    for member in plan:  # symlinks last: nothing above was written through one
        if member.kind == "symlink":
            _mkdirs(dest, member.parts[:-1], made)
            os.symlink(member.target, dest.joinpath(*member.parts))


def _mkdirs(dest: Path, parts: tuple[str, ...], made: set[tuple[str, ...]]) -> None:
    """Create the directories *parts* under *dest* (0755), remembering them in *made*."""
    path = dest
    for i, part in enumerate(parts, 1):
        path = path / part
        if parts[:i] in made:
            continue
        made.add(parts[:i])
        try:
            os.mkdir(path, 0o755)
            os.chmod(path, 0o755)
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                raise RefusedMemberError(
                    "/".join(parts), "needs a directory where a file is"
                ) from None


def _clear(dest: Path, *, remove_self: bool) -> None:
    """Remove everything in *dest* (which was empty), and *dest* if we made it."""
    for child in list(dest.iterdir()) if dest.is_dir() else []:
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
    if remove_self:
        with contextlib.suppress(OSError):
            dest.rmdir()
