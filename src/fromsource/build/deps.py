"""Build dependencies: resolve them to exact wheels, prefer our own, fetch them once.

PEP 517/518 build requirements (``build-system.requires``, then what
``get_requires_for_build_wheel`` asks for) are resolved by ``uv pip
compile`` into exact versions and wheel files with sha256 (pylock.toml
output), binary wheels only, so resolving never runs any package's code:

1. first over our own ``python`` repository alone (the wheels of the
   projects reachable from the requirements, offered to uv as a flat
   find-links folder): when that resolves, the whole build closure is from
   source (``source: fromsource``);
2. otherwise over the upstream index together with our repository; for each
   pinned version a wheel of ours is used when we have a compatible one,
   else the upstream wheel (``source: bootstrap``).

uv runs with ``--no-config`` and the index passed explicitly, so no user or
machine configuration leaks in.  An HTTP(S) upstream is never given to uv
itself but through :class:`~fromsource.build.indexproxy.IndexProxy`, which
leaves out the links the upstream may not make us follow (a ``file:`` link
would have uv read the host's files) and keeps the upstream's credentials
out of uv.  Wheels are downloaded (sha256 checked)
through the upstream, under its link rules and size cap, into a cache folder
named by digest, so a repeated build costs nothing, and linked into each
build's wheelhouse (:mod:`fromsource.build.wheelcache`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import Tag, sys_tags
from packaging.utils import parse_wheel_filename

from fromsource.build.indexproxy import IndexProxy
from fromsource.build.upstream import upstream_error
from fromsource.dist.metadata import requires_dist
from fromsource.dist.names import ProjectName, Sha256, normalize
from fromsource.errors import DependencyError, LockError
from fromsource.indexclient import link_allowed, refused_link
from fromsource.lockfiles.pinned import PinnedPackage
from fromsource.lockfiles.pylock import read_pylock
from fromsource.provenance.statement import ResolvedDependency
from fromsource.store.blobs import BlobStore, copy_blob
from fromsource.store.catalog import FileInfo, project_files
from fromsource.store.db import Database, aware

__all__ = [
    "OwnRepository",
    "ResolvedWheel",
    "Resolver",
    "best_wheel",
    "check_requirements",
    "read_resolution",
    "uv_binary",
]

Source = Literal["fromsource", "bootstrap"]
_UV_TIMEOUT = 600


@dataclass(frozen=True)
class ResolvedWheel:
    """One exact build dependency: the wheel file, its digest and where it came from."""

    project: ProjectName
    version: str
    filename: str
    sha256: Sha256
    url: str
    source: Source

    def dependency(self) -> ResolvedDependency:
        """The provenance's view of this wheel."""
        return ResolvedDependency(
            self.filename, self.project, self.version, self.sha256, self.source, self.url
        )

    def to_json(self) -> dict[str, str]:
        """A JSON-ready mapping (stored in the build's details)."""
        return {
            "project": self.project,
            "version": self.version,
            "filename": self.filename,
            "sha256": self.sha256,
            "url": self.url,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ResolvedWheel:
        """Parse what :meth:`to_json` wrote."""
        source = str(data["source"])
        if source not in ("fromsource", "bootstrap"):
            raise DependencyError(f"unknown dependency source {source!r} in a stored build")
        return cls(
            ProjectName(str(data["project"])),
            str(data["version"]),
            str(data["filename"]),
            Sha256(str(data["sha256"])),
            str(data["url"]),
            "fromsource" if source == "fromsource" else "bootstrap",
        )


def check_requirements(requirements: Iterable[str], *, what: str) -> list[Requirement]:
    """Parse build requirements; refuse URLs and anything that is not a PEP 508 requirement.

    Direct references (``name @ URL``) would fetch code from outside any
    index and escape the pinning; option lines would reconfigure the
    resolver.  Raises DependencyError naming *what* (the sdist) on refusal.
    """
    parsed = []
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            raise DependencyError(
                f"{what}: build requirement {text!r} is not a valid PEP 508 requirement "
                f"({exc}); the build was refused",
                category="bad-build-requirement",
                requirement=text,
            ) from exc
        if requirement.url:
            raise DependencyError(
                f"{what}: build requirement {text!r} points at a URL; only index "
                "requirements can be pinned and attested, the build was refused",
                category="bad-build-requirement",
                requirement=text,
            )
        parsed.append(requirement)
    return parsed


def applicable(
    requirements: Iterable[Requirement], environment: Mapping[str, str] | None = None
) -> list[Requirement]:
    """Those of *requirements* whose marker holds for *environment* (PEP 508 marker values;
    default: the running Python's)."""
    env = dict(environment) if environment is not None else None
    return [r for r in requirements if r.marker is None or r.marker.evaluate(env)]


def read_resolution(text: str) -> list[PinnedPackage]:
    """The packages of the pylock.toml (PEP 751) ``uv pip compile`` wrote, in its order.

    Raises DependencyError when the file cannot be read or a package pins
    no version or lists no wheel with a sha256.
    """
    try:
        packages = read_pylock(text, "pylock.toml")
    except LockError as exc:
        raise DependencyError(f"the resolver wrote an unreadable pylock.toml ({exc})") from exc
    for package in packages:
        _pinned_wheels(package)
    return list(packages)


def _pinned_wheels(
    package: PinnedPackage,
) -> tuple[ProjectName, str, list[tuple[str, str, Sha256]]]:
    """(project, version, wheels) of a resolved package, each wheel (filename, URL, sha256).

    Raises DependencyError when the package pins no version or lists no
    wheel with a sha256 and a location.
    """
    wheels = [
        (f.filename, f.url or f.path or "", f.sha256)
        for f in package.files
        if f.is_wheel and f.sha256 and (f.url or f.path)
    ]
    if not wheels or package.version is None:
        raise DependencyError(
            f"build dependency {package.label} {package.version} has no wheel "
            "with a sha256; build it first (fromsource build --with-build-deps)",
            category="build-deps-unresolvable",
        )
    return normalize(package.label), package.version, wheels


def best_wheel(filenames: Sequence[str], tags: Sequence[Tag]) -> int | None:
    """The index of the filename whose tags rank best in *tags* (most preferred first)."""
    rank = {tag: i for i, tag in enumerate(tags)}
    best: tuple[int, int] | None = None
    for index, filename in enumerate(filenames):
        try:
            wheel_tags = parse_wheel_filename(filename)[3]
        except ValueError:
            continue
        scores = [rank[t] for t in wheel_tags if t in rank]
        if scores and (best is None or min(scores) < best[0]):
            best = (min(scores), index)
    return None if best is None else best[1]


def uv_binary() -> str:
    """The uv executable that ships with fromsource (the ``uv`` dependency)."""
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise DependencyError(
                "uv is not installed; it is a dependency of fromsource: reinstall fromsource"
            ) from None
        return found


class OwnRepository:
    """The wheels of our own ``python`` repository, offered to the resolver."""

    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        *,
        repo: str = "python",
        public_url: str | None = None,
        tags: Sequence[Tag] | None = None,
        as_of: datetime | None = None,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.repo = repo
        self.public_url = public_url.rstrip("/") + "/" if public_url else None
        self.tags = list(tags) if tags is not None else list(sys_tags())
        self.as_of = as_of

    def wheels(self, project: str) -> list[FileInfo]:
        """Our compatible, unyanked wheels of *project* (published by :attr:`as_of`, if set)."""
        files = project_files(self.db, self.repo, normalize(project))
        return [
            f
            for f in files
            if f.kind == "wheel"
            and not f.yanked
            and (self.as_of is None or aware(f.upload_time) <= self.as_of)
            and best_wheel([f.filename], self.tags) is not None
        ]

    def closure(self, requirements: Iterable[Requirement]) -> list[FileInfo]:
        """Our wheels of every project reachable from *requirements* through our wheels."""
        seen: set[str] = set()
        todo = [normalize(r.name) for r in requirements]
        found: list[FileInfo] = []
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for info in self.wheels(name):
                found.append(info)
                if info.metadata_sha256 and self.blobs.exists(info.metadata_sha256):
                    for text in requires_dist(self.blobs.read_bytes(info.metadata_sha256)):
                        try:
                            todo.append(normalize(Requirement(text).name))
                        except InvalidRequirement:
                            continue
        return found

    def link_into(self, files: Iterable[FileInfo], folder: Path) -> None:
        """Make *files* appear in *folder* (symlinks to local blobs, else copies)."""
        folder.mkdir(parents=True, exist_ok=True)
        for info in files:
            target = folder / info.filename
            if target.exists():
                continue
            local = self.blobs.local_path(info.sha256)
            if local is not None:
                target.symlink_to(local)
            else:
                copy_blob(self.blobs, info.sha256, target)

    def uri(self, info: FileInfo) -> str:
        """Where a client would fetch *info* from our index."""
        path = f"{self.repo}/files/{info.project}/{info.version}/{info.filename}"
        return f"{self.public_url}{path}" if self.public_url else f"fromsource:{path}"

    def find(self, project: str, version: str) -> FileInfo | None:
        """Our best wheel of *project* at exactly *version*, if any."""
        candidates = [w for w in self.wheels(project) if w.version == version]
        index = best_wheel([c.filename for c in candidates], self.tags)
        return None if index is None else candidates[index]


class Resolver:
    """Resolves build requirements to :class:`ResolvedWheel` values with ``uv pip compile``."""

    def __init__(
        self,
        *,
        upstream_url: str,
        work_dir: Path,
        own: OwnRepository | None = None,
        uv_cache: Path | None = None,
        python: str | None = None,
        tags: Sequence[Tag] | None = None,
        markers: Mapping[str, str] | None = None,
    ) -> None:
        self.upstream_url = upstream_url
        self.work_dir = work_dir
        self.own = own
        self.uv_cache = uv_cache
        self.python = python or sys.executable
        self.tags = list(tags) if tags is not None else list(sys_tags())
        self.markers = markers
        self.log: list[str] = []

    def resolve(self, requirements: Sequence[Requirement], *, what: str) -> list[ResolvedWheel]:
        """Exact wheels for *requirements* and everything they need (see the module doc).

        Raises DependencyError (category ``build-deps-unresolvable``) with
        uv's message when no set of binary wheels satisfies them.
        """
        requirements = applicable(requirements, self.markers)
        if not requirements:
            return []
        own_dir = self.work_dir / "own-wheels"
        own_files = self.own.closure(requirements) if self.own else []
        if self.own and own_files:
            self.own.link_into(own_files, own_dir)
            only_ours = self._compile(requirements, own_dir, upstream=False, what=what)
            if only_ours is not None:
                return self._choose(only_ours, own_dir, what)
        with self._upstream() as proxy:
            locked = self._compile(
                requirements, own_dir if own_files else None, upstream=proxy, what=what
            )
        assert locked is not None  # an online failure raised
        return self._choose(locked, own_dir, what, proxy)

    def _upstream(self) -> AbstractContextManager[IndexProxy | None]:
        """The link-filtering proxy uv resolves against; none for a ``file:`` upstream
        (a folder the operator set up, whose ``file:`` links are its own)."""
        if self.upstream_url.startswith("file:"):
            return nullcontext()
        return IndexProxy(self.upstream_url)

    def _compile(
        self,
        requirements: Sequence[Requirement],
        find_links: Path | None,
        *,
        upstream: IndexProxy | None | Literal[False],
        what: str,
    ) -> list[PinnedPackage] | None:
        """uv's resolution over *find_links* and the upstream: through *upstream* (the
        proxy), directly (None: a ``file:`` upstream) or not at all (False); None when
        that last one fails."""
        offline = upstream is False
        self.work_dir.mkdir(parents=True, exist_ok=True)
        source = self.work_dir / "build-requirements.in"
        source.write_text("".join(f"{r}\n" for r in requirements))
        output = self.work_dir / "pylock.toml"
        output.unlink(missing_ok=True)
        command = [
            uv_binary(),
            "pip",
            "compile",
            "--no-config",
            "--quiet",
            "--only-binary",
            ":all:",
            "--format",
            "pylock.toml",
            "--no-header",
            "--python",
            self.python,
            "-o",
            str(output),
            str(source),
        ]
        if offline:
            command += ["--no-index"]
        if find_links is not None:
            command += ["--find-links", str(find_links)]
        # uv keys what it caches by index URL, and the proxy's is new each time: no cache.
        cache = self.uv_cache if upstream is False or upstream is None else None
        command += ["--cache-dir", str(cache)] if cache else ["--no-cache"]
        environment = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
        if upstream is not False:
            # In the environment, not on the command line others may read (ps).
            environment["UV_DEFAULT_INDEX"] = upstream.url if upstream else self.upstream_url
        self.log.append("$ uv pip compile " + ("(own repository only)" if offline else ""))
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=environment,
                timeout=_UV_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DependencyError(
                f"{what}: the resolver (uv) could not run ({exc})", category="internal"
            ) from exc
        if done.returncode != 0:
            message = (done.stderr or done.stdout).strip()
            if upstream:  # the proxy's pages by the upstream's name, and what it met there
                message = message.replace(upstream.url, upstream.client.base_url)
                if upstream.errors:
                    message += "\nthe upstream index: " + "; ".join(upstream.errors)
            self.log.append(message)
            if offline:
                return None
            raise DependencyError(
                f"{what}: build requirements {', '.join(map(str, requirements))} cannot be "
                f"resolved to wheels from the upstream index or our python repository: "
                f"{message[-2000:]}",
                category="build-deps-unresolvable",
            )
        return read_resolution(output.read_text())

    def _choose(
        self,
        locked: Sequence[PinnedPackage],
        own_dir: Path,
        what: str,
        proxy: IndexProxy | None = None,
    ) -> list[ResolvedWheel]:
        chosen = []
        for package in locked:
            project, version, wheels = _pinned_wheels(package)
            ours = self.own.find(project, version) if self.own else None
            if ours is not None:
                chosen.append(
                    ResolvedWheel(
                        project,
                        version,
                        ours.filename,
                        ours.sha256,
                        self.own.uri(ours) if self.own else "",
                        "fromsource",
                    )
                )
                continue
            remote = [
                (name, proxy.upstream_url(url) if proxy else url, sha256)
                for name, url, sha256 in wheels
                if not url.startswith(own_dir.as_uri())
            ]
            index = best_wheel([filename for filename, _url, _sha256 in remote], self.tags)
            if index is None:
                raise DependencyError(
                    f"{what}: no wheel of build dependency {project} "
                    f"{version} fits this Python ({self.tags[0]}); build it first",
                    category="build-deps-unresolvable",
                )
            filename, url, sha256 = remote[index]
            if not link_allowed(self.upstream_url, url):
                # uv follows any link a page gives; we never fetch one the upstream may not use.
                raise upstream_error(refused_link(filename, url, self.upstream_url))
            chosen.append(ResolvedWheel(project, version, filename, sha256, url, "bootstrap"))
        return sorted(chosen, key=lambda w: w.project)


def satisfied(
    requirements: Iterable[Requirement],
    installed: Iterable[ResolvedWheel],
    environment: Mapping[str, str] | None = None,
) -> bool:
    """Whether every requirement applicable in *environment* is met by a wheel of *installed*."""
    versions = {w.project: w.version for w in installed}
    for requirement in applicable(requirements, environment):
        version = versions.get(normalize(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            return False
    return True
