"""manylinux repair with the real auditwheel and patchelf, on C extensions the tests build.

Two tiny packages are built once each with this Python (pip, no build
isolation, offline): one plain C extension, and one that links libffi (not
on any manylinux whitelist: grafted) and zlib (on every whitelist: not
grafted) and calls memcpy (a GLIBC_2.14 symbol on x86-64).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from fromsource.build.commands import CommandResult
from fromsource.build.normalize import normalize_wheel
from fromsource.build.repair import RepairResult, debian_owner, repair_wheel
from fromsource.errors import BuildError
from tests.factories import make_wheel
from tests.packages import SDIST_EPOCH, make_sdist

pytest.importorskip("auditwheel", reason="needs auditwheel (requirements/dev.lock)")
pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or shutil.which("gcc") is None,
    reason="manylinux repair needs Linux and a C compiler",
)

_LINKED_SETUP = """\
from setuptools import Extension, setup

setup(ext_modules=[Extension("fs_linked._speedups", ["src/_speedups.c"], libraries=["ffi", "z"])])
"""

_LINKED_SOURCE = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <ffi.h>
#include <zlib.h>

static PyObject *pointer_size(PyObject *self, PyObject *args) {
    return PyLong_FromLong((long)ffi_type_pointer.size);
}

static PyObject *z_version(PyObject *self, PyObject *args) {  /* zlib.h defines zlib_version */
    return PyUnicode_FromString(zlibVersion());
}

static PyObject *copy(PyObject *self, PyObject *args) {
    const char *text;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "s#", &text, &size)) return NULL;
    char *buffer = PyMem_Malloc(size + 1);
    if (buffer == NULL) return PyErr_NoMemory();
    memcpy(buffer, text, size);  /* memcpy@GLIBC_2.14 on x86-64 */
    PyObject *result = PyBytes_FromStringAndSize(buffer, size);
    PyMem_Free(buffer);
    return result;
}

static PyMethodDef methods[] = {
    {"pointer_size", pointer_size, METH_NOARGS, "sizeof(void *) as libffi sees it."},
    {"z_version", z_version, METH_NOARGS, "The zlib version."},
    {"copy", copy, METH_VARARGS, "A copy of the bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
"""


def _has_header(header: str) -> bool:
    done = subprocess.run(
        ["gcc", "-E", "-x", "c", "-"],
        input=f"#include <{header}>\n",
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0


def _build_wheel(sdist: Path, out: Path) -> Path:
    """Build *sdist* into a wheel with this Python (offline, no build isolation)."""
    argv = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*argv, "--no-index", str(sdist), "-w", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [wheel] = out.glob("*.whl")
    return wheel


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def plain_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("plain")
    return _build_wheel(
        make_sdist(base / "sdist", "fs-plain", backend="setuptools-c"), base / "out"
    )


@pytest.fixture(scope="module")
def linked_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (_has_header("ffi.h") and _has_header("zlib.h")):
        pytest.skip("needs the libffi-dev and zlib1g-dev headers")
    base = tmp_path_factory.mktemp("linked")
    sdist = make_sdist(
        base / "sdist",
        "fs-linked",
        backend="setuptools-c",
        extra_files={
            "setup.py": _LINKED_SETUP,
            "src/_speedups.c": _LINKED_SOURCE,
            "fs_linked/__init__.py": "from ._speedups import copy, pointer_size, z_version\n",
        },
    )
    return _build_wheel(sdist, base / "out")


@pytest.fixture(scope="module")
def linked_repaired(linked_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> RepairResult:
    result = repair_wheel(linked_wheel, tmp_path_factory.mktemp("repaired"), epoch=SDIST_EPOCH)
    assert result.repaired, result.reason
    return result


class Recorder:
    """A CommandRunner that answers with fixed results and records what it was asked."""

    def __init__(self, *results: CommandResult) -> None:
        self.results = list(results)
        self.calls: list[list[str]] = []

    def __call__(
        self, argv: Sequence[str], *, env: Mapping[str, str], timeout: float
    ) -> CommandResult:
        self.calls.append(list(argv))
        return self.results.pop(0)


def test_a_pure_wheel_is_kept_with_its_reason(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "fs-pure", "1.0")
    runner = Recorder()
    result = repair_wheel(wheel, tmp_path / "out", runner=runner)
    assert (result.repaired, result.wheel, result.platform_tag) == (False, wheel, "any")
    assert result.reason is not None and "pure wheel" in result.reason
    assert runner.calls == []  # auditwheel is not even started


def test_a_c_extension_is_retagged_to_the_lowest_manylinux_its_symbols_allow(
    plain_wheel: Path, tmp_path: Path
) -> None:
    before = _sha(plain_wheel)
    result = repair_wheel(plain_wheel, tmp_path, epoch=SDIST_EPOCH)
    assert result.repaired, result.reason
    assert result.wheel.parent == tmp_path and result.wheel.name.startswith("fs_plain-1.0-cp3")
    assert any(tag.startswith("manylinux_2_") for tag in result.platform_tags)
    assert all("manylinux" in tag for tag in result.platform_tags)
    assert result.wheel.name.endswith(f"-{result.platform_tag}.whl")
    assert result.grafted == ()  # it needs nothing outside libc
    with zipfile.ZipFile(result.wheel) as archive:
        wheel_file = archive.read("fs_plain-1.0.dist-info/WHEEL").decode()
    assert all(f"-{tag}" in wheel_file for tag in result.platform_tags)
    assert _sha(plain_wheel) == before  # the input is never changed


def test_a_linked_system_library_is_grafted_and_named_with_its_debian_package(
    linked_repaired: RepairResult, tmp_path: Path
) -> None:
    result = linked_repaired
    [ffi] = result.grafted  # libz is on every manylinux whitelist: not grafted
    assert ffi.soname is not None and ffi.soname.startswith("libffi.so.")
    assert ffi.member.startswith("fs_linked.libs/libffi-") and ffi.source_path is not None
    source = Path(ffi.source_path)
    assert ffi.source_sha256 == _sha(source)
    assert ffi.member.split("/")[-1].startswith(f"libffi-{_sha(source)[:8]}.")
    with zipfile.ZipFile(result.wheel) as archive:
        assert ffi.sha256 == hashlib.sha256(archive.read(ffi.member)).hexdigest()
    if shutil.which("dpkg") is not None:
        assert ffi.package is not None and ffi.package.name.startswith("libffi")
        owner = f"{ffi.package.name}:{ffi.package.architecture}"
        query = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", owner], capture_output=True, text=True, check=True
        )
        assert ffi.package.version == query.stdout.strip()
    assert json.loads(json.dumps(result.to_json()))["grafted"][0]["file_name"].startswith("libffi-")
    # the repaired extension loads the grafted copy (its RPATH points into the wheel)
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(result.wheel) as archive:
        archive.extractall(unpacked)
    probe = (
        "import fs_linked._speedups as s, pathlib; "
        "maps = pathlib.Path('/proc/self/maps').read_text(); "
        "print(s.pointer_size(), s.copy(b'abc'), 'fs_linked.libs/libffi-' in maps)"
    )
    env = {**os.environ, "PYTHONPATH": str(unpacked)}
    ran = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False
    )
    assert ran.stdout.split() == ["8", "b'abc'", "True"], ran.stderr


def test_repair_then_normalize_is_bit_for_bit_reproducible(
    linked_wheel: Path, linked_repaired: RepairResult, tmp_path: Path
) -> None:
    repaired = linked_repaired.wheel
    again = repair_wheel(linked_wheel, tmp_path / "again", epoch=SDIST_EPOCH).wheel
    assert again.read_bytes() == repaired.read_bytes()  # auditwheel honours the epoch
    # without the same epoch auditwheel's zip differs; normalize makes the bytes equal again
    other = repair_wheel(linked_wheel, tmp_path / "other", epoch=SDIST_EPOCH + 86400).wheel
    assert other.read_bytes() != repaired.read_bytes()
    first = normalize_wheel(repaired, tmp_path / "n1", epoch=SDIST_EPOCH)
    second = normalize_wheel(other, tmp_path / "n2", epoch=SDIST_EPOCH)
    assert first.read_bytes() == second.read_bytes()
    assert (
        normalize_wheel(first, tmp_path / "n3", epoch=SDIST_EPOCH).read_bytes()
        == first.read_bytes()
    )


def _with_member_patched(wheel: Path, dest: Path, old: bytes, new: bytes) -> Path:
    """A copy of *wheel* in *dest* whose extension modules have *old* replaced by *new*."""
    dest.mkdir()
    out = dest / wheel.name
    replaced = 0
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as copy:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.endswith(".so"):
                replaced += data.count(old)
                data = data.replace(old, new)
            copy.writestr(info, data)
    assert replaced, f"{old!r} is not in the extension"
    return out


def test_too_recent_symbols_keep_the_wheel_with_the_reason(
    linked_wheel: Path, tmp_path: Path
) -> None:
    # the version string a newer glibc would put there (same length, so the ELF stays valid)
    future = _with_member_patched(linked_wheel, tmp_path / "in", b"GLIBC_2.14", b"GLIBC_2.99")
    before = _sha(future)
    result = repair_wheel(future, tmp_path / "out", epoch=SDIST_EPOCH)
    assert (result.repaired, result.wheel, result.platform_tag) == (False, future, "linux_x86_64")
    assert result.reason is not None
    assert "too-recent versioned symbols" in result.reason and "GLIBC_2.99" in result.reason
    assert _sha(future) == before
    assert not list(tmp_path.glob("out/*.whl"))  # nothing half-repaired is left behind


def test_auditwheel_past_its_timeout_or_missing_is_an_error(
    plain_wheel: Path, tmp_path: Path
) -> None:
    late = Recorder(CommandResult(-9, "", "", 5.0, timed_out=True))
    with pytest.raises(BuildError) as caught:
        repair_wheel(plain_wheel, tmp_path, runner=late, timeout=5)
    assert caught.value.facts["category"] == "timeout"
    missing = Recorder(CommandResult(1, "", "/venv/bin/python: No module named auditwheel\n", 0.1))
    with pytest.raises(BuildError) as caught:
        repair_wheel(plain_wheel, tmp_path, runner=missing)
    assert caught.value.facts["category"] == "internal"
    assert "requirements/dev.lock" in caught.value.message


def test_dpkg_finds_the_owner_of_a_library_under_its_merged_usr_name() -> None:
    if shutil.which("dpkg") is None:
        pytest.skip("not a Debian system")
    import zlib  # noqa: F401  # maps the system libz into this process

    maps = Path("/proc/self/maps").read_text().split()
    libz = next((p for p in maps if "/libz.so" in p), None)
    if libz is None:
        pytest.skip("this Python's zlib is not the system's shared libz")
    real = os.path.realpath(libz)  # e.g. /usr/lib/... while dpkg recorded /lib/...
    owner = debian_owner(real)
    assert owner is not None and owner.name.startswith("zlib")
    assert owner.version and owner.architecture
    assert debian_owner("/nonexistent/libnothing.so.1") is None
