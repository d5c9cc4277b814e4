"""The build options commands share, and the build context they open from them.

``build``, ``rebuild``, ``adopt`` and ``worker`` take the same sandbox options
(:func:`sandbox_options`, handed to the command as one :class:`SandboxOptions`);
``build -r/--lock`` and ``adopt`` also share how a closure is built
(:func:`closure_options`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from fromsource.build.pipeline import BuildContext
from fromsource.build.sandbox import SandboxLimits
from fromsource.cli.common import err
from fromsource.config import Settings

__all__ = ["SandboxOptions", "closure_options", "live_progress", "sandbox_options"]

_MIB = 1 << 20


@dataclass(frozen=True)
class SandboxOptions:
    """Where builds fetch sdists from and how they are confined (``--upstream``,
    ``--allow-unsandboxed``, ``--timeout``, ``--memory``, ``--max-processes``)."""

    upstream: str | None
    limits: SandboxLimits
    allow_unsandboxed: bool

    def context(self, settings: Settings, *, agree: int | None = None) -> BuildContext:
        """Open the build context of *settings* with these options (see
        :meth:`BuildContext.from_settings`); the caller closes it."""
        return BuildContext.from_settings(
            settings,
            upstream=self.upstream,
            limits=self.limits,
            allow_unsandboxed=self.allow_unsandboxed,
            agree=agree,
        )


def _apply(func: Callable[..., Any], options: list[Callable[[Any], Any]]) -> Callable[..., Any]:
    for option in reversed(options):
        func = option(func)
    return func


def sandbox_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the sandbox options to a command; it receives them as ``sandbox: SandboxOptions``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        limits = SandboxLimits(
            timeout_seconds=kwargs.pop("timeout"),
            memory_bytes=kwargs.pop("memory") * _MIB,
            max_processes=kwargs.pop("max_processes"),
        )
        kwargs["sandbox"] = SandboxOptions(
            upstream=kwargs.pop("upstream"),
            limits=limits,
            allow_unsandboxed=kwargs.pop("allow_unsandboxed"),
        )
        return func(*args, **kwargs)

    return _apply(
        wrapper,
        [
            click.option(
                "--upstream",
                metavar="URL",
                help="Upstream simple index (default: FROMSOURCE_UPSTREAM, else pip's index).",
            ),
            click.option(
                "--allow-unsandboxed",
                is_flag=True,
                help="Build even when no sandbox is available (the provenance says so).",
            ),
            click.option(
                "--timeout",
                type=float,
                default=1800.0,
                show_default=True,
                help="Wall-clock seconds per sandboxed step.",
            ),
            click.option(
                "--memory",
                type=int,
                default=4096,
                show_default=True,
                help="Address-space limit per build process, in MB.",
            ),
            click.option(
                "--max-processes",
                type=int,
                default=512,
                show_default=True,
                help="Processes a build may run at once.",
            ),
        ],
    )


def closure_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--with-build-deps``, ``--retry-failed`` and ``--jobs`` (building many releases)."""
    return _apply(
        func,
        [
            click.option(
                "--with-build-deps",
                is_flag=True,
                help="First build from source the build dependencies that would come from "
                "upstream.",
            ),
            click.option(
                "--retry-failed",
                is_flag=True,
                help="Build again releases whose same inputs failed before (not retried by "
                "default).",
            ),
            click.option(
                "--jobs",
                "-j",
                type=click.IntRange(1, 64),
                default=1,
                show_default=True,
                help="Builds run at the same time.",
            ),
        ],
    )


def live_progress(fmt: str) -> bool:
    """Whether progress is a live view: stderr is a terminal and stdout is not JSON."""
    return err.is_terminal and fmt != "json"
