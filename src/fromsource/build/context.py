"""What a build needs from outside: the wiring of settings to services.

:class:`BuildContext` carries the stores, the upstream index, the signing
key, the sandbox limits, the build targets (interpreters, discovered once)
and where Rust crates and the Rust toolchain come from, opened from the
settings.  Which release to
build and whether it is there is :mod:`fromsource.build.release`; the
steps themselves are :mod:`fromsource.build.steps`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fromsource.bounded import OutputLimits
from fromsource.build.interpreters import discover_targets, running_target
from fromsource.build.sandbox import SandboxLimits, Tool, choose_tool
from fromsource.build.targets import Target, selected_targets
from fromsource.build.upstream import Upstream
from fromsource.config import Settings, agree_level, upstream_url
from fromsource.errors import TargetError
from fromsource.provenance.keys import SigningKey
from fromsource.provenance.keystore import load_or_create_signing_key
from fromsource.store.blobs import BlobStore, open_blob_store
from fromsource.store.db import Database, open_database

__all__ = ["BuildContext", "build_targets"]


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
    targets: tuple[Target, ...] = ()
    """The interpreters releases are built for, oldest first (empty: the running one)."""
    serve_sdists: bool = True
    """Publish the release's sdist beside its wheel (:mod:`fromsource.build.sdists`)."""
    crates: tuple[str, ...] = ()
    """Crate sources for Rust builds, tried after the blob store (the ``crates`` setting:
    crate folders, ``file:`` URLs, sparse registries; docs/building.md "Rust")."""
    rust_toolchain: Path | None = None
    """The Rust toolchain folder (the ``rust_toolchain`` setting); None: the host's rustc."""
    agree: int = 1
    """How many independent builds must make the same wheel before it is published
    (:mod:`fromsource.build.agree`; 1: a build publishes alone)."""
    publish_irreproducible: bool = False
    """Publish the wheel of a release whose independent builds differ anyway (an operator's
    explicit override, recorded in its provenance)."""

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        upstream: str | None = None,
        limits: SandboxLimits | None = None,
        allow_unsandboxed: bool = False,
        sandbox_tool: Tool | None = None,
        agree: int | None = None,
    ) -> BuildContext:
        """Open the database, blob store, upstream and signing key named by *settings*.

        *agree* (default: the settings', :func:`~fromsource.config.agree_level`) is how
        many independent builds must agree before a wheel is published.
        """
        url = upstream or upstream_url(settings)
        url = url if url.endswith("/") else url + "/"
        targets = build_targets(settings)
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
            targets=targets,
            serve_sdists=settings.serve_sdists,
            crates=tuple(settings.crates),
            rust_toolchain=settings.rust_toolchain,
            agree=agree or agree_level(settings),
        )

    def close(self) -> None:
        """Close the upstream client and the database connections."""
        self.upstream.close()
        self.db.dispose()

    def tool(self) -> Tool:
        """The sandbox tool builds use (SandboxError when none and not allowed)."""
        return choose_tool(allow_unsandboxed=self.allow_unsandboxed, prefer=self.sandbox_tool)

    def build_targets(self) -> tuple[Target, ...]:
        """The targets releases are built for: :attr:`targets`, else the running interpreter."""
        return self.targets or (running_target(),)


def build_targets(settings: Settings) -> tuple[Target, ...]:
    """The targets *settings* choose (``pythons``, ``build_pythons``), discovered once.

    Raises TargetError when none is found or chosen.
    """
    found = discover_targets(settings.pythons)
    chosen = selected_targets(found.targets, settings.build_pythons)
    if not chosen:
        names = ", ".join(t.name for t in found.targets) or "none"
        raise TargetError(
            f"no build target: found {names}, and the build_pythons setting "
            f"({', '.join(settings.build_pythons) or 'default'}) chooses none of them; "
            "see fromsource targets (docs/building.md, Targets)",
            found=names,
        )
    return chosen
