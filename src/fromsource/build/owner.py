"""Who runs a build: the owning process, recorded on its row, and whether it still lives.

A build row records its owner (``builds.owner``, migration 0003) when it is
created and again when it goes ``running``: host name, boot id, process id
and the process's start time.  The start time is what tells a live owner
from a new process that happens to have the same pid; the boot id tells a
row left behind before a reboot.  :func:`judge` is the pure rule, the
``/proc`` readers are the I/O.

Owners are told apart by host name, as the fleet's claims are: builders that
share a database must have distinct host names.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

__all__ = [
    "UNKNOWN_START",
    "Host",
    "Owner",
    "Verdict",
    "judge",
    "process_start",
    "this_host",
    "this_process",
]

Verdict = Literal["alive", "gone", "elsewhere", "unknown"]
"""``alive``: the owner runs; ``gone``: it died (or its host rebooted); ``elsewhere``:
another host's, left to the fleet's claim expiry; ``unknown``: no owner recorded."""

UNKNOWN_START = -1
"""What :func:`process_start` says of a live process whose start time cannot be read."""

_PROC = Path("/proc")


@dataclass(frozen=True)
class Host:
    """This machine as owners name it: host name and boot id (empty when unknown)."""

    name: str
    boot: str


@dataclass(frozen=True)
class Owner:
    """One process on one host in one boot; *started* is in clock ticks since boot."""

    host: str
    boot: str
    pid: int
    started: int | None

    def to_text(self) -> str:
        """The form stored in ``builds.owner``: ``host pid started boot``."""
        started = "-" if self.started is None else str(self.started)
        return f"{self.host or '-'} {self.pid} {started} {self.boot or '-'}"

    @classmethod
    def from_text(cls, text: str | None) -> Owner | None:
        """Parse :meth:`to_text`; None for an empty or malformed value."""
        parts = (text or "").split()
        if len(parts) != 4 or not parts[1].isdigit():
            return None
        host, pid, started, boot = parts
        return cls(
            "" if host == "-" else host,
            "" if boot == "-" else boot,
            int(pid),
            int(started) if started.isdigit() else None,
        )

    def describe(self) -> str:
        """``process 1234 on host`` (for messages)."""
        return f"process {self.pid} on {self.host}"


def judge(owner: Owner | None, here: Host, start_of: Callable[[int], int | None]) -> Verdict:
    """Whether *owner* still runs, seen from *here*.

    *start_of(pid)* is the start time of a live process *pid*, None when no
    such process lives (a zombie counts as dead), or :data:`UNKNOWN_START`
    when it lives but its start time cannot be read.  Pure.
    """
    if owner is None:
        return "unknown"
    if owner.host != here.name:
        return "elsewhere"
    if owner.boot and here.boot and owner.boot != here.boot:
        return "gone"  # the host rebooted since: every process of that boot is gone
    started = start_of(owner.pid)
    if started is None:
        return "gone"
    if owner.started is not None and started not in (owner.started, UNKNOWN_START):
        return "gone"  # the pid was reused by a newer process
    return "alive"


def process_start(pid: int) -> int | None:
    """When process *pid* started (ticks since boot); None when it is gone or a zombie.

    Without ``/proc`` (not Linux), a live process answers :data:`UNKNOWN_START`.
    """
    try:
        stat = (_PROC / str(pid) / "stat").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return _exists(pid)
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat.rpartition(")")[2].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19]) if fields[19].isdigit() else UNKNOWN_START


def _exists(pid: int) -> int | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, owned by someone else
    return UNKNOWN_START


@cache
def this_host() -> Host:
    """This machine's host name and boot id."""
    boot = ""
    with contextlib.suppress(OSError):
        boot = (_PROC / "sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    return Host(socket.gethostname(), boot)


def this_process() -> Owner:
    """The calling process as an owner."""
    here = this_host()
    pid = os.getpid()
    started = process_start(pid)
    return Owner(here.name, here.boot, pid, None if started == UNKNOWN_START else started)
