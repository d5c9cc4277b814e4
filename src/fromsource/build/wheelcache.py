"""Build-dependency wheels by sha256: fetched once, checked, linked into each build.

:class:`WheelCache` holds the wheels :mod:`fromsource.build.deps` resolved,
under ``<root>/ab/<sha256>/<file>``: our own from the blob store, bootstrap
ones downloaded through the upstream (its link rules, size cap, credentials
and retries, issue 18).  A rebuild asks for exactly the wheels its build
recorded (:meth:`WheelCache.fetch_recorded`): found by sha256 wherever they
still are, or a clear ``inputs-unavailable`` naming the one that is gone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from fromsource.build.deps import ResolvedWheel
from fromsource.build.upstream import Upstream
from fromsource.errors import DependencyError, FromsourceError, HashMismatchError
from fromsource.indexclient import ProjectFile, redact
from fromsource.store.blobs import BlobStore, copy_blob, sha256_file

__all__ = ["WheelCache"]


class WheelCache:
    """Build-dependency wheels by sha256, shared by every build (``<root>/ab/<sha256>/<file>``).

    Our own wheels come from the blob store; bootstrap wheels are downloaded
    through *upstream* (:meth:`Upstream.download`), so its link rules, size
    cap, credentials and retries hold for them too: a ``file:`` wheel URL is
    followed only from a ``file:`` upstream (issue 18).
    """

    def __init__(self, root: Path, upstream: Upstream) -> None:
        self.root = root
        self.upstream = upstream

    def path(self, wheel: ResolvedWheel) -> Path:
        """Where *wheel* is (or will be) cached."""
        return self.root / wheel.sha256[:2] / wheel.sha256 / wheel.filename

    def fetch(self, wheel: ResolvedWheel, blobs: BlobStore | None = None) -> Path:
        """The cached file of *wheel*, fetched first when absent.

        Our own wheels come from *blobs*; others from their URL through the
        upstream.  A cached copy whose digest is wrong is dropped and fetched
        again.  Raises HashMismatchError when the bytes are not the expected
        ones (nothing is cached), UpstreamError when the upstream refuses or
        fails, DependencyError when our wheel is not in *blobs*.
        """
        cached = self._cached(wheel)
        if cached is not None:
            return cached
        if wheel.source == "fromsource" and blobs is not None:
            if not self._from_blobs(wheel, blobs):
                raise DependencyError(
                    f"build dependency {wheel.filename} (sha256 {wheel.sha256}) is not in the "
                    "blob store any more; run fromsource fsck, then build it again",
                    category="build-deps-unresolvable",
                    filename=wheel.filename,
                )
        else:
            self._download(wheel, wheel.url)
        return self._ready(wheel)

    def fetch_recorded(self, wheel: ResolvedWheel, blobs: BlobStore) -> Path:
        """The cached file of *wheel*, a build dependency recorded by an earlier build.

        A rebuild must use exactly these bytes, so every place that may hold
        them is tried, each checked by sha256: this cache, the blob store
        (any file with that digest is that wheel), then for a bootstrap wheel
        the recorded URL and whatever URL the upstream lists now for the same
        filename and digest.  Never another wheel of the same name and
        version.  Raises DependencyError (category ``inputs-unavailable``)
        naming the wheel and why each place failed when none has it.
        """
        cached = self._cached(wheel)
        if cached is not None:
            return cached
        if self._from_blobs(wheel, blobs):
            return self._ready(wheel)
        tried = ["not in the wheel cache or the blob store"]
        if wheel.source == "bootstrap":
            urls = [wheel.url]
            try:
                urls += [
                    f.url
                    for f in self.upstream.project_files(wheel.project)
                    if f.filename == wheel.filename and f.sha256 == wheel.sha256
                ]
            except FromsourceError as exc:
                tried.append(f"the upstream page of {wheel.project} failed ({exc.message})")
            else:
                if len(urls) == 1 or urls[1:] == [wheel.url]:
                    tried.append("the upstream lists no other copy with that name and digest")
            for url in dict.fromkeys(urls):
                try:
                    self._download(wheel, url)
                except FromsourceError as exc:
                    tried.append(f"not at {redact(url)} ({_short(exc)})")
                    continue
                return self._ready(wheel)
        return self._missing(wheel, tried)

    def _ready(self, wheel: ResolvedWheel) -> Path:
        """The cache path of *wheel*, just written (digest checked), made readable to builds."""
        target = self.path(wheel)
        _readable(target)
        return target

    def _cached(self, wheel: ResolvedWheel) -> Path | None:
        target = self.path(wheel)
        if not target.is_file():
            return None
        if sha256_file(target)[0] != wheel.sha256:  # damaged: drop it, fetch again
            target.unlink(missing_ok=True)
            return None
        _readable(target)
        return target

    def _from_blobs(self, wheel: ResolvedWheel, blobs: BlobStore) -> bool:
        """Copy the blob with *wheel*'s digest into the cache; False when there is none."""
        if not blobs.exists(wheel.sha256):
            return False
        target = self.path(wheel)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".part"
        )
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            local = blobs.local_path(wheel.sha256)
            if local is not None:
                shutil.copyfile(local, tmp)
            else:
                copy_blob(blobs, wheel.sha256, tmp)
            actual, _size = sha256_file(tmp)
            if actual != wheel.sha256:
                raise HashMismatchError(
                    f"{wheel.filename} from the blob store has sha256 {actual}, not "
                    f"{wheel.sha256}; nothing was cached, run fromsource fsck",
                    category="hash-mismatch",
                    expected=wheel.sha256,
                    actual=actual,
                )
            _readable(tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return True

    def _download(self, wheel: ResolvedWheel, url: str) -> None:
        """Download *wheel* from *url* into the cache through the upstream (sha256 checked)."""
        self.upstream.download(
            ProjectFile(wheel.filename, url, wheel.sha256), self.path(wheel).parent
        )

    def _missing(self, wheel: ResolvedWheel, tried: Sequence[str]) -> NoReturn:
        raise DependencyError(
            f"inputs unavailable: build dependency {wheel.filename} ({wheel.project} "
            f"{wheel.version}, {wheel.source}, sha256 {wheel.sha256}) recorded by the build is "
            "gone: "
            + "; ".join(tried)
            + ". A rebuild uses only the recorded inputs, so it cannot run; put that exact "
            "file back in the upstream or the blob store",
            category="inputs-unavailable",
            filename=wheel.filename,
            sha256=wheel.sha256,
        )

    def wheelhouse(
        self, wheels: Sequence[ResolvedWheel], folder: Path, blobs: BlobStore | None = None
    ) -> Path:
        """Fill *folder* with *wheels* (links to the cache) and a hashed requirements.txt.

        Returns the requirements file; installing from it with
        ``--require-hashes`` installs exactly these files.
        """
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for wheel in sorted(wheels, key=lambda w: w.project):
            cached = self.fetch(wheel, blobs)
            target = folder / wheel.filename
            if not target.exists():
                try:
                    os.link(cached, target)
                except OSError:
                    shutil.copyfile(cached, target)
            lines.append(f"{wheel.project}=={wheel.version} --hash=sha256:{wheel.sha256}")
        requirements = folder / "requirements.txt"
        requirements.write_text("\n".join(lines) + "\n")
        return requirements


def _short(exc: FromsourceError) -> str:
    """Why one place did not give a recorded wheel, in a few words."""
    if isinstance(exc, HashMismatchError):
        return f"another file is there now, sha256 {exc.facts.get('actual')}"
    status = exc.facts.get("status")
    return f"HTTP {status}" if status else exc.message


def _readable(path: Path) -> None:
    """Mode 0644: the sandboxed build, another uid, reads the wheel through a hard link."""
    if path.stat().st_mode & 0o777 != 0o644:
        path.chmod(0o644)
