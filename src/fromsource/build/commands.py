"""Running a helper command (an interpreter probe, auditwheel) behind a small Protocol.

The core modules that need a command run (:mod:`.targets` probes interpreters,
:mod:`.repair` runs auditwheel) take a :class:`CommandRunner`, so the same
code runs the command as a plain subprocess here and inside the build
sandbox once the pipeline hands it an adapter over
:meth:`fromsource.build.sandbox.Sandbox.run`.  :class:`SubprocessRunner` is
the plain one: a wall-clock timeout that kills the whole process group, and
stdout/stderr kept through temporary files and read back only up to a cap,
so a command that prints without end cannot fill the memory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Protocol

__all__ = ["MAX_OUTPUT_BYTES", "CommandResult", "CommandRunner", "SubprocessRunner"]

MAX_OUTPUT_BYTES = 4 << 20
"""How much of each of stdout and stderr a :class:`SubprocessRunner` keeps."""


@dataclass(frozen=True)
class CommandResult:
    """How a command ended: its status, what it printed (each capped) and how long it took."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """Whether the command exited with status 0 within its time."""
        return self.returncode == 0 and not self.timed_out


class CommandRunner(Protocol):
    """Runs *argv* and reports how it ended; never raises for the command's own failure.

    *argv*, *env* and the paths in them are host paths; an adapter that runs
    the command elsewhere (the sandbox) maps them.  *env* is the whole
    environment of the command (nothing is inherited).  Raises OSError only
    when the program cannot be started at all.
    """

    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str], timeout: float
    ) -> CommandResult: ...


class SubprocessRunner:
    """A :class:`CommandRunner` that runs the command as a subprocess of this one."""

    def __init__(self, *, max_output: int = MAX_OUTPUT_BYTES, cwd: str | None = None) -> None:
        self.max_output = max_output
        self.cwd = cwd

    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str], timeout: float
    ) -> CommandResult:
        """Run *argv*; at *timeout* seconds the whole process group is killed."""
        start = time.monotonic()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=dict(env),
                cwd=self.cwd,
                start_new_session=True,  # its own group, so a timeout ends its children too
            )
            timed_out = False
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(process)
            return CommandResult(
                returncode=process.returncode if process.returncode is not None else -9,
                stdout=self._read(out),
                stderr=self._read(err),
                seconds=time.monotonic() - start,
                timed_out=timed_out,
            )

    def _read(self, handle: IO[bytes]) -> str:
        handle.seek(0)
        return handle.read(self.max_output).decode("utf-8", "replace")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
