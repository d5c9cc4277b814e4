"""PEP 517 builds inside the sandbox: a fresh venv, pinned wheels, the backend's hooks.

A :class:`BuildEnvironment` owns one build's host work tree::

    <work>/build/        seen at /fromsource/build (writable): src/, venv/, home/, tmp/, out/
    <work>/tools/        seen at /fromsource/tools (read-only): compiler wrappers, hook runner
    <work>/wheelhouse/   seen at /fromsource/wheelhouse (read-only): the pinned wheels
    <work>/logs/         host only: the output of every command

Every step runs in the sandbox with a cleared environment (SOURCE_DATE_EPOCH,
PYTHONHASHSEED=0, LC_ALL=C.UTF-8, TZ=UTC, no pip or uv configuration, CC and
CXX set to the compiler wrapper of :mod:`fromsource.build.ccwrap`): create
the venv from the build target's interpreter, install the pinned wheels offline with
``uv pip sync --require-hashes``, then call ``get_requires_for_build_wheel``
and ``build_wheel`` through :mod:`pyproject_hooks` with no build isolation.
The hook caller's subprocess runner translates its paths into the sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pyproject_hooks import (
    BackendUnavailable,
    BuildBackendHookCaller,
    HookMissing,
    UnsupportedOperation,
)

from fromsource.bounded import DEFAULT_LIMITS, OutputLimits, copy_file, read_file
from fromsource.build import ccwrap
from fromsource.build.sandbox import (
    TOOLS_ROOT,
    Bind,
    RunResult,
    Sandbox,
    SandboxLimits,
    Tool,
)
from fromsource.errors import (
    DependencyError,
    HookError,
    LimitError,
    SandboxError,
    SandboxTimeoutError,
)

__all__ = [
    "LEGACY_BACKEND",
    "LEGACY_REQUIRES",
    "BuildEnvironment",
    "BuildSystem",
    "base_python",
    "build_environ",
    "read_build_system",
]

LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
LEGACY_REQUIRES = ("setuptools>=40.8.0", "wheel")
"""PEP 517's defaults for a source tree without a ``[build-system]`` table."""

WHEELHOUSE = "/fromsource/wheelhouse"
CONTROL = "/fromsource/control"
_WRAPPER_NAMES = ("cc", "gcc", "c++", "g++")


@dataclass(frozen=True)
class BuildSystem:
    """A source tree's ``[build-system]``: requirements, backend, in-tree backend path."""

    requires: tuple[str, ...]
    backend: str
    backend_path: tuple[str, ...] = ()
    declared: bool = True


def read_build_system(tree: Path) -> BuildSystem:
    """The build system of the source *tree* (PEP 517/518 defaults when undeclared).

    Raises DependencyError (category ``bad-pyproject``) for an unreadable
    pyproject.toml or a malformed ``[build-system]`` table.
    """
    path = tree / "pyproject.toml"
    if not path.is_file():
        return BuildSystem(LEGACY_REQUIRES, LEGACY_BACKEND, (), declared=False)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DependencyError(
            f"{tree.name}/pyproject.toml is not valid TOML ({exc}); the sdist cannot be built",
            category="bad-pyproject",
        ) from exc
    table = document.get("build-system")
    if table is None:
        return BuildSystem(LEGACY_REQUIRES, LEGACY_BACKEND, (), declared=False)
    requires = table.get("requires", [])
    backend = table.get("build-backend", LEGACY_BACKEND)
    backend_path = table.get("backend-path", [])
    if (
        not isinstance(requires, list)
        or not all(isinstance(r, str) for r in requires)
        or not isinstance(backend, str)
        or not isinstance(backend_path, list)
        or not all(isinstance(p, str) for p in backend_path)
    ):
        raise DependencyError(
            f"{tree.name}/pyproject.toml: [build-system] must have a list of strings "
            "'requires', a string 'build-backend' and a list of strings 'backend-path'",
            category="bad-pyproject",
        )
    return BuildSystem(tuple(requires), backend, tuple(backend_path), declared=True)


def base_python() -> Path:
    """The base interpreter builds run with (the one under this venv)."""
    return Path(getattr(sys, "_base_executable", sys.executable)).resolve()


def build_environ(
    *,
    root: str,
    tools: str,
    epoch: int,
    real_cc: str,
    real_cxx: str,
    host_root: str | None,
    tmp: str = "tmp",
) -> dict[str, str]:
    """The whole environment of a sandboxed build step (nothing is inherited); *tmp* is the
    name of ``TMPDIR`` in the build tree."""
    venv = f"{root}/venv"
    env = {
        "PATH": f"{tools}/bin:{venv}/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": f"{root}/home",
        "TMPDIR": f"{root}/{tmp}",
        "SOURCE_DATE_EPOCH": str(epoch),
        "PYTHONHASHSEED": "0",
        "PYTHONNOUSERSITE": "1",
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "TERM": "dumb",
        "USER": "builder",
        "LOGNAME": "builder",
        "VIRTUAL_ENV": venv,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_NO_INDEX": "1",
        "PIP_NO_INPUT": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "UV_NO_CONFIG": "1",
        "UV_OFFLINE": "1",
        "CARGO_NET_OFFLINE": "true",
        "CC": f"{tools}/bin/cc",
        "CXX": f"{tools}/bin/c++",
        "FROMSOURCE_REAL_CC": real_cc,
        "FROMSOURCE_REAL_CXX": real_cxx,
    }
    if host_root:  # no fixed path (unshare/none): map the host tree onto it for the compiler
        env["FROMSOURCE_PREFIX_MAP"] = f"{host_root}=/fromsource/build"
    return env


class BuildEnvironment:
    """One build's work tree, sandbox and venv; its methods are the build steps.

    Every step appends its output to :attr:`log_path`; a failing step raises
    HookError (category ``build-failed``, ``timeout`` or ``process-limit``)
    carrying the tail of that output.
    """

    def __init__(
        self,
        work: Path,
        *,
        tool: Tool,
        limits: SandboxLimits,
        epoch: int,
        uv: str,
        output_limits: OutputLimits = DEFAULT_LIMITS,
        python: Path | None = None,
        variant: int = 0,
    ) -> None:
        self.work = work.resolve()
        self.output_limits = output_limits
        self.build_root = self.work / "build"
        self.tools = self.work / "tools"
        self.wheelhouse = self.work / "wheelhouse"
        self.log_path = self.work / "logs" / "build.log"
        for folder in (self.build_root, self.tools / "bin", self.wheelhouse, self.log_path.parent):
            folder.mkdir(parents=True, exist_ok=True)
        # A build that must agree with another varies what it should not depend on
        # (issue 17): its TMPDIR's name here, its uid and environment order in the sandbox.
        tmp = "tmp" if variant == 0 else f"tmp-{variant}"
        for name in ("home", tmp, "out", "src"):
            (self.build_root / name).mkdir(exist_ok=True)
        binds = [Bind(self.tools, TOOLS_ROOT), Bind(self.wheelhouse, WHEELHOUSE)]
        self.uv_inside = uv
        if tool == "bwrap":
            (self.tools / "uv").touch()
            binds.append(Bind(Path(uv), f"{TOOLS_ROOT}/uv"))
            self.uv_inside = f"{TOOLS_ROOT}/uv"
        # The venv is made from the target's interpreter; the compiler wrapper runs on
        # the base Python fromsource runs on.  Both installations are seen read-only.
        self.python = python.resolve() if python is not None else base_python()
        self.tool_python = base_python()
        self.sandbox = Sandbox(
            self.build_root,
            tool=tool,
            limits=limits,
            binds=binds,
            prefixes=[self.python.parent.parent],
            variant=variant,
        )
        self._write_tools()
        self.env = build_environ(
            root=self.sandbox.root,
            tools=self.sandbox.inside(self.tools),
            epoch=epoch,
            real_cc=shutil.which("gcc") or shutil.which("cc") or "cc",
            real_cxx=shutil.which("g++") or shutil.which("c++") or "c++",
            host_root=None if tool == "bwrap" else str(self.build_root),
            tmp=tmp,
        )

    @property
    def src(self) -> Path:
        """Where the sdist is unpacked (host path)."""
        return self.build_root / "src"

    @property
    def venv(self) -> str:
        """The venv as seen inside the sandbox."""
        return f"{self.sandbox.root}/venv"

    def _write_tools(self) -> None:
        wrapper = Path(ccwrap.__file__).read_text(encoding="utf-8")
        script = f"#!{self.tool_python} -IS\n{wrapper}"
        for name in _WRAPPER_NAMES:
            path = self.tools / "bin" / name
            path.write_text(script, encoding="utf-8")
            path.chmod(0o755)
        runner = resources.files("pyproject_hooks._in_process") / "_in_process.py"
        (self.tools / "_in_process.py").write_text(runner.read_text(encoding="utf-8"))

    def _run(
        self,
        what: str,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        binds: Sequence[Bind] = (),
    ) -> RunResult:
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"\n$ {what}\n")
        result = self.sandbox.run(
            argv,
            cwd=cwd or self.sandbox.root,
            env=env or self.env,
            log=self.log_path,
            binds=binds,
        )
        if result.ok:
            return result
        if result.timed_out:
            raise SandboxTimeoutError(
                f"{what} ran past the {self.sandbox.limits.timeout_seconds:.0f} s limit and was "
                "killed; raise --timeout if the package is known to build slowly",
                category="timeout",
            )
        if result.process_limit_hit:
            raise SandboxError(
                f"{what} started more than {self.sandbox.limits.max_processes} processes and "
                "was killed",
                category="process-limit",
            )
        raise HookError(
            f"{what} failed with exit status {result.returncode}:\n{_last_lines(result.output)}",
            category="build-failed",
        )

    def create_venv(self) -> None:
        """Create the build venv (no pip) from the target's interpreter (*python*)."""
        self._run("create venv", [str(self.python), "-m", "venv", "--without-pip", self.venv])

    def install(self, requirements: Path) -> None:
        """Make the venv hold exactly the hashed pins of *requirements* (a wheelhouse file)."""
        if not requirements.read_text().strip():
            return
        self._run(
            "install build dependencies",
            [
                self.uv_inside,
                "pip",
                "sync",
                "--offline",
                "--no-index",
                "--no-config",
                "--no-cache",
                "--quiet",
                "--require-hashes",
                "--link-mode",
                "copy",
                "--find-links",
                self.sandbox.inside(self.wheelhouse),
                "--python",
                f"{self.venv}/bin/python",
                self.sandbox.inside(requirements),
            ],
        )

    def _caller(self, tree: Path, system: BuildSystem) -> BuildBackendHookCaller:
        return BuildBackendHookCaller(
            self.sandbox.inside(tree),
            system.backend,
            backend_path=list(system.backend_path) or None,
            runner=self._hook_runner,
            python_executable=f"{self.venv}/bin/python",
        )

    def get_requires(self, tree: Path, system: BuildSystem) -> list[str]:
        """What the backend's ``get_requires_for_build_wheel`` asks for."""
        result = self._call(tree, system, "get_requires_for_build_wheel", None)
        if not isinstance(result, list) or not all(isinstance(r, str) for r in result):
            raise HookError(
                f"get_requires_for_build_wheel returned {result!r}, not a list of strings",
                category="build-failed",
            )
        return result

    def build_wheel(self, tree: Path, system: BuildSystem, dest: Path) -> Path:
        """Run ``build_wheel``; copy the wheel out of the sandbox into *dest* and return it.

        The copy is read through :mod:`fromsource.bounded`: without following
        links (a build cannot make the host read a file outside its tree), a
        FIFO or device is refused rather than waited on, and the size and the
        time are capped.
        """
        out = self.build_root / "out"
        name = self._call(tree, system, "build_wheel", self.sandbox.inside(out))
        if not isinstance(name, str) or "/" in name or not name.endswith(".whl"):
            raise HookError(
                f"build_wheel returned {name!r}, not a wheel filename", category="build-failed"
            )
        dest.mkdir(parents=True, exist_ok=True)
        _copy_out(
            self.build_root, ("out", name), dest / name, self.output_limits, self._read_deadline()
        )
        return dest / name

    def _read_deadline(self) -> float:
        """When a host-side read of this build's output must have finished (monotonic).

        Reads happen after a sandboxed command ended; each gets the build's
        own wall-clock limit, so ``--timeout`` bounds them too.
        """
        return time.monotonic() + self.sandbox.limits.timeout_seconds

    def _call(self, tree: Path, system: BuildSystem, hook: str, arg: str | None) -> object:
        caller = self._caller(tree, system)
        try:
            if hook == "build_wheel":
                assert arg is not None
                return caller.build_wheel(arg)
            return caller.get_requires_for_build_wheel()
        except BackendUnavailable as exc:
            raise HookError(
                f"the build backend {system.backend!r} could not be imported: "
                f"{_last_lines(exc.traceback)}",
                category="build-failed",
            ) from exc
        except (HookMissing, UnsupportedOperation) as exc:
            raise HookError(
                f"the build backend {system.backend!r} cannot run {hook} ({exc})",
                category="build-failed",
            ) from exc

    def _hook_runner(
        self,
        cmd: Sequence[str],
        cwd: str | None = None,
        extra_environ: Mapping[str, str] | None = None,
    ) -> None:
        """pyproject_hooks' subprocess runner: the same command, inside the sandbox."""
        python, _script, hook, control = cmd
        control_dir = Path(control)
        binds: list[Bind] = []
        if self.sandbox.tool == "bwrap":
            # The control folder is a host temp folder: the build may write only the
            # hook's result there, one file under the file-size limit (issue 18).
            result = control_dir / "output.json"
            result.touch()
            binds = [Bind(control_dir, CONTROL), Bind(result, f"{CONTROL}/output.json", True)]
            control = CONTROL
        script = self.sandbox.inside(self.tools / "_in_process.py")
        self._run(
            hook,
            [python, script, hook, control],
            cwd=cwd,
            env={**self.env, **(extra_environ or {})},
            binds=binds,
        )
        _clean_hook_output(control_dir, self.log_path, self.output_limits, self._read_deadline())


def _clean_hook_output(
    control_dir: Path, log_path: Path, limits: OutputLimits, deadline: float
) -> None:
    """Re-write output.json as a plain file of ours, moving its warnings into the log.

    The hook wrote it inside the sandbox, so it is read through the bounded
    reader: a link is not followed, a FIFO does not block the host, at most
    ``limits.hook_result_bytes`` are read before *deadline*.  Backend warnings
    stay out of the host's warning machinery.  Raises HookError when the hook
    left no result or an unsafe or oversized one.
    """
    fd = os.open(control_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        data = read_file(
            "output.json",
            limits.hook_result_bytes,
            what="the hook's result output.json",
            dir_fd=fd,
            deadline=deadline,
        )
    except FileNotFoundError as exc:
        raise HookError(
            "the hook exited without writing its result (output.json); see the log",
            category="build-failed",
        ) from exc
    except LimitError as exc:
        raise HookError(exc.message, category=exc.facts.get("category")) from exc
    except OSError as exc:
        raise HookError(
            f"the hook's result output.json cannot be read ({exc})", category="build-failed"
        ) from exc
    finally:
        os.close(fd)
    if not data.strip():  # under bwrap the (empty) result file exists before the hook runs
        raise HookError(
            "the hook exited without writing its result (output.json); see the log",
            category="build-failed",
        )
    try:
        document = json.loads(data)
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    warnings = document.pop("warnings", [])
    if warnings:
        with log_path.open("a", encoding="utf-8") as log:
            for warning in warnings:
                log.write(f"backend warning: {warning.get('message', warning)}\n")
    target = control_dir / "output.json"
    target.unlink(missing_ok=True)
    target.write_text(json.dumps(document))


def _copy_out(
    root: Path, parts: Sequence[str], dest: Path, limits: OutputLimits, deadline: float
) -> None:
    """Copy ``root/parts...`` to *dest* without following any link below *root*.

    The file is read through the bounded reader: it must be a regular file
    (a FIFO is refused, not waited on) of at most ``limits.wheel_bytes``,
    copied before *deadline*.
    """
    what = "/".join(parts)
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for part in parts[:-1]:
            fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fds[-1]))
        copy_file(
            parts[-1],
            dest,
            limits.wheel_bytes,
            what=f"the wheel {what} the backend reported",
            dir_fd=fds[-1],
            deadline=deadline,
        )
    except LimitError as exc:
        raise HookError(
            f"{exc.message}; nothing was taken from the sandbox",
            category=exc.facts.get("category"),
        ) from exc
    except OSError as exc:
        raise HookError(
            f"the backend reported {what} but it is missing, a link or not a "
            f"regular file ({exc}); nothing was taken from the sandbox",
            category="build-failed",
        ) from exc
    finally:
        for fd in fds:
            os.close(fd)


def _last_lines(text: str, count: int = 30) -> str:
    return "\n".join(text.rstrip().splitlines()[-count:])
