"""The build sandbox: no network, fixed path, nothing of the host, limits enforced."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import fromsource
from fromsource.build.sandbox import (
    BUILD_ROOT,
    Bind,
    Sandbox,
    SandboxLimits,
    Tool,
    bwrap_command,
    choose_tool,
    tool_available,
)
from fromsource.errors import SandboxError

PYTHON = str(Path(getattr(sys, "_base_executable", sys.executable)).resolve())
ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}

needs_bwrap = pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")
needs_unshare = pytest.mark.skipif(not tool_available("unshare"), reason="unshare cannot run here")


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    root = tmp_path / "work"
    root.mkdir()
    return Sandbox(root, tool="bwrap", limits=SandboxLimits(timeout_seconds=20))


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP listener on the host's 127.0.0.1 that records every connection."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    seen: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            seen.append("connection")
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join()
    server.close()


def py(sandbox: Sandbox, code: str, log: Path, **kwargs: object) -> tuple[int, str]:
    result = sandbox.run(
        [PYTHON, "-I", "-c", code],
        cwd=sandbox.root,
        env=ENV,
        log=log,
        **kwargs,  # type: ignore[arg-type]
    )
    return result.returncode, result.output


def test_bwrap_command_unshares_everything_and_clears_the_environment() -> None:
    command = bwrap_command(
        ["true"],
        binds=[Bind(Path("/srv/a"), "/fromsource/build", True), Bind(Path("/srv/b"), "/x")],
        env={"B": "2", "A": "1"},
        cwd="/fromsource/build",
        python_prefix=Path(sys.base_prefix),
    )
    for flag in ("--unshare-net", "--unshare-pid", "--unshare-user", "--clearenv", "--new-session"):
        assert flag in command
    assert "--disable-userns" in command and "--assert-userns-disabled" in command
    assert command[command.index("/srv/a") - 1] == "--bind"
    assert command[command.index("/srv/b") - 1] == "--ro-bind"
    assert command.index("/srv/a") < command.index("/srv/b")
    setenv = [command[i + 1] for i, part in enumerate(command) if part == "--setenv"]
    assert setenv == ["A", "B"]
    assert command[-2:] == ["--", "true"]


def test_choose_tool_refuses_without_isolation_unless_allowed() -> None:
    with pytest.raises(SandboxError, match="--allow-unsandboxed"):
        choose_tool(prefer="none")
    assert choose_tool(prefer="none", allow_unsandboxed=True) == "none"


@needs_bwrap
def test_the_tree_is_seen_at_the_fixed_path(sandbox: Sandbox, tmp_path: Path) -> None:
    (sandbox.host_root / "hello.txt").write_text("hi")
    code = "import os; print(os.getcwd()); print(open('hello.txt').read()); open('made','w')"
    status, output = py(sandbox, code, tmp_path / "log")
    assert status == 0, output
    assert output.split() == [BUILD_ROOT, "hi"]
    assert (sandbox.host_root / "made").exists()
    assert sandbox.inside(sandbox.host_root / "src" / "x") == f"{BUILD_ROOT}/src/x"
    assert sandbox.facts.to_json()["network"] == "none"


@needs_bwrap
def test_addresses_are_the_same_in_every_run(sandbox: Sandbox, tmp_path: Path) -> None:
    # Output ordered by object address (sets of objects) must not vary between builds.
    code = "print(id(object()), id([]), open('/proc/self/personality').read().strip())"
    runs = [py(sandbox, code, tmp_path / f"log{i}") for i in range(2)]
    assert all(status == 0 for status, _ in runs), runs
    first, second = (output.split() for _, output in runs)
    assert first == second
    assert int(first[2], 16) & 0x0040000  # ADDR_NO_RANDOMIZE
    assert sandbox.facts.to_json()["address_randomization"] is False


@needs_bwrap
def test_nothing_of_the_host_is_visible(sandbox: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "data" / "keys" / "signing-key.pem"
    secret.parent.mkdir(parents=True)
    secret.write_text("PRIVATE")
    os.environ["FROMSOURCE_TEST_SECRET"] = "leak"
    try:
        code = (
            "import os, sys\n"
            f"print(os.path.exists({str(secret)!r}), os.path.exists({str(tmp_path)!r}))\n"
            "print(os.environ.get('FROMSOURCE_TEST_SECRET'), os.getuid())\n"
            "print(os.path.exists('/etc/shadow'), os.path.exists('/opt'))\n"
            f"print(os.path.exists({sys.prefix!r}))\n"
        )
        status, output = py(sandbox, code, tmp_path / "log")
    finally:
        del os.environ["FROMSOURCE_TEST_SECRET"]
    assert status == 0, output
    # Never root: an unprivileged host uid when we are root, else "nobody" in a user namespace.
    uid = str(sandbox.build_uid if sandbox.build_uid is not None else 65534)
    assert uid != "0"
    assert output.split() == ["False", "False", "None", uid, "False", "False", "False"]


@needs_bwrap
def test_the_network_is_unreachable(
    sandbox: Sandbox, tmp_path: Path, listener: tuple[int, list[str]]
) -> None:
    port, seen = listener
    code = (
        "import socket\n"
        "for host in ('127.0.0.1', '10.0.0.1'):\n"
        "    s = socket.socket(); s.settimeout(3)\n"
        f"    print(host, s.connect_ex((host, {port})))\n"
    )
    status, output = py(sandbox, code, tmp_path / "log")
    assert status == 0, output
    codes = dict(line.split() for line in output.splitlines())
    assert codes["127.0.0.1"] != "0" and codes["10.0.0.1"] != "0"
    assert seen == []


@needs_bwrap
def test_the_timeout_kills_the_whole_tree(sandbox: Sandbox, tmp_path: Path) -> None:
    marker = f"fromsource-sleep-{os.getpid()}"
    start = time.monotonic()
    result = sandbox.run(
        [PYTHON, "-c", "import os, time; os.fork(); os.setsid(); time.sleep(60)", marker],
        cwd=sandbox.root,
        env=ENV,
        log=tmp_path / "log",
        timeout=1.5,
    )
    assert result.timed_out and not result.ok
    assert time.monotonic() - start < 10
    assert "wall-clock limit" in result.output
    time.sleep(0.3)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            assert marker.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue


@needs_bwrap
def test_the_process_limit_kills_a_fork_storm(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    box = Sandbox(root, tool="bwrap", limits=SandboxLimits(timeout_seconds=20, max_processes=16))
    result = box.run(
        ["sh", "-c", "for i in $(seq 40); do sleep 5 & done; wait"],
        cwd=box.root,
        env=ENV,
        log=tmp_path / "log",
    )
    # Stopped either by the kernel (RLIMIT_NPROC on the build's own uid: "Cannot fork")
    # or by the watchdog; in both cases at once and without the host feeling it.
    assert not result.ok
    assert result.process_limit_hit or "fork" in result.output.lower()
    assert result.seconds < 5


@needs_bwrap
def test_a_fork_bomb_is_capped_by_the_kernel(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    box = Sandbox(root, tool="bwrap", limits=SandboxLimits(timeout_seconds=20, max_processes=16))
    if box.build_uid is None:
        pytest.skip("the kernel cap needs the server to run as root (builds get their own uid)")
    bomb = (
        "import os, time\n"
        "refused = 0\n"
        "for _ in range(2000):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30); os._exit(0)\n"
        "    except OSError:\n"
        "        refused += 1\n"
        "print('refused', refused, flush=True)\n"
        "time.sleep(30)\n"
    )
    result = box.run([PYTHON, "-c", bomb], cwd=box.root, env=ENV, log=tmp_path / "log")
    assert not result.ok and result.process_limit_hit, result.output
    assert result.seconds < 10


@needs_bwrap
def test_the_build_can_use_tmp_and_shared_memory(sandbox: Sandbox, tmp_path: Path) -> None:
    # When the server is root, bwrap made these root-only: a multiprocessing pool (a
    # semaphore in /dev/shm) then failed with "[Errno 13] Permission denied" (issue 18).
    code = (
        "import multiprocessing.pool, os\n"
        "with multiprocessing.pool.ThreadPool(2) as pool:\n"
        "    print(sum(pool.map(abs, [-1, -2])))\n"
        "for folder in ('/tmp', '/dev/shm'):\n"
        "    with open(folder + '/probe', 'w') as handle:\n"
        "        handle.write('x')\n"
        "    print(folder, oct(os.stat(folder).st_mode & 0o7777))\n"
    )
    status, output = py(sandbox, code, tmp_path / "log")
    assert status == 0, output
    assert output.split() == ["3", "/tmp", "0o1777", "/dev/shm", "0o1777"]


@needs_bwrap
def test_tmp_is_capped(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    box = Sandbox(root, tool="bwrap", limits=SandboxLimits(timeout_seconds=20, tmpfs_bytes=1 << 20))
    code = (
        "try:\n"
        "    with open('/tmp/big', 'wb') as handle:\n"
        "        handle.write(bytes(4 << 20))\n"
        "except OSError as exc:\n"
        "    print(exc.strerror)\n"
    )
    status, output = py(box, code, tmp_path / "log")
    assert status == 0 and output.strip() == "No space left on device", output


@needs_bwrap
def test_the_memory_limit_applies(tmp_path: Path) -> None:
    root = tmp_path / "w"
    root.mkdir()
    box = Sandbox(root, tool="bwrap", limits=SandboxLimits(memory_bytes=256 << 20))
    status, output = py(box, "b = bytearray(1 << 30); print('allocated')", tmp_path / "log")
    assert status != 0
    assert "MemoryError" in output


@needs_unshare
def test_unshare_fallback_cuts_the_network(tmp_path: Path, listener: tuple[int, list[str]]) -> None:
    port, seen = listener
    root = tmp_path / "w"
    root.mkdir()
    box = Sandbox(root, tool="unshare", limits=SandboxLimits(timeout_seconds=20))
    code = f"import socket; s = socket.socket(); s.settimeout(3); print(s.connect_ex(('127.0.0.1', {port})))"
    status, output = py(box, code, tmp_path / "log")
    assert status == 0, output
    assert output.strip() != "0"
    assert seen == []
    assert box.facts.isolated and box.facts.build_path is None
    assert box.inside(root / "x") == str((root / "x").resolve())


# A build that could make a user namespace would be root in it (issue 18): both the
# syscall and the unshare tool must be refused, whichever tool and caller set it up.
_TRY_USERNS = """
import ctypes, os, shutil, subprocess
libc = ctypes.CDLL(None, use_errno=True)
refused = libc.unshare(0x10000000) != 0  # CLONE_NEWUSER
print("syscall", "refused" if refused else "allowed", os.strerror(ctypes.get_errno()))
if shutil.which("unshare"):
    done = subprocess.run(["unshare", "-Ur", "true"], capture_output=True)
    print("tool", "refused" if done.returncode else "allowed")
"""


def _userns_verdicts(output: str) -> dict[str, str]:
    return {line.split()[0]: line.split()[1] for line in output.splitlines() if line.strip()}


@pytest.mark.parametrize("tool", ["bwrap", "unshare"])
def test_a_build_cannot_create_a_user_namespace(tmp_path: Path, tool: Tool) -> None:
    if not tool_available(tool):
        pytest.skip(f"{tool} cannot run here")
    root = tmp_path / "w"
    root.mkdir()
    box = Sandbox(root, tool=tool, limits=SandboxLimits(timeout_seconds=20))
    status, output = py(box, _TRY_USERNS, tmp_path / "log")
    assert status == 0, output
    verdicts = _userns_verdicts(output)
    assert verdicts["syscall"] == "refused", output
    assert verdicts.get("tool", "refused") == "refused", output
    assert box.facts.to_json()["user_namespaces"] == "refused"
    assert Sandbox(root, tool="none").facts.user_namespaces == "allowed"


_SYSTEM_PYTHON = Path("/usr/bin/python3")
_NOBODY = 65534


def _as_nobody(code: str, pythonpath: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["setpriv", f"--reuid={_NOBODY}", f"--regid={_NOBODY}", "--clear-groups", "--"]
        + [str(_SYSTEM_PYTHON), "-c", code],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": pythonpath, "LC_ALL": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(
    os.geteuid() != 0 or not _SYSTEM_PYTHON.exists() or shutil.which("setpriv") is None,
    reason="needs root (to become another user) and the system's python3",
)
@pytest.mark.parametrize("tool", ["bwrap", "unshare"])
def test_user_namespaces_are_refused_to_builds_of_an_unprivileged_server(tool: Tool) -> None:
    # The same sandbox code run by a server that is not root: bwrap then makes the
    # user namespace itself and unshare maps the build to root in one.
    source = str(Path(fromsource.__file__).resolve().parents[1])
    probe = _as_nobody("import fromsource.build.sandbox", source)
    if probe.returncode != 0:
        pytest.skip(f"the system python3 cannot import fromsource as nobody: {probe.stderr}")
    with tempfile.TemporaryDirectory(prefix="fromsource-nobody-") as folder:
        os.chown(folder, _NOBODY, _NOBODY)
        code = (
            "import sys\n"
            "from pathlib import Path\n"
            "from fromsource.build.sandbox import Sandbox, SandboxLimits, tool_available\n"
            f"if not tool_available({tool!r}): sys.exit(77)\n"
            f"root = Path({folder!r}) / 'w'\n"
            "root.mkdir()\n"
            f"box = Sandbox(root, tool={tool!r}, limits=SandboxLimits(timeout_seconds=20))\n"
            f"argv = [sys.executable, '-I', '-c', {_TRY_USERNS!r}]\n"
            "env = {'PATH': '/usr/bin:/bin'}\n"
            f"result = box.run(argv, cwd=box.root, env=env, log=Path({folder!r}) / 'log')\n"
            "print(result.output, end='')\n"
            "sys.exit(result.returncode)\n"
        )
        done = _as_nobody(code, source)
    if done.returncode == 77:
        pytest.skip(f"{tool} cannot run here for an unprivileged user")
    assert done.returncode == 0, done.stdout + done.stderr
    verdicts = _userns_verdicts(done.stdout)
    assert verdicts["syscall"] == "refused", done.stdout
    assert verdicts.get("tool", "refused") == "refused", done.stdout
