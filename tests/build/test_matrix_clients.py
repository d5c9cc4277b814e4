"""Real clients on every CPython against the build matrix's index (issue 12).

The session's ``matrix`` (tests/build/conftest.py: CPython 3.10 and 3.12)
is served by a real ``fromsource serve``; its C extension is also built for
CPython 3.13 when pyenv (or ``PATH``) has it.  Everything runs offline: the
clients see the index alone (the matrix's upstream is asked nothing), and a
client that builds from an sdist finds the build backend (setuptools, this
venv's, as a wheel) in a local folder.

- real pip and uv on each built target install from the index, and
  ``fromsource verify`` says 100 %;
- ``uv lock`` of a project (``requires-python = ">=3.10"``, Linux only)
  that depends on the pure, C-extension and abi3 packages, then ``uv sync
  --frozen`` with CPython 3.10 and with 3.13: verify says 100 % on each venv;
- pip and uv on CPython 3.11, a target the index does not build, build the
  C extension from the sdist listed beside its wheels, and verify says
  ``not-built-by-index`` naming that sdist;
- an extension whose versioned symbols no manylinux policy allows is built
  through the real pipeline and published ``linux_x86_64``; its build row
  (``builds show``, ``GET /api/builds/{id}``) and its provenance say why.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fromsource.build.history import get_build
from fromsource.build.interpreters import discover_targets
from fromsource.build.matrix import build_release
from fromsource.build.sandbox import tool_available
from fromsource.build.targets import Target
from fromsource.cli.main import main
from fromsource.provenance.statement import verify_attestation
from fromsource.store.catalog import project_files
from fromsource.verify.decide import LOCAL_BUILD_REASON
from tests.build.conftest import MANYLINUX, Matrix
from tests.clients import UV, clean_env, run
from tests.conftest import IndexServer, start_server, stop_server, wait_for_generation
from tests.packages import make_sdist, wheel_from_installed

pytest.importorskip(
    "auditwheel", reason="manylinux repair needs auditwheel (requirements/dev.lock)"
)
pytestmark = pytest.mark.skipif(
    not tool_available("bwrap") or shutil.which("gcc") is None,
    reason="needs bubblewrap and a C compiler",
)

JSON = "application/vnd.pypi.simple.v1+json"
WANTED = ["demo-mx-pure", "demo-mx-ext", "demo-mx-abi3"]
PROBE = "import demo_mx_abi3, demo_mx_ext; print(demo_mx_ext.add(2, 3), demo_mx_abi3.add(4, 5))"


def _target(version: str) -> Target | None:
    """The CPython *version* target on this host (pyenv or ``PATH``), None when missing."""
    found = discover_targets([version])
    return found.targets[0] if found.targets and not found.unresolved else None


@dataclass
class Served:
    matrix: Matrix
    server: IndexServer
    reader: tuple[str, str]
    newest: Target | None
    """CPython 3.13, when this host has it: the C extension is built for it too."""
    backends: Path
    """A folder holding a setuptools wheel, for clients that build from an sdist."""

    def target(self, version: str) -> Target:
        """The built target *version*; skips the test when this host lacks it."""
        built = [self.matrix.old, self.matrix.new, *([self.newest] if self.newest else [])]
        for target in built:
            if target.version == version:
                return target
        pytest.skip(f"needs CPython {version} (pyenv or PATH)")

    def env(self, home: Path) -> dict[str, str]:
        """A client's environment: a private HOME, the index's credentials for uv's
        ``fromsource`` index (a project's ``[[tool.uv.index]]`` is read)."""
        env = clean_env(
            home,
            {
                "UV_INDEX_FROMSOURCE_USERNAME": self.reader[0],
                "UV_INDEX_FROMSOURCE_PASSWORD": self.reader[1],
            },
        )
        del env["UV_NO_CONFIG"]
        return env

    def verify(self, venv: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> Any:
        """``fromsource verify --format json`` on *venv* (exit 0 expected): the report."""
        code = main(
            ["verify", str(venv), "--index", self.server.url]
            + ["--username", self.reader[0], "--password", self.reader[1]]
            + ["--format", "json", *extra]
        )
        out, err = capsys.readouterr()
        assert code == 0, out + err
        return json.loads(out)


@pytest.fixture(scope="module")
def served(matrix: Matrix, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The matrix (its C extension built for 3.13 too, when present) behind a running index."""
    newest = _target("3.13")
    if newest is not None:
        (outcome,) = build_release(matrix.ctx, "demo-mx-ext==1.0", targets=(newest,))
        assert outcome.status == "succeeded", outcome.message
    backends = tmp_path_factory.mktemp("backends")
    wheel_from_installed("setuptools", backends)
    server = start_server(matrix.data)
    try:
        yield Served(matrix, server, server.token("python"), newest, backends)
    finally:
        stop_server(server)


def _venv(target: Target, path: Path) -> Path:
    """A venv without pip for *target*'s interpreter; its python."""
    subprocess.run([target.interpreter, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


def _probe(python: Path) -> list[str]:
    done = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def _install(client: str, python: Path, url: str, *args: str) -> list[str]:
    """The command of *client* (pip or uv) installing *args* into *python*'s venv from *url*."""
    if client == "pip":
        command = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
        return [*command, "--no-cache-dir", "--index-url", url, *args]
    return [UV, "pip", "install", "--python", str(python), "--no-cache", "--index-url", url, *args]


@pytest.mark.parametrize("version", ["3.10", "3.12", "3.13"])
@pytest.mark.parametrize("client", ["pip", "uv"])
def test_pip_and_uv_on_each_target_install_from_the_index_and_verify_says_100(
    served: Served, client: str, version: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = served.target(version)
    wanted = list(WANTED)
    if target == served.matrix.old and "demo-mx-ffi" in served.matrix.built:
        wanted.append("demo-mx-ffi")
    python = _venv(target, tmp_path / "venv")
    url = served.server.cred_url("python", served.reader)
    asked = len(served.matrix.index.requests)
    install = run(
        _install(client, python, url, "--only-binary", ":all:", *wanted),
        clean_env(tmp_path / "home"),
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert len(served.matrix.index.requests) == asked  # the index alone
    assert _probe(python) == ["5", "9"]
    report = served.verify(tmp_path / "venv", capsys, "--fail-under", "100")
    assert report["coverage_percentage"] == 100.0
    assert {r["name"] for r in report["results"]} >= set(WANTED)


@pytest.fixture(scope="module")
def locked(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A uv project over the index, locked with ``uv lock`` (from the index alone)."""
    project = tmp_path_factory.mktemp("uv-project")
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.10"\n'
        f"dependencies = {json.dumps(WANTED)}\n\n"
        "[tool.uv]\npackage = false\nenvironments = [\"sys_platform == 'linux'\"]\n\n"
        f'[[tool.uv.index]]\nname = "fromsource"\nurl = "{served.server.simple()}"\n'
        'default = true\nauthenticate = "always"\n'
    )
    asked = len(served.matrix.index.requests)
    home = tmp_path_factory.mktemp("uv-lock-home")
    lock = run([UV, "lock", "--python", served.matrix.old.interpreter], served.env(home), project)
    assert lock.returncode == 0, lock.stderr
    assert len(served.matrix.index.requests) == asked
    return project


def test_uv_lock_lists_the_wheels_of_every_target_and_the_sdist(
    served: Served, locked: Path
) -> None:
    text = (locked / "uv.lock").read_text()
    assert served.reader[1] not in text and served.reader[0] not in text
    lock = tomllib.loads(text)
    assert lock["requires-python"] == ">=3.10"
    assert lock["supported-markers"] == ["sys_platform == 'linux'"]
    packages = {p["name"]: p for p in lock["package"] if p["name"] != "app"}
    assert sorted(packages) == sorted(WANTED)
    files = f"{served.server.url}python/files/"
    wheels: dict[str, list[str]] = {}
    for name, package in packages.items():
        assert package["source"] == {"registry": served.server.simple()}
        module = name.replace("-", "_")
        assert package["sdist"]["url"] == f"{files}{name}/1.0/{module}-1.0.tar.gz"
        assert all(w["url"].startswith(f"{files}{name}/1.0/") for w in package["wheels"])
        wheels[name] = [w["url"].rsplit("/", 1)[1] for w in package["wheels"]]
    assert wheels["demo-mx-pure"] == ["demo_mx_pure-1.0-py3-none-any.whl"]
    (abi3,) = wheels["demo-mx-abi3"]
    assert re.fullmatch(rf"demo_mx_abi3-1\.0-cp310-abi3-{MANYLINUX}\.whl", abi3)
    pythons = ["cp310", "cp312", *(["cp313"] if served.newest else [])]
    assert len(wheels["demo-mx-ext"]) == len(pythons)
    for python, wheel in zip(pythons, sorted(wheels["demo-mx-ext"]), strict=True):
        assert re.fullmatch(rf"demo_mx_ext-1\.0-{python}-{python}-{MANYLINUX}\.whl", wheel)


@pytest.mark.parametrize("version", ["3.10", "3.13"])
def test_uv_sync_frozen_installs_from_the_index_alone_and_verify_says_100(
    served: Served,
    locked: Path,
    version: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = served.target(version)
    venv = tmp_path / "venv"
    env = {**served.env(tmp_path / "home"), "UV_PROJECT_ENVIRONMENT": str(venv)}
    before = (locked / "uv.lock").read_bytes()
    asked = len(served.matrix.index.requests)
    sync = run([UV, "sync", "--frozen", "--python", target.interpreter], env, locked)
    assert sync.returncode == 0, sync.stderr
    assert len(served.matrix.index.requests) == asked
    assert (locked / "uv.lock").read_bytes() == before
    assert _probe(venv / "bin" / "python") == ["5", "9"]
    report = served.verify(venv, capsys, "--fail-under", "100")
    assert report["coverage_percentage"] == 100.0
    assert sorted(r["name"] for r in report["results"]) == sorted(WANTED)
    assert all(r["status"] == "verified" for r in report["results"])


@pytest.mark.parametrize("client", ["pip", "uv"])
def test_a_client_whose_target_is_not_built_installs_from_the_sdist_and_verify_says_so(
    served: Served, client: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = _target("3.11")
    if target is None:
        pytest.skip("needs CPython 3.11 (pyenv or PATH)")
    built = {served.matrix.old.version, served.matrix.new.version}
    assert target.version not in built | {served.newest.version if served.newest else ""}
    python = _venv(target, tmp_path / "venv")
    url = served.server.cred_url("python", served.reader)
    asked = len(served.matrix.index.requests)
    # Only the build backend comes from elsewhere: the index serves what it built.
    install = run(
        _install(client, python, url, "--find-links", str(served.backends), *WANTED),
        clean_env(tmp_path / "home"),
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert len(served.matrix.index.requests) == asked
    assert _probe(python) == ["5", "9"]
    report = served.verify(tmp_path / "venv", capsys)
    results = {r["name"]: r for r in report["results"]}
    assert sorted(results) == sorted(WANTED)
    ext = results["demo-mx-ext"]
    assert ext["status"] == "not-built-by-index"
    assert ext["details"].startswith(LOCAL_BUILD_REASON + ": demo_mx_ext-1.0.tar.gz, mirrored")
    # the abi3 wheel built with 3.10 serves 3.11; the pure wheel serves every target
    assert results["demo-mx-abi3"]["status"] == results["demo-mx-pure"]["status"] == "verified"
    assert report["coverage_percentage"] < 100.0


# A build on a glibc newer than every manylinux policy auditwheel knows, on any host: the
# backend renames the C library version the linked extension needs (as test_repair.py's
# too-recent-symbols test does to a wheel), so auditwheel sees what such a host would make.
_NEWGLIBC_SETUP = '''\
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class build_for_a_newer_glibc(build_ext):
    """Links as on a glibc newer than every manylinux policy: memcpy@GLIBC_2.99."""

    def build_extension(self, ext):
        super().build_extension(ext)
        built = Path(self.get_ext_fullpath(ext.name))
        data = built.read_bytes()
        assert b"GLIBC_2.14" in data, "memcpy is not the versioned C library call"
        # same length: the ELF stays valid, only the version it needs changes
        built.write_bytes(data.replace(b"GLIBC_2.14", b"GLIBC_2.99"))


setup(
    ext_modules=[Extension("demo_mx_newglibc._speedups", ["src/_speedups.c"])],
    cmdclass={"build_ext": build_for_a_newer_glibc},
)
'''

_NEWGLIBC_SOURCE = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

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
    {"copy", copy, METH_VARARGS, "A copy of the bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
"""


def test_an_extension_no_manylinux_policy_allows_is_published_linux_x86_64_saying_why(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    matrix = served.matrix
    matrix.index.add(
        make_sdist(
            tmp_path,
            "demo-mx-newglibc",
            "1.0",
            "setuptools-c",
            extra_files={
                "setup.py": _NEWGLIBC_SETUP,
                "src/_speedups.c": _NEWGLIBC_SOURCE,
                "demo_mx_newglibc/__init__.py": "from ._speedups import copy\n",
            },
        )
    )
    (outcome,) = build_release(matrix.ctx, "demo-mx-newglibc==1.0", targets=(matrix.old,))
    assert outcome.status == "succeeded", outcome.message
    assert outcome.wheel == "demo_mx_newglibc-1.0-cp310-cp310-linux_x86_64.whl"
    record = get_build(matrix.ctx.db, outcome.build_id or 0)
    assert record is not None
    repair = record.details["repair"]
    assert (repair["repaired"], repair["platform_tag"]) == (False, "linux_x86_64")
    reason = repair["reason"]
    assert "too-recent versioned symbols" in reason and "libc.so.6 GLIBC_2.99" in reason

    files = project_files(matrix.ctx.db, "python", "demo-mx-newglibc")
    (info,) = [f for f in files if f.kind == "wheel"]
    assert info.filename == outcome.wheel and info.provenance_sha256 is not None
    key = matrix.ctx.signing_key
    attestation, _ = verify_attestation(
        matrix.ctx.blobs.read_bytes(info.provenance_sha256), {key.keyid: key.public}
    )
    internal = attestation.raw["predicate"]["buildDefinition"]["internalParameters"]
    assert internal["repair"]["reason"] == reason and internal["repair"]["repaired"] is False

    assert main(["--data-dir", str(matrix.data), "builds", "show", str(record.id)]) == 0
    assert f"not repaired: {reason}" in capsys.readouterr().out
    wait_for_generation(served.server)
    admin = served.server.token(admin=True)
    shown = httpx.get(f"{served.server.url}api/builds/{record.id}", auth=admin, timeout=30)
    assert shown.status_code == 200 and shown.json()["details"]["repair"] == repair
    page = httpx.get(
        f"{served.server.simple()}demo-mx-newglibc/",
        auth=served.reader,
        headers={"accept": JSON},
        timeout=30,
    )
    filenames = [f["filename"] for f in page.json()["files"]]
    assert sorted(filenames) == [outcome.wheel, "demo_mx_newglibc-1.0.tar.gz"]
    # pip and uv take a linux_x86_64 wheel; this host's loader then lacks GLIBC_2.99
    url = served.server.cred_url("python", served.reader)
    for client in ("pip", "uv"):
        python = _venv(matrix.old, tmp_path / client)
        args = ("--only-binary", ":all:", "demo-mx-newglibc")
        install = run(_install(client, python, url, *args), clean_env(tmp_path / "home"))
        assert install.returncode == 0, install.stdout + install.stderr
        argv = [str(python), "-c", "import demo_mx_newglibc"]
        loaded = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert loaded.returncode != 0 and "GLIBC_2.99" in loaded.stderr
