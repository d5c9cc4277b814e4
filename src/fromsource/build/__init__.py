"""The build pipeline: upstream sdist to sandboxed, reproducible, attested wheel.

The public surface, imported lazily (``fromsource.build.build_one``) so that
importing one small module of the package (``unpack``, ``normalize``) does
not pull in the whole pipeline:

- :func:`build_one`, :class:`BuildContext` (:mod:`.pipeline`): one release;
- :func:`build_release` (:mod:`.matrix`): one release for every target,
  once per distinct wheel;
- :func:`build_many` (:mod:`.batch`): many, with their dependencies;
- :func:`rebuild_check`, :func:`rebuild_matrix` (:mod:`.rebuild`):
  bit-for-bit comparison of two builds, per target;
- :class:`BuildOutcome`, :class:`RebuildReport`, :data:`CATEGORIES`,
  :class:`ProgressEvent` (:mod:`.outcome`): what builds report;
- :func:`list_builds`, :func:`get_build`, :func:`create_build`
  (:mod:`.history`): the build history.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CATEGORIES",
    "BuildContext",
    "BuildOutcome",
    "ProgressEvent",
    "RebuildReport",
    "build_many",
    "build_one",
    "build_release",
    "create_build",
    "get_build",
    "list_builds",
    "rebuild_check",
    "rebuild_matrix",
]

_WHERE = {
    "CATEGORIES": "outcome",
    "BuildContext": "context",
    "BuildOutcome": "outcome",
    "ProgressEvent": "outcome",
    "RebuildReport": "outcome",
    "build_many": "batch",
    "build_one": "pipeline",
    "build_release": "matrix",
    "create_build": "history",
    "get_build": "history",
    "list_builds": "history",
    "rebuild_check": "rebuild",
    "rebuild_matrix": "rebuild",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'fromsource.build' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fromsource.build.{module}"), name)
