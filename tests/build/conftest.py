"""The build matrix, shared by the modules that test it (issue 12).

:func:`matrix` builds, once per test session, tiny packages the tests write
for CPython 3.10 and 3.12 (pyenv or ``PATH``; skipped when missing), offline,
in the real sandbox, into one store: a pure package, a C extension, an
``abi3`` extension and, where the libffi headers are installed, an extension
linking a system library.  The modules that use it mark themselves as
needing bubblewrap, a C compiler and auditwheel.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fromsource.build.context import BuildContext
from fromsource.build.interpreters import discover_targets
from fromsource.build.matrix import build_release
from fromsource.build.outcome import BuildOutcome
from fromsource.build.targets import Target
from tests.packages import LocalIndex, build_context, local_index, make_sdist  # noqa: F401

MANYLINUX = r"manylinux[_0-9a-z.]*_x86_64"

_ABI3_SETUP = """\
from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "demo_mx_abi3._speedups",
            ["src/_speedups.c"],
            py_limited_api=True,
            define_macros=[("Py_LIMITED_API", "0x030A0000")],
        )
    ],
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
"""

_FFI_SETUP = """\
from setuptools import Extension, setup

setup(ext_modules=[Extension("demo_mx_ffi._speedups", ["src/_speedups.c"], libraries=["ffi"])])
"""

_FFI_SOURCE = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <unistd.h>
#include <ffi.h>

static PyObject *pointer_size(PyObject *self, PyObject *args) {
    return PyLong_FromLong((long)ffi_type_pointer.size);
}

static PyObject *pid(PyObject *self, PyObject *args) {  /* links the C library */
    return PyLong_FromLong((long)getpid());
}

static PyMethodDef methods[] = {
    {"pointer_size", pointer_size, METH_NOARGS, "sizeof(void *) as libffi sees it."},
    {"pid", pid, METH_NOARGS, "This process's id."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
"""


def _has_ffi() -> bool:
    done = subprocess.run(
        ["gcc", "-E", "-x", "c", "-"],
        input="#include <ffi.h>\n",
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0


@dataclass
class Matrix:
    """The matrix's context (targets *old* 3.10 and *new* 3.12), its upstream *index*,
    its data folder (serve it with ``start_server``) and the outcomes by project."""

    ctx: BuildContext
    index: LocalIndex
    old: Target
    new: Target
    data: Path
    built: dict[str, tuple[BuildOutcome, ...]]


@pytest.fixture(scope="session")
def matrix(
    tmp_path_factory: pytest.TempPathFactory,
    local_index: LocalIndex,  # noqa: F811
) -> Iterator[Matrix]:
    """A context building for 3.10 and 3.12, and the releases built once for the session."""
    found = discover_targets(["3.10", "3.12"])
    if found.unresolved or len(found.targets) != 2:
        pytest.skip(f"needs CPython 3.10 and 3.12 (pyenv or PATH); missing: {found.unresolved}")
    old, new = found.targets
    base = tmp_path_factory.mktemp("matrix")
    sdists = base / "sdists"
    local_index.add(
        make_sdist(sdists, "demo-mx-pure", "1.0", "flit-core"),
        make_sdist(sdists, "demo-mx-ext", "1.0", "setuptools-c"),
        make_sdist(
            sdists,
            "demo-mx-abi3",
            "1.0",
            "setuptools-c",
            extra_files={"setup.py": _ABI3_SETUP},
        ),
    )
    ctx = build_context(base / "data", local_index.url, targets=(old, new))
    built = {
        name: build_release(ctx, f"{name}==1.0")
        for name in ("demo-mx-pure", "demo-mx-ext", "demo-mx-abi3")
    }
    if _has_ffi():  # grafted by auditwheel: built for the oldest target only (time)
        local_index.add(
            make_sdist(
                sdists,
                "demo-mx-ffi",
                "1.0",
                "setuptools-c",
                extra_files={"setup.py": _FFI_SETUP, "src/_speedups.c": _FFI_SOURCE},
            )
        )
        built["demo-mx-ffi"] = build_release(ctx, "demo-mx-ffi==1.0", targets=(old,))
    try:
        yield Matrix(ctx, local_index, old, new, base / "data", built)
    finally:
        ctx.close()
