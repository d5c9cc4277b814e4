"""Server workers die with the ``fromsource serve`` process that supervises them.

``serve`` runs the HTTP server as a supervising process with worker
processes (granian always; uvicorn with ``--workers`` above 1).  When the
supervisor dies hard (kill -9, an OOM kill) nothing stops its workers: one
left behind keeps answering on the port with stale caches, and a restart
finds the address in use (issue 18).  So the app factory, which runs in each
worker, calls :func:`bind_to_supervisor`, which

- asks Linux to send the worker SIGTERM when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``);
- checks at once that its parent is still the supervisor (it may have died
  before the prctl, even before the worker started: then it exits at once);
- watches its parent from a daemon thread, because the parent-death signal
  follows the *thread* that forked the worker and does not exist outside
  Linux.

A worker whose supervisor is gone sends itself SIGTERM (the server's own
graceful stop) and, if it still runs *grace* seconds later, exits.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import MutableMapping

__all__ = ["SUPERVISOR_ENV", "bind_to_supervisor", "mark_supervisor"]

SUPERVISOR_ENV = "FROMSOURCE_SERVE_PID"
"""The environment variable through which workers learn their supervisor's pid."""

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_EXIT_ORPHANED = 70


def mark_supervisor(environ: MutableMapping[str, str] = os.environ) -> None:
    """Name the calling process as the supervisor of the workers it will start."""
    environ[SUPERVISOR_ENV] = str(os.getpid())


def bind_to_supervisor(
    environ: MutableMapping[str, str] = os.environ,
    *,
    interval: float = 0.5,
    grace: float = 5.0,
) -> bool:
    """Make this worker die with its supervisor; False when this process is not a worker.

    Not a worker: no supervisor named in *environ*, or this process is the
    supervisor itself (uvicorn with one worker serves in-process).  Checks the
    parent every *interval* seconds.
    """
    text = environ.get(SUPERVISOR_ENV, "")
    if not text.isdigit() or int(text) == os.getpid():
        return False
    supervisor = int(text)
    _parent_death_signal(signal.SIGTERM)
    if os.getppid() != supervisor:
        _say_gone()
        os._exit(_EXIT_ORPHANED)  # nothing served yet: nothing to stop gracefully
    watcher = threading.Thread(
        target=_watch, args=(supervisor, interval, grace), name="supervisor-watch", daemon=True
    )
    watcher.start()
    return True


def _parent_death_signal(signum: int) -> bool:
    """Ask the kernel for *signum* when the parent dies; False where that cannot be done."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch(supervisor: int, interval: float, grace: float) -> None:
    while os.getppid() == supervisor:
        time.sleep(interval)
    _leave(grace)


def _say_gone() -> None:
    print(
        f"fromsource: the serve process that started worker {os.getpid()} is gone; stopping",
        file=sys.stderr,
        flush=True,
    )


def _leave(grace: float) -> None:
    """Stop this orphaned worker: gracefully first, then for good."""
    _say_gone()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    os._exit(_EXIT_ORPHANED)
