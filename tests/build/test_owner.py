"""Who owns a build, and whether that process still lives."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from fromsource.build.owner import (
    UNKNOWN_START,
    Host,
    Owner,
    judge,
    process_start,
    this_host,
    this_process,
)

HERE = Host("builder-1", "boot-a")


def starts(table: dict[int, int | None]):  # type: ignore[no-untyped-def]
    return lambda pid: table.get(pid)


def test_the_owner_text_round_trips_and_junk_is_no_owner() -> None:
    owner = Owner("builder-1", "boot-a", 4321, 987654)
    assert Owner.from_text(owner.to_text()) == owner
    unknown_start = Owner("builder-1", "", 7, None)
    assert Owner.from_text(unknown_start.to_text()) == unknown_start
    for junk in (None, "", "builder-1 4321", "a b c d e", "host pid 1 boot"):
        assert Owner.from_text(junk) is None


def test_judge_tells_live_dead_reused_rebooted_and_foreign_owners_apart() -> None:
    alive = Owner("builder-1", "boot-a", 100, 5000)
    assert judge(alive, HERE, starts({100: 5000})) == "alive"
    assert judge(alive, HERE, starts({})) == "gone"
    # The same pid, started later: a new process reused the number.
    assert judge(alive, HERE, starts({100: 5001})) == "gone"
    # The host rebooted since the row was written: every process of that boot is gone,
    # even one whose pid and start tick happen to match.
    assert judge(Owner("builder-1", "boot-old", 100, 5000), HERE, starts({100: 5000})) == "gone"
    # Another host's build is left to the fleet's claim expiry, whatever runs here.
    assert judge(Owner("builder-2", "boot-a", 100, 5000), HERE, starts({})) == "elsewhere"
    assert judge(None, HERE, starts({})) == "unknown"
    # Where start times cannot be read, a live pid counts as the owner.
    assert judge(alive, HERE, starts({100: UNKNOWN_START})) == "alive"


def test_this_process_is_alive_and_a_dead_child_is_gone() -> None:
    me = this_process()
    assert me.pid == os.getpid() and me.host == this_host().name
    assert me.started is not None and process_start(me.pid) == me.started
    assert judge(me, this_host(), process_start) == "alive"

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_start(child.pid)
        assert started is not None and started >= me.started
        owner = Owner(me.host, me.boot, child.pid, started)
        assert judge(owner, this_host(), process_start) == "alive"
        child.kill()
        child.wait()
        assert process_start(child.pid) is None
        assert judge(owner, this_host(), process_start) == "gone"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_zombie_counts_as_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # Not reaped yet: the process is a zombie until wait().
        for _ in range(200):
            with open(f"/proc/{child.pid}/stat") as handle:
                stat = handle.read()
            if stat.rpartition(")")[2].split()[0] == "Z":
                break
            time.sleep(0.01)
        assert process_start(child.pid) is None
    finally:
        child.wait()
