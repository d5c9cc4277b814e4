"""A server worker stops when its supervisor dies, by signal or by watching its parent.

The full story (a real ``serve`` killed with SIGKILL) is in tests/cli/test_serve.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from fromsource.build.owner import process_start
from fromsource.index.lifeline import SUPERVISOR_ENV, bind_to_supervisor


def test_bind_to_supervisor_is_a_no_op_outside_a_worker() -> None:
    assert bind_to_supervisor({}) is False
    assert bind_to_supervisor({SUPERVISOR_ENV: str(os.getpid())}) is False
    assert bind_to_supervisor({SUPERVISOR_ENV: "not a pid"}) is False


@pytest.mark.parametrize("death_signal", [True, False])
def test_a_worker_stops_soon_after_its_supervisor_is_killed(death_signal: bool) -> None:
    # Without the parent-death signal (other systems; a spawning thread that ended),
    # the watch on the parent alone must stop the worker.
    worker = textwrap.dedent(f"""\
        import time
        from fromsource.index import lifeline
        if not {death_signal!r}:
            lifeline._parent_death_signal = lambda signum: False
        assert lifeline.bind_to_supervisor(interval=0.1, grace=1.0)
        print("bound", flush=True)
        time.sleep(60)
        """)
    supervisor = textwrap.dedent(f"""\
        import os, subprocess, sys, time
        os.environ[{SUPERVISOR_ENV!r}] = str(os.getpid())
        child = subprocess.Popen([sys.executable, "-c", {worker!r}])
        print(child.pid, flush=True)
        time.sleep(60)
        """)
    parent = subprocess.Popen([sys.executable, "-c", supervisor], stdout=subprocess.PIPE, text=True)
    child, started = 0, None
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        started = process_start(child)
        assert parent.stdout.readline().strip() == "bound"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        killed = time.monotonic()
        while process_start(child) == started and time.monotonic() - killed < 5:
            time.sleep(0.05)
        assert process_start(child) != started, "the worker outlived its supervisor"
        assert time.monotonic() - killed < 3
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
        if child and started is not None and process_start(child) == started:
            os.kill(child, signal.SIGKILL)
