"""Run one build command in a sandbox: no network, a fixed path, limits.

The sandbox of a build is its host work tree bound at one fixed path,
:data:`BUILD_ROOT` (``/fromsource/build``), the same for every build, so paths
that end up in compiled code or generated files do not depend on where the
host put the work tree (DESIGN.md "The build pipeline", step 5; the recipe in
``../shared/corpus/README.md``).  With bubblewrap (``bwrap``):

- user, pid, uts, ipc and network namespaces are unshared (no network at all,
  only a loopback that is down); the user namespace also drops every
  capability, even when the server runs as root;
- the build cannot create a user namespace of its own (in one it would be
  root): bwrap's ``--disable-userns``, or, when the server runs as root, a
  user namespace made by the launcher whose ``user.max_user_namespaces`` is
  0; bwrap refuses to start unless it holds (``--assert-userns-disabled``);
- ``/tmp`` and ``/dev/shm`` are the sandbox's own tmpfs, sized, and writable
  whatever uid the build runs as;
- ``/usr`` (and the ``/bin``, ``/lib*`` links), a short list of ``/etc``
  files and the Python prefix are bound read-only one by one, plus the
  caller's read-only binds; nothing else of the host exists (no data dir, no
  signing key, no database, no home);
- the environment is cleared and set by the caller; umask 022;
- address-space layout randomization is off (personality ``ADDR_NO_RANDOMIZE``),
  so output that depends on object addresses is the same in two builds;
- a wall-clock timeout kills the whole process tree, an address-space limit
  (RLIMIT_AS, per process), a file-size limit and a process limit apply. The
  process limit is enforced by the kernel: when the server runs as root the
  build runs as its own unprivileged uid, so RLIMIT_NPROC binds it (uid 0 is
  exempt), and a pids cgroup is used where one can be made; a watchdog
  counting the sandbox's pid namespace then ends the build.

Without bwrap, ``unshare`` gives a network and pid namespace but no fixed
path (the build sees the host's files as the server's user does); the
launcher's user namespace allows ``unshare`` its own and the build none.
Without either, a build runs only when the caller allows it, and
:class:`SandboxFacts` says so (the provenance carries these facts; only
then may a build create user namespaces).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from fromsource.errors import SandboxError

__all__ = [
    "BUILD_ROOT",
    "TOOLS_ROOT",
    "Bind",
    "EnvOrder",
    "RunResult",
    "Sandbox",
    "SandboxFacts",
    "SandboxLimits",
    "Tool",
    "build_uid_for",
    "bwrap_command",
    "choose_tool",
    "tool_available",
]

BUILD_ROOT = "/fromsource/build"
"""Where a build's writable work tree is seen inside the sandbox."""

TOOLS_ROOT = "/fromsource/tools"
"""Where the read-only helpers (compiler wrapper, hook runner, uv) are seen."""

Tool = Literal["bwrap", "unshare", "none"]
EnvOrder = Literal["sorted", "reversed"]

_SANDBOX_UID = 65534  # "nobody": the build never runs as root inside the sandbox
_BUILD_UID_BASE, _BUILD_UID_SPAN = 200_000, 60_000  # host uids for builds when we are root
_HOSTNAME = "fromsource-build"
_ETC_FILES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "passwd",
    "group",
    "nsswitch.conf",
    "os-release",
    "debian_version",
    "protocols",
    "services",
    "mime.types",
)
_TOP_LEVEL = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_POLL_SECONDS = 0.2
_OUTPUT_LIMIT = 256 * 1024

# Runs before bwrap/unshare: sets the limits every sandboxed process inherits, and
# turns address-space randomization off for the build (personality
# ADDR_NO_RANDOMIZE, inherited across exec): tools that order objects by address
# (Python sets of objects hashed by id) then give the same output in two builds.
# It protects nothing here: the build already runs whatever code it likes.
#
# With a user-namespace budget (argv[4] >= 0) it first moves into a user
# namespace of its own and sets that namespace's user.max_user_namespaces to the
# budget: the sandbox tool may create that many namespaces below it, the build
# none (the limit counts at every level above the build, and the build has no
# capability in this namespace to raise it).  Root maps every id onto itself (a
# helper still outside writes the map), so the build keeps its own host uid and
# RLIMIT_NPROC still binds it; anyone else maps only their own ids.  This comes
# before the rlimits: an older kernel caps the new namespace's process count at
# its creator's RLIMIT_NPROC.
_LAUNCHER = """
import ctypes, os, resource, sys
mem, fsize, nproc, userns = (int(arg) for arg in sys.argv[1:5])
libc = ctypes.CDLL(None, use_errno=True)

def fail(what):
    sys.stderr.write(f"fromsource sandbox launcher: {what}\\n")
    os._exit(125)

def own_user_namespace(budget):
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        ready, go = os.pipe()
        helper = os.fork()
        if helper == 0:
            os.close(go)
            os.read(ready, 1)
            try:
                for name in ("uid_map", "gid_map"):
                    with open(f"/proc/{os.getppid()}/{name}", "w") as handle:
                        handle.write("0 0 4294967295\\n")
            except OSError:
                os._exit(1)
            os._exit(0)
        os.close(ready)
    if libc.unshare(0x10000000) != 0:  # CLONE_NEWUSER
        # Refused to us, refused to the build too (host limit, seccomp, LSM);
        # bwrap checks it again (--assert-userns-disabled).
        if uid == 0:
            os.close(go)
            os.waitpid(helper, 0)
        return
    if uid == 0:
        os.write(go, b"x")
        os.close(go)
        if os.waitpid(helper, 0)[1] != 0:
            fail("could not map the ids of its user namespace")
    else:
        try:
            for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                               ("gid_map", f"{gid} {gid} 1")):
                with open(f"/proc/self/{name}", "w") as handle:
                    handle.write(text + "\\n")
        except OSError as exc:
            fail(f"could not map the ids of its user namespace ({exc})")
    try:
        with open("/proc/sys/user/max_user_namespaces", "w") as handle:
            handle.write(str(budget))
    except OSError as exc:
        fail(f"could not forbid user namespaces to the build ({exc})")

if userns >= 0:
    own_user_namespace(userns)
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
if nproc > 0:
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
os.umask(0o022)
try:
    current = libc.personality(0xFFFFFFFF)
    if current != -1:
        libc.personality(current | 0x0040000)
except (OSError, AttributeError):
    pass
os.execvp(sys.argv[5], sys.argv[5:])
"""


@dataclass(frozen=True)
class SandboxLimits:
    """The limits of one sandboxed build (each command gets the full timeout)."""

    timeout_seconds: float = 1800.0
    memory_bytes: int = 4 << 30
    max_processes: int = 512
    max_file_bytes: int = 4 << 30
    tmpfs_bytes: int = 1 << 30
    """The size of each of the sandbox's own ``/tmp`` and ``/dev/shm`` (memory)."""


@dataclass(frozen=True)
class SandboxFacts:
    """What the provenance says about the sandbox a build ran in."""

    tool: Tool
    isolated: bool
    network: Literal["none", "host"]
    build_path: str | None
    limits: SandboxLimits
    user_namespaces: Literal["refused", "allowed"] = "refused"

    def to_json(self) -> dict[str, object]:
        """The facts as the statement's ``internalParameters.sandbox``."""
        return {
            "isolated": self.isolated,
            "tool": self.tool,
            "network": self.network,
            "build_path": self.build_path,
            "user_namespaces": self.user_namespaces,
            "timeout_seconds": self.limits.timeout_seconds,
            "memory_limit_bytes": self.limits.memory_bytes,
            "max_processes": self.limits.max_processes,
            "address_randomization": False,
        }


@dataclass(frozen=True)
class Bind:
    """A host path made visible at *target* inside the sandbox."""

    source: Path
    target: str
    writable: bool = False


@dataclass(frozen=True)
class RunResult:
    """How a sandboxed command ended; *output* is the tail of stdout+stderr."""

    returncode: int
    output: str
    seconds: float
    timed_out: bool = False
    process_limit_hit: bool = False

    @property
    def ok(self) -> bool:
        """Whether the command exited with status 0 within its limits."""
        return self.returncode == 0 and not self.timed_out and not self.process_limit_hit


def _system_binds(python_prefix: Path, extra_prefixes: Sequence[Path] = ()) -> list[str]:
    """bwrap arguments for the read-only system: /usr, top-level links, /etc files, Pythons."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _TOP_LEVEL:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    for name in _ETC_FILES:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    seen: set[Path] = set()
    for prefix in (python_prefix.resolve(), *(p.resolve() for p in extra_prefixes)):
        if not prefix.is_relative_to("/usr") and prefix not in seen:
            seen.add(prefix)
            args += ["--ro-bind", str(prefix), str(prefix)]
    return args


def bwrap_command(
    argv: Sequence[str],
    *,
    binds: Sequence[Bind],
    env: Mapping[str, str],
    cwd: str,
    python_prefix: Path,
    drop_uid: int | None = None,
    tmpfs_bytes: int = SandboxLimits.tmpfs_bytes,
    extra_prefixes: Sequence[Path] = (),
    env_order: EnvOrder = "sorted",
) -> list[str]:
    """The bwrap command line that runs *argv* in a fresh sandbox (pure but for reading links).

    The environment is set in *env_order* of its names: the build sees its
    ``environ`` in that order (two builds that must agree vary it, issue 17).

    *python_prefix* and *extra_prefixes* (the installations of the
    interpreters a build uses: a target's, besides the one running the
    compiler wrapper) are bound read-only at their own paths, as ``/usr`` is.

    *binds* are mounted in order after the system, so a later bind may sit
    inside an earlier one.  ``/tmp`` and ``/dev/shm`` are fresh tmpfs of
    *tmpfs_bytes* each, writable by everyone (sticky) whatever uid the build has.

    With *drop_uid* (the server runs as root), bwrap sets the sandbox up as
    root without a user namespace of its own and ``setpriv`` then runs *argv*
    as that unprivileged host uid with no capabilities and no new privileges.
    Why: the kernel exempts uid 0 from RLIMIT_NPROC, and inside a user
    namespace made by bwrap for root the build would still count as uid 0, so
    only a real unprivileged uid makes the process limit hold (a fork bomb is
    refused by the kernel, not raced by a watchdog).  Without *drop_uid*, an
    unprivileged caller gets a user namespace with the build as "nobody".

    Either way the build cannot create a user namespace: bwrap refuses to
    start unless that is so (``--assert-userns-disabled``).  Without
    *drop_uid* bwrap sees to it (``--disable-userns``); with it, the caller
    must run bwrap in a user namespace whose ``user.max_user_namespaces`` is
    0 (:class:`Sandbox`'s launcher does).
    """
    if drop_uid is None:
        identity = [
            "--unshare-user",
            "--uid",
            str(_SANDBOX_UID),
            "--gid",
            str(_SANDBOX_UID),
            "--disable-userns",
            "--assert-userns-disabled",
        ]
    else:
        identity = ["--assert-userns-disabled"]
        argv = [
            "/usr/bin/setpriv",
            f"--reuid={drop_uid}",
            f"--regid={drop_uid}",
            "--clear-groups",
            "--bounding-set=-all",
            "--inh-caps=-all",
            "--no-new-privs",
            "--",
            *argv,
        ]
    args = [
        shutil.which("bwrap") or "bwrap",
        *identity,
        "--unshare-net",
        "--unshare-pid",
        "--unshare-uts",
        "--unshare-ipc",
        "--unshare-cgroup-try",
        "--hostname",
        _HOSTNAME,
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--dev",
        "/dev",
        "--proc",
        "/proc",
    ]
    # Sticky and world-writable: bwrap makes a tmpfs 0755 and owned by root when
    # root sets the sandbox up, and a build uid that cannot write /dev/shm cannot
    # make a POSIX semaphore (a multiprocessing lock or pool: "[Errno 13]
    # Permission denied" with no path, issue 18).  Sized: they are memory.
    for folder in ("/tmp", "/dev/shm"):
        args += ["--perms", "1777", "--size", str(tmpfs_bytes), "--tmpfs", folder]
    args += _system_binds(python_prefix, extra_prefixes)
    for bind in binds:
        args += ["--bind" if bind.writable else "--ro-bind", str(bind.source), bind.target]
    if drop_uid is not None:
        # Folders bwrap creates for mount points are root-only by default:
        # make every ancestor of a mount point traversable for the build's uid.
        prefixes = [python_prefix, *extra_prefixes]
        targets = [*(str(p.resolve()) for p in prefixes), *(b.target for b in binds)]
        # /etc too: the library search path (ld.so.conf, read by auditwheel) and the
        # user database are read by the build's uid.
        targets += [f"/etc/{name}" for name in _ETC_FILES]
        parents = sorted({str(p) for t in targets for p in Path(t).parents if str(p) != "/"})
        dirs = [arg for parent in parents for arg in ("--perms", "0755", "--dir", parent)]
        first_bind = args.index("--ro-bind")
        args[first_bind:first_bind] = dirs
    for key, value in sorted(env.items(), reverse=env_order == "reversed"):
        args += ["--setenv", key, value]
    args += ["--chdir", cwd, "--", *argv]
    return args


def build_uid_for(host_root: Path, variant: int = 0) -> int:
    """The unprivileged host uid a build in *host_root* runs as when the server is root.

    Derived from the path (one uid per build tree); even for an even
    *variant*, odd for an odd one, so two builds of different variants never
    share a uid.  Pure.
    """
    half = _BUILD_UID_SPAN // 2
    return _BUILD_UID_BASE + 2 * (zlib.crc32(str(host_root).encode()) % half) + variant % 2


def unshare_command(argv: Sequence[str]) -> list[str]:
    """The unshare command line: new user, network, pid and mount namespaces."""
    return [
        shutil.which("unshare") or "unshare",
        "--user",
        "--map-root-user",
        "--net",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount",
        "--mount-proc",
        "--",
        *argv,
    ]


def _userns_budget(tool: Tool, drop_uid: int | None) -> int:
    """User namespaces the sandbox tool itself may create under the launcher's own.

    -1: the launcher makes none (bwrap as an unprivileged caller disables them
    itself; "none" isolates nothing).
    """
    if tool == "bwrap":
        return -1 if drop_uid is None else 0
    return 1 if tool == "unshare" else -1


@cache
def tool_available(tool: Tool) -> bool:
    """Whether *tool* can set a sandbox up on this machine, as a build gets it (asked once).

    The probe is a whole sandbox (launcher, namespaces, no user namespaces for
    the build): a tool that cannot deny the build user namespaces is not available.
    """
    if tool == "none":
        return True
    if shutil.which(tool) is None:
        return False
    true = shutil.which("true") or "/bin/true"
    with tempfile.TemporaryDirectory(prefix="fromsource-probe-") as folder:
        box = Sandbox(Path(folder), tool=tool)
        cmd = box.command([true], cwd="/", env={})
        try:
            done = subprocess.run(cmd, capture_output=True, cwd="/", timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return done.returncode == 0


def choose_tool(*, allow_unsandboxed: bool = False, prefer: Tool | None = None) -> Tool:
    """The best isolation available: bwrap, else unshare; "none" only if allowed.

    Raises SandboxError when neither works and *allow_unsandboxed* is false.
    """
    order: tuple[Tool, ...] = (prefer,) if prefer else ("bwrap", "unshare")
    for tool in order:
        if tool == "none" or tool_available(tool):
            if tool == "none" and not allow_unsandboxed:
                break
            return tool
    if allow_unsandboxed:
        return "none"
    raise SandboxError(
        "no build sandbox is available: bubblewrap (bwrap) and unshare cannot create "
        "namespaces here; install the Debian package bubblewrap (the setup script does), "
        "or pass --allow-unsandboxed to build without isolation (the provenance will say so)",
        tried=list(order),
    )


def _pid_namespace(pid: int) -> str | None:
    """The pid namespace of *pid*'s first child (bwrap's and unshare's namespace init)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return os.readlink(f"/proc/{children[0]}/ns/pid") if children else None
    except (OSError, IndexError):
        return None


def _count_in_namespace(namespace: str) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == namespace:
                    count += 1
            except OSError:
                continue
    return count


class Sandbox:
    """The sandbox of one build: *host_root* seen at :data:`BUILD_ROOT`.

    *prefixes* are Python installations bound read-only at their own paths
    besides the one fromsource runs on (a build target's interpreter).

    With tool "unshare" or "none" there is no mount namespace, so paths inside
    are the host paths; :meth:`inside` translates either way.

    *variant* tells apart sandboxes that must differ where the build should
    not care (two builds that must agree, issue 17): an even and an odd
    variant never get the same build uid (:attr:`build_uid`), and an odd one
    sees its environment in reverse order of names.
    """

    def __init__(
        self,
        host_root: Path,
        *,
        tool: Tool,
        limits: SandboxLimits = SandboxLimits(),
        binds: Sequence[Bind] = (),
        prefixes: Sequence[Path] = (),
        variant: int = 0,
    ) -> None:
        self.host_root = host_root.resolve()
        self.tool: Tool = tool
        self.limits = limits
        self.binds = tuple(binds)
        self.prefixes = tuple(prefixes)
        self.variant = variant

    @property
    def env_order(self) -> EnvOrder:
        """The order in which the build sees its environment variables' names."""
        return "reversed" if self.variant % 2 else "sorted"

    @property
    def facts(self) -> SandboxFacts:
        """The facts the provenance records."""
        return SandboxFacts(
            tool=self.tool,
            isolated=self.tool != "none",
            network="host" if self.tool == "none" else "none",
            build_path=BUILD_ROOT if self.tool == "bwrap" else None,
            limits=self.limits,
            user_namespaces="allowed" if self.tool == "none" else "refused",
        )

    def inside(self, host: Path) -> str:
        """The path at which the host path *host* is seen inside the sandbox."""
        host = host.resolve()
        if self.tool != "bwrap":
            return str(host)
        for bind in self.binds:
            if host.is_relative_to(bind.source.resolve()):
                rel = host.relative_to(bind.source.resolve())
                return bind.target if rel == Path() else f"{bind.target}/{rel}"
        if host.is_relative_to(self.host_root):
            rel = host.relative_to(self.host_root)
            return BUILD_ROOT if rel == Path() else f"{BUILD_ROOT}/{rel}"
        raise SandboxError(f"{host} is not visible inside the sandbox of {self.host_root}")

    @property
    def build_uid(self) -> int | None:
        """The unprivileged host uid builds run as when the server is root (else None).

        One uid per build tree, so concurrent builds do not share a process budget;
        its parity is the :attr:`variant`'s, so two builds that must agree never
        run as the same uid.
        """
        if self.tool != "bwrap" or os.geteuid() != 0:
            return None
        return build_uid_for(self.host_root, self.variant)

    @property
    def root(self) -> str:
        """The build root as seen inside the sandbox."""
        return self.inside(self.host_root)

    def command(
        self, argv: Sequence[str], *, cwd: str, env: Mapping[str, str], binds: Sequence[Bind] = ()
    ) -> list[str]:
        """The full host command line for *argv*, limits launcher included."""
        if self.tool == "bwrap":
            all_binds = [Bind(self.host_root, BUILD_ROOT, True), *self.binds, *binds]
            inner = bwrap_command(
                argv,
                binds=all_binds,
                env=env,
                cwd=cwd,
                python_prefix=Path(sys.base_prefix),
                drop_uid=self.build_uid,
                tmpfs_bytes=self.limits.tmpfs_bytes,
                extra_prefixes=self.prefixes,
                env_order=self.env_order,
            )
        elif self.tool == "unshare":
            inner = unshare_command(argv)
        else:
            inner = list(argv)
        # The kernel cap sits a little above the watchdog's limit: the kernel stops
        # the explosion, the watchdog then sees "over the limit" and ends the build.
        nproc = self.limits.max_processes + 16 if self.build_uid is not None else 0
        userns = _userns_budget(self.tool, self.build_uid)
        limits = [self.limits.memory_bytes, self.limits.max_file_bytes, nproc, userns]
        return [sys.executable, "-I", "-S", "-c", _LAUNCHER, *map(str, limits), *inner]

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        env: Mapping[str, str],
        log: Path,
        binds: Sequence[Bind] = (),
        timeout: float | None = None,
    ) -> RunResult:
        """Run *argv* in the sandbox; stdout and stderr go to *log* (appended).

        Returns a RunResult; never raises for the command's own failure.  The
        whole process tree is killed at the timeout or past the process limit.
        Raises SandboxError when the sandbox itself cannot be started.
        """
        command = self.command(argv, cwd=cwd, env=env, binds=binds)
        uid = self.build_uid
        if uid is not None:
            for bind in (Bind(self.host_root, BUILD_ROOT, True), *self.binds, *binds):
                if bind.writable:
                    _chown_tree(bind.source, uid)
                else:
                    _make_readable(bind.source)
        limit = self.limits.timeout_seconds if timeout is None else timeout
        start = time.monotonic()
        log.parent.mkdir(parents=True, exist_ok=True)
        # A fork bomb outruns any watchdog (it reached the host's pid_max between two
        # polls, issue 8): where the pids cgroup controller can be used, the kernel
        # refuses forks past the limit; the watchdog stays for where it cannot.
        cgroup = None
        if self.tool != "none":
            cgroup = _pids_cgroup(self.limits.max_processes + _CGROUP_SLACK)
        with log.open("ab") as out:
            offset = out.tell()
            try:
                process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=cwd if self.tool != "bwrap" else "/",
                    env=self._ordered(env) if self.tool != "bwrap" else {},
                    start_new_session=True,
                )
            except OSError as exc:
                raise SandboxError(
                    f"could not start the sandbox ({self.tool}): {exc}; check that it is installed",
                    tool=self.tool,
                ) from exc
            try:
                if cgroup is not None:
                    _join_cgroup(cgroup, process.pid)
                timed_out, over_limit = self._supervise(process, start + limit, cgroup)
                over_limit = over_limit or (cgroup is not None and _forks_refused(cgroup))
            finally:
                _release_cgroup(cgroup)
        seconds = time.monotonic() - start
        output = _tail(log, offset)
        if timed_out:
            output += f"\n[fromsource] killed after {limit:.0f} s (wall-clock limit)\n"
        if over_limit:
            output += f"\n[fromsource] killed: more than {self.limits.max_processes} processes\n"
        returncode = process.returncode if process.returncode is not None else -9
        return RunResult(returncode, output, seconds, timed_out, over_limit)

    def _ordered(self, env: Mapping[str, str]) -> dict[str, str]:
        """*env* in :attr:`env_order` (what ``os.environ`` of the build iterates in)."""
        return dict(sorted(env.items(), reverse=self.env_order == "reversed"))

    def _supervise(
        self, process: subprocess.Popen[bytes], deadline: float, cgroup: Path | None = None
    ) -> tuple[bool, bool]:
        """Wait for *process*; kill its tree at *deadline* or past the process limit."""
        namespace: str | None = None
        watch = self.tool != "none"
        while True:
            try:
                process.wait(timeout=_POLL_SECONDS)
                return False, False
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() >= deadline:
                _kill_tree(process)
                return True, False
            if watch and namespace is None:
                namespace = _pid_namespace(process.pid)
            if namespace and _count_in_namespace(namespace) > self.limits.max_processes:
                _kill_tree(process)
                return False, True
            if cgroup is not None and _forks_refused(cgroup):
                _kill_tree(process)
                return False, True


_CGROUP_SLACK = 4  # bwrap itself and its namespace init live in the cgroup too


def _pids_cgroup(limit: int) -> Path | None:
    """A fresh cgroup (v1 pids controller) that caps its processes at *limit*, or None.

    Best effort: None wherever this process may not create cgroups (cgroup v2
    without delegation, no pids controller, not root); the watchdog still runs.
    """
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    own = [line.split(":", 2)[2] for line in lines if "pids" in line.split(":")[1].split(",")]
    if not own:
        return None
    group = Path("/sys/fs/cgroup/pids") / own[0].lstrip("/") / f"fromsource-{secrets.token_hex(6)}"
    try:
        group.mkdir()
    except OSError:
        return None
    try:
        (group / "pids.max").write_text(str(limit))
    except OSError:
        _release_cgroup(group)
        return None
    return group


def _join_cgroup(cgroup: Path, pid: int) -> None:
    """Move *pid* (the launcher, before it starts bwrap) into *cgroup*; children follow it."""
    with contextlib.suppress(OSError):
        (cgroup / "cgroup.procs").write_text(str(pid))


def _forks_refused(cgroup: Path) -> bool:
    """Whether the kernel has refused a fork in *cgroup* (``pids.events``: ``max N``)."""
    try:
        events = (cgroup / "pids.events").read_text().split()
    except OSError:
        return False
    return "max" in events and events[events.index("max") + 1] != "0"


def _release_cgroup(cgroup: Path | None) -> None:
    """Kill whatever is left in *cgroup*, then remove it."""
    if cgroup is None:
        return
    for _ in range(250):  # up to ~5 s: exiting processes are still charged for a moment
        try:
            pids = (cgroup / "cgroup.procs").read_text().split()
        except OSError:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        try:
            cgroup.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:  # EBUSY until the last task is gone
            time.sleep(0.02)


def _chown_tree(root: Path, uid: int) -> None:
    """Give *root* and everything below it to *uid* (the build's writable trees)."""
    os.chown(root, uid, uid, follow_symlinks=False)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(os.path.join(folder, name), uid, uid, follow_symlinks=False)


def _make_readable(root: Path) -> None:
    """Let everyone read *root* (a read-only bind: tools, the wheelhouse of public wheels)."""
    paths = [root] if not root.is_dir() else [root, *root.rglob("*")]
    for path in paths:
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        wanted = mode | (0o555 if path.is_dir() or mode & 0o111 else 0o444)
        if wanted != mode:
            path.chmod(wanted & 0o7777)


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group; bwrap's pid-namespace init takes the rest with it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _tail(log: Path, offset: int) -> str:
    with log.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        start = max(offset, end - _OUTPUT_LIMIT)
        handle.seek(start)
        data = handle.read()
    text = data.decode("utf-8", "replace")
    return text if start == offset else "[... output cut ...]\n" + text
