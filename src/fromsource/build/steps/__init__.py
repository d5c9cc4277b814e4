"""The build pipeline's steps: each a function from plain values to a plain value.

:func:`fromsource.build.pipeline.build_one` runs them in this order (DESIGN.md
"The build pipeline"), times each one, records what it returned in the
build's row, and turns an error raised by a step into the build's outcome:

1. :func:`fetch`: the sdist, checked against the upstream digest, archived;
2. :func:`unpack`: safely, and PKG-INFO must name the release;
3. :func:`patch`: the remediation series, if any;
4. :func:`read_system` and :func:`resolve`: the sandboxed environment, a
   Rust build's crates (:func:`crates`), the build dependencies pinned to
   wheels, the build key;
5. in the sandbox, :func:`prepare` (venv and pinned wheels),
   :func:`backend_requires` (what the backend asks for), :func:`complete`
   (pinning and installing that too) and :func:`build` (the wheel, checked);
6. :func:`repair`: manylinux repair of an extension wheel, in the sandbox;
7. :func:`describe`: the SBOM;
8. :func:`normalize`: the canonical wheel, SBOM embedded;
9. :func:`attest`: the signed provenance statement;
10. :func:`publish`: into the repository.

A build is for one :class:`~fromsource.build.targets.Target` (the request's):
its interpreter makes the venv, its markers and tags pin the build
dependencies, its tags and glibc are in the build key.

Steps take the :class:`~fromsource.build.context.BuildContext` for the
services they use, never touch the build's row, and raise subclasses of
:class:`~fromsource.errors.FromsourceError` carrying a failure category.

One module per family: :mod:`.values` (what the steps hand each other),
:mod:`.sdist` (1-3 and :func:`read_system`), :mod:`.dependencies` (4),
:mod:`.backend` (5), :mod:`.finish` (6-8), :mod:`.publishing` (9-10 and
:func:`requires_of`).  Callers use this package's names.
"""

from fromsource.build.steps.backend import backend_requires, build, complete, prepare
from fromsource.build.steps.dependencies import crates, resolve
from fromsource.build.steps.finish import describe, normalize, repair
from fromsource.build.steps.publishing import attest, publish, requires_of
from fromsource.build.steps.sdist import fetch, patch, read_system, unpack
from fromsource.build.steps.values import (
    BuildDeps,
    Release,
    Repaired,
    Request,
    Resolved,
    Sdist,
    Source,
    Wheel,
)

__all__ = [
    "BuildDeps",
    "Release",
    "Repaired",
    "Request",
    "Resolved",
    "Sdist",
    "Source",
    "Wheel",
    "attest",
    "backend_requires",
    "build",
    "complete",
    "crates",
    "describe",
    "fetch",
    "normalize",
    "patch",
    "prepare",
    "publish",
    "read_system",
    "repair",
    "requires_of",
    "resolve",
    "unpack",
]
