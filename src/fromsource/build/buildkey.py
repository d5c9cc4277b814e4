"""The build key: one digest over every input of a build.

Two builds with the same key are expected to give the same wheel, so a key
that already built successfully is never built again (DESIGN.md "A build
whose inputs ... were built before is not built again").  The inputs are the
sdist digest, the patches, the local version label, the repository, the
exact build dependencies (file name and digest), the target (the Python,
its wheel tags and glibc), the platform and compiler, the manylinux repair
tools, the builder's version and the sandbox's shape (tool, network, fixed
build path); for a Rust build also each crate's digest, the Rust toolchain
(``rustc -vV``, ``cargo -V``) and where the crates came from (issue 13).  Limits (timeout, memory) are left out: they decide
whether a build finishes, not what it produces, and only successful keys
are remembered.

Pure: the host facts are gathered elsewhere and passed in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

__all__ = ["KEY_SCHEMA", "BuildInputs", "build_key"]

KEY_SCHEMA = 2
"""Bumped whenever the meaning of the key changes (old keys then never match)."""


@dataclass(frozen=True)
class BuildInputs:
    """Everything a build's output may depend on."""

    project: str
    version: str
    repo: str
    sdist_sha256: str
    patch_sha256: tuple[str, ...]
    local_version: str | None
    dependencies: tuple[tuple[str, str], ...]
    """(wheel filename, sha256) of every pinned build dependency, sorted."""
    python: str
    platform: str
    toolchain: str
    builder_version: str
    sandbox_tool: str
    sandbox_network: str
    build_path: str | None
    target: str = ""
    """The target's wheel tag (``cp312-cp312-linux_x86_64``): the ABI the build is for."""
    glibc: str | None = None
    """The target's C library version (manylinux repair depends on it)."""
    repair_tools: str = ""
    """The versions of the manylinux repair tools (auditwheel, patchelf)."""
    rust: tuple[tuple[str, str], ...] = ()
    """A Rust build's crates and toolchain, (name, value) pairs
    (:meth:`~fromsource.build.crates.CrateSet.key_parts`); empty without Rust."""

    @staticmethod
    def pins(wheels: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """Dependencies in the canonical (sorted, de-duplicated) order."""
        return tuple(sorted(set(wheels)))


def build_key(inputs: BuildInputs) -> str:
    """The hex sha256 of the canonical JSON of *inputs* (and the key schema)."""
    document = {"schema": KEY_SCHEMA, **asdict(inputs)}
    document["dependencies"] = [list(pin) for pin in BuildInputs.pins(inputs.dependencies)]
    # Left out without Rust, so the keys of other builds stay what they were; a Rust
    # build's key always differs from one made before crates were part of it.
    rust = document.pop("rust")
    if rust:
        document["rust"] = [list(part) for part in BuildInputs.pins(inputs.rust)]
    payload = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
