"""What a build needs from outside, and the lookups it makes before building.

:class:`BuildContext` carries the stores, the upstream index, the signing
key and the sandbox limits; :func:`pick_version`, :func:`find_sdist` and
:func:`published_wheel` decide which release to build and whether it is
already there; :func:`host_facts` names the Python, platform and toolchain
that go into the build key.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass, field
from email.parser import BytesParser
from functools import cache
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import sys_tags
from packaging.version import Version

from fromsource.bounded import OutputLimits
from fromsource.build.deps import best_wheel
from fromsource.build.sandbox import SandboxLimits, Tool, choose_tool
from fromsource.build.upstream import Upstream
from fromsource.build.upstream_pages import dist_of, python_ok
from fromsource.config import Settings, upstream_url
from fromsource.errors import UpstreamError
from fromsource.indexclient import ProjectFile, redact
from fromsource.provenance.keys import SigningKey
from fromsource.provenance.keystore import load_or_create_signing_key
from fromsource.store.blobs import BlobStore, open_blob_store
from fromsource.store.catalog import FileInfo, project_files
from fromsource.store.db import Database, open_database

__all__ = [
    "BuildContext",
    "find_sdist",
    "host_facts",
    "pick_version",
    "published_wheel",
    "requires_dist",
]


@dataclass(frozen=True)
class BuildContext:
    """Everything a build needs from the outside: stores, upstream, key, limits."""

    db: Database
    blobs: BlobStore
    upstream: Upstream
    upstream_url: str
    signing_key: SigningKey
    work_root: Path
    cache_dir: Path
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    allow_unsandboxed: bool = False
    sandbox_tool: Tool | None = None
    public_url: str | None = None
    keep_work: bool = False
    output_limits: OutputLimits = field(default_factory=OutputLimits)
    """Caps on what the host reads from a build's output (:mod:`fromsource.bounded`)."""
    serve_sdists: bool = True
    """Publish the release's sdist beside its wheel (:mod:`fromsource.build.sdists`)."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        upstream: str | None = None,
        limits: SandboxLimits | None = None,
        allow_unsandboxed: bool = False,
        sandbox_tool: Tool | None = None,
    ) -> BuildContext:
        """Open the database, blob store, upstream and signing key named by *settings*."""
        url = upstream or upstream_url(settings)
        url = url if url.endswith("/") else url + "/"
        return cls(
            db=open_database(settings.resolved_database_url),
            blobs=open_blob_store(settings.resolved_blob_url),
            upstream=Upstream(url, cache_dir=settings.data_dir / "cache" / "upstream"),
            upstream_url=url,
            signing_key=load_or_create_signing_key(settings.key_dir),
            work_root=settings.work_root,
            cache_dir=settings.data_dir / "cache",
            limits=limits or SandboxLimits(),
            allow_unsandboxed=allow_unsandboxed,
            sandbox_tool=sandbox_tool,
            public_url=settings.public_url,
            output_limits=OutputLimits.from_settings(settings),
            serve_sdists=settings.serve_sdists,
        )

    def close(self) -> None:
        """Close the upstream client and the database connections."""
        self.upstream.close()
        self.db.dispose()

    def tool(self) -> Tool:
        """The sandbox tool builds use (SandboxError when none and not allowed)."""
        return choose_tool(allow_unsandboxed=self.allow_unsandboxed, prefer=self.sandbox_tool)


@cache
def host_facts() -> tuple[str, str, str]:
    """(Python version, platform, toolchain) of the builds this process runs."""
    toolchain = "no C compiler"
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler:
        try:
            done = subprocess.run(
                [compiler, "--version"], capture_output=True, text=True, timeout=30, check=False
            )
            toolchain = (done.stdout.splitlines() or [toolchain])[0]
        except (OSError, subprocess.TimeoutExpired):
            pass
    libc = " ".join(platform.libc_ver())
    return platform.python_version(), sysconfig.get_platform(), f"{toolchain}; {libc}".strip()


def pick_version(upstream: Upstream, requirement: Requirement) -> str:
    """The version to build for *requirement*: the pinned one, else the newest match with an sdist.

    Raises UpstreamError (category ``not-found``) when nothing matches.
    """
    specs = list(requirement.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    python = ".".join(platform.python_version_tuple()[:2])
    versions = []
    for file in upstream.project_files(requirement.name):
        dist = dist_of(file, requirement.name)
        if dist is None or dist.kind != "sdist" or file.yanked or not python_ok(file, python):
            continue
        if requirement.specifier.contains(dist.version):
            versions.append(dist.version)
    if not versions:
        raise UpstreamError(
            f"no release of {requirement.name} matching {requirement.specifier or 'any version'} "
            f"with an sdist on {redact(upstream.base_url)}",
            category="not-found",
        )
    return str(max(versions))


def find_sdist(upstream: Upstream, project: str, version: str) -> ProjectFile:
    """The sdist of the release; UpstreamError with category no-sdist or not-found."""
    try:
        return upstream.find_sdist(project, version)
    except UpstreamError as exc:
        if set(exc.facts) != {"project", "version"}:
            raise
        wanted = Version(version)
        exists = any(
            (dist := dist_of(f, project)) is not None and dist.version == wanted
            for f in upstream.project_files(project)
        )
        category = "no-sdist" if exists else "not-found"
        raise UpstreamError(exc.message, category=category, **exc.facts) from exc


def published_wheel(db: Database, repo: str, project: str, version: str) -> FileInfo | None:
    """A wheel of *project* *version* in *repo* that this interpreter can use, if any.

    A wheel for another platform (built by another worker) does not count.
    """
    wanted = Version(version)
    candidates = [
        info
        for info in project_files(db, repo, project)
        if info.kind == "wheel" and Version(info.version) == wanted
    ]
    index = best_wheel([c.filename for c in candidates], list(sys_tags()))
    return None if index is None else candidates[index]


def requires_dist(metadata: bytes) -> tuple[str, ...]:
    """The Requires-Dist lines of a METADATA file."""
    message = BytesParser().parsebytes(metadata, headersonly=True)
    return tuple(str(v) for v in message.get_all("Requires-Dist") or [])
