"""Tiny sdists and a local package index for build tests, all offline.

- :func:`make_sdist` writes a real sdist (``.tar.gz`` with PKG-INFO and
  pyproject.toml) for one of the backends: setuptools, setuptools with a C
  extension, flit-core, hatchling, or an in-tree backend given as code (for
  sandbox tests: it needs no build dependency at all).
- :func:`wheel_from_installed` re-zips a distribution installed in this venv
  from its RECORD into a wheel, so the build backends and their
  dependencies are available as wheels without the network.
- :class:`LocalIndex` serves files as a PEP 503 / PEP 691 simple index on
  127.0.0.1 (port 0), the "upstream" the pipeline and uv read.
"""

from __future__ import annotations

import base64
import hashlib
import html
import importlib.metadata
import io
import json
import re
import sysconfig
import tarfile
import textwrap
import threading
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

import pytest
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from fromsource.build.pipeline import BuildContext
from fromsource.build.sandbox import SandboxLimits
from fromsource.build.upstream import Upstream
from fromsource.provenance.keystore import load_or_create_signing_key
from fromsource.store.blobs import FileBlobStore
from fromsource.store.db import open_database

Backend = Literal["setuptools", "setuptools-c", "flit-core", "hatchling", "in-tree"]

SDIST_EPOCH = 1609459200  # 2021-01-01T00:00:00Z: the PKG-INFO mtime of every test sdist
BOOTSTRAP_DISTRIBUTIONS = (
    "setuptools",
    "wheel",
    "flit_core",
    "hatchling",
    "packaging",
    "pathspec",
    "pluggy",
    "tomlkit",
    "trove-classifiers",
)
"""The build backends and their dependencies, as installed in the test venv."""

_WHEEL_DATE = (2020, 2, 2, 0, 0, 0)
_SKIP_INSTALLED = ("INSTALLER", "REQUESTED", "direct_url.json", "RECORD")


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def wheel_from_installed(distribution: str, dest: Path) -> Path:
    """A wheel of the installed *distribution*, rebuilt from its RECORD into *dest*.

    Deterministic (fixed timestamps, sorted members), so a cached copy keeps
    its sha256.  Files outside site-packages are left out, except scripts
    that are not entry-point launchers (maturin's binary): those go back to
    ``.data/scripts/``; the entry points recreate the launchers.
    """
    dist = importlib.metadata.distribution(distribution)
    name = canonicalize_name(dist.metadata["Name"]).replace("-", "_")
    version = dist.version
    info_dir = next(
        str(f).split("/", 1)[0] for f in dist.files or [] if str(f).endswith(".dist-info/METADATA")
    )
    launchers = {e.name for e in dist.entry_points if e.group in ("console_scripts", "gui_scripts")}
    scripts = Path(sysconfig.get_path("scripts")).resolve()
    contents: dict[str, bytes] = {}
    executable: set[str] = set()
    for file in dist.files or []:
        path = str(file)
        if path.startswith(".."):
            located = Path(str(file.locate())).resolve()
            if located.parent == scripts and located.name not in launchers:
                member = f"{info_dir.removesuffix('.dist-info')}.data/scripts/{located.name}"
                contents[member] = located.read_bytes()
                executable.add(member)
            continue
        if "__pycache__" in path or path.endswith(".pyc"):
            continue
        if path.startswith(info_dir + "/") and path.split("/", 1)[1] in _SKIP_INSTALLED:
            continue
        contents[path] = Path(str(file.locate())).read_bytes()
    wheel_text = contents[f"{info_dir}/WHEEL"].decode()
    tags = [
        line.split(":", 1)[1].strip() for line in wheel_text.splitlines() if line.startswith("Tag:")
    ]
    pythons = sorted({t.split("-")[0] for t in tags})
    abi, plat = tags[0].split("-")[1:]
    filename = f"{name}-{version}-{'.'.join(pythons)}-{abi}-{plat}.whl"
    record = [f"{p},{_record_hash(d)},{len(d)}" for p, d in sorted(contents.items())]
    record.append(f"{info_dir}/RECORD,,")
    contents[f"{info_dir}/RECORD"] = ("\n".join(record) + "\n").encode()
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / filename
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(contents):
            info = zipfile.ZipInfo(path, _WHEEL_DATE)
            info.external_attr = (0o755 if path in executable else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, contents[path])
    return target


def bootstrap_wheels(dest: Path) -> list[Path]:
    """Wheels of :data:`BOOTSTRAP_DISTRIBUTIONS` in *dest* (made once, then reused)."""
    dest.mkdir(parents=True, exist_ok=True)
    wheels = []
    for distribution in BOOTSTRAP_DISTRIBUTIONS:
        version = importlib.metadata.version(distribution)
        key = canonicalize_name(distribution).replace("-", "_")
        existing = [p for p in dest.glob(f"{key}-{version}-*.whl")]
        wheels.append(existing[0] if existing else wheel_from_installed(distribution, dest))
    return wheels


def _module(name: str) -> str:
    return canonicalize_name(name).replace("-", "_")


_C_SOURCE = """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <unistd.h>

static PyObject *where(PyObject *self, PyObject *args) {
    return PyUnicode_FromString(__FILE__);
}

/* A C library call: auditwheel tells which libc (glibc) an extension is for
   from the libraries it links, and one that links none cannot be repaired. */
static PyObject *pid(PyObject *self, PyObject *args) {
    return PyLong_FromLong((long)getpid());
}

static PyObject *add(PyObject *self, PyObject *args) {
    long a, b;
    if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
    return PyLong_FromLong(a + b);
}

static PyMethodDef methods[] = {
    {"add", add, METH_VARARGS, "Add two integers."},
    {"where", where, METH_NOARGS, "The source path the compiler saw."},
    {"pid", pid, METH_NOARGS, "This process's id."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
"""


def _project_table(name: str, version: str, dependencies: Sequence[str]) -> str:
    deps = ", ".join(json.dumps(d) for d in dependencies)
    return (
        f'[project]\nname = "{name}"\nversion = "{version}"\n'
        f'description = "A test package"\nrequires-python = ">=3.8"\n'
        f"dependencies = [{deps}]\n"
    )


def _backend_files(
    name: str, version: str, backend: Backend, dependencies: Sequence[str], backend_code: str
) -> dict[str, str]:
    module = _module(name)
    init = f'"""The {name} test package."""\n\n__version__ = "{version}"\n'
    project = _project_table(name, version, dependencies)
    if backend == "setuptools":
        return {
            "pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\n'
            'build-backend = "setuptools.build_meta"\n\n' + project,
            f"{module}/__init__.py": init,
        }
    if backend == "setuptools-c":
        setup = textwrap.dedent(f"""\
            from setuptools import Extension, setup

            setup(ext_modules=[Extension("{module}._speedups", ["src/_speedups.c"])])
            """)
        return {
            "pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\n'
            'build-backend = "setuptools.build_meta"\n\n'
            + project
            + f'\n[tool.setuptools]\npackages = ["{module}"]\n',
            "setup.py": setup,
            "src/_speedups.c": _C_SOURCE,
            f"{module}/__init__.py": init + "\nfrom ._speedups import add, where\n",
        }
    if backend == "flit-core":
        return {
            "pyproject.toml": '[build-system]\nrequires = ["flit_core>=3.2,<5"]\n'
            'build-backend = "flit_core.buildapi"\n\n' + project,
            f"{module}/__init__.py": init,
        }
    if backend == "hatchling":
        return {
            "pyproject.toml": '[build-system]\nrequires = ["hatchling"]\n'
            'build-backend = "hatchling.build"\n\n'
            + project
            + f'\n[tool.hatch.build.targets.wheel]\npackages = ["{module}"]\n',
            f"{module}/__init__.py": init,
        }
    return {
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\n'
        'backend-path = ["."]\n\n' + project,
        "backend.py": backend_code or _minimal_backend(name, version),
        f"{module}/__init__.py": init,
    }


def _minimal_backend(name: str, version: str) -> str:
    """An in-tree PEP 517 backend that writes a one-module wheel with zipfile."""
    module = _module(name)
    return textwrap.dedent(f"""\
        import base64, hashlib, os, zipfile

        def _h(data):
            d = hashlib.sha256(data).digest()
            return "sha256=" + base64.urlsafe_b64encode(d).rstrip(b"=").decode()

        def get_requires_for_build_wheel(config_settings=None):
            return []

        def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
            info = "{module}-{version}.dist-info"
            files = {{
                "{module}/__init__.py": open("{module}/__init__.py", "rb").read(),
                info + "/METADATA": b"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n\\n",
                info + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
            }}
            record = [f"{{p}},{{_h(d)}},{{len(d)}}" for p, d in files.items()] + [info + "/RECORD,,"]
            files[info + "/RECORD"] = ("\\n".join(record) + "\\n").encode()
            filename = "{module}-{version}-py3-none-any.whl"
            with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as zf:
                for path, data in files.items():
                    zf.writestr(path, data)
            return filename
        """)


def make_sdist(
    dest: Path,
    name: str,
    version: str = "1.0",
    backend: Backend = "setuptools",
    *,
    dependencies: Sequence[str] = (),
    backend_code: str = "",
    extra_files: Mapping[str, str] | None = None,
    pkg_info: str = "",
) -> Path:
    """Write ``<name>-<version>.tar.gz`` for *backend* into *dest*; return its path.

    ``in-tree`` uses *backend_code* (a module ``backend`` with the PEP 517
    hooks; default: a minimal one that needs nothing installed).  *pkg_info*
    is appended to PKG-INFO's fields (``Requires-Python: >=3.9\n``).
    """
    files = _backend_files(name, version, backend, dependencies, backend_code)
    files.update(extra_files or {})
    return write_sdist(dest, name, version, files, pkg_info=pkg_info)


def write_sdist(
    dest: Path, name: str, version: str, files: Mapping[str, str], *, pkg_info: str = ""
) -> Path:
    """Write ``<name>-<version>.tar.gz`` holding *files* and a PKG-INFO into *dest*.

    Deterministic: sorted members, mode 0644, every mtime :data:`SDIST_EPOCH`.
    """
    files = {
        **files,
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{pkg_info}",
    }
    top = f"{_module(name)}-{version}"
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{top}.tar.gz"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            data = files[path].encode()
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size, info.mtime, info.mode = len(data), SDIST_EPOCH, 0o644
            tar.addfile(info, io.BytesIO(data))
    import gzip

    target.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    return target


def _wheel_metadata(wheel: Path) -> bytes:
    """The METADATA file of *wheel*."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(name)


class LocalIndex:
    """A PEP 503 / PEP 691 simple index over a set of files, served on 127.0.0.1."""

    def __init__(self) -> None:
        self.files: dict[str, list[Path]] = {}
        self.requires_python: dict[str, str] = {}
        """Requires-Python listed for a file name (``data-requires-python``)."""
        self.requests: list[str] = []
        self.upload_times: dict[str, datetime] = {}
        """PEP 700 upload times by filename (JSON pages list them, with sizes)."""
        self.credentials: tuple[str, str] | None = None
        """(user, password) every request must carry as Basic auth (else 401), if set."""
        self.core_metadata = False
        """Whether JSON pages list each wheel's core metadata (PEP 658), served at
        ``<file>.metadata``."""
        self._server: ThreadingHTTPServer | None = None

    def add(self, *paths: Path) -> None:
        """List *paths* (wheels or sdists) on their projects' pages."""
        for path in paths:
            if path.name.endswith(".whl"):
                project = parse_wheel_filename(path.name)[0]
            else:
                project = parse_sdist_filename(path.name)[0]
            entries = self.files.setdefault(str(project), [])
            if path not in entries:
                entries.append(path)

    @property
    def url(self) -> str:
        """The simple root, ``http://127.0.0.1:<port>/simple/``."""
        assert self._server is not None, "the index is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}/simple/"

    def _page(self, project: str, as_json: bool) -> tuple[bytes, str]:
        files = []
        for path in self.files.get(project, []):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            files.append((path.name, f"../../files/{path.name}", digest))
        if as_json:
            entries: list[dict[str, object]] = [
                {"filename": n, "url": u, "hashes": {"sha256": d}} for n, u, d in files
            ]
            for entry, path in zip(entries, self.files.get(project, []), strict=True):
                entry["size"] = path.stat().st_size
                if path.name in self.upload_times:
                    entry["upload-time"] = self.upload_times[path.name].isoformat()
                if path.name in self.requires_python:
                    entry["requires-python"] = self.requires_python[path.name]
                if self.core_metadata and path.name.endswith(".whl"):
                    metadata = hashlib.sha256(_wheel_metadata(path)).hexdigest()
                    entry["core-metadata"] = {"sha256": metadata}
            body = {"meta": {"api-version": "1.1"}, "name": project, "files": entries}
            return json.dumps(body).encode(), "application/vnd.pypi.simple.v1+json"

        def requires(name: str) -> str:
            spec = self.requires_python.get(name)
            return f' data-requires-python="{html.escape(spec)}"' if spec else ""

        links = "".join(
            f'<a href="{html.escape(u)}#sha256={d}"{requires(n)}>{html.escape(n)}</a><br/>\n'
            for n, u, d in files
        )
        return f"<html><body>\n{links}</body></html>\n".encode(), "text/html"

    def _file(self, filename: str) -> bytes | None:
        path = self._file_path(filename)
        return None if path is None else path.read_bytes()

    def _file_path(self, filename: str) -> Path | None:
        for paths in self.files.values():
            for path in paths:
                if path.name == filename:
                    return path
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                index.requests.append(self.path)

            def do_HEAD(self) -> None:
                self.do_GET(head=True)

            def do_GET(self, head: bool = False) -> None:
                if index.credentials is not None:
                    expected = base64.b64encode(":".join(index.credentials).encode()).decode()
                    if self.headers.get("Authorization") != f"Basic {expected}":
                        extra = {"WWW-Authenticate": 'Basic realm="index"'}
                        return self._send(401, b"", "text/plain", head, extra)
                as_json = "vnd.pypi.simple.v1+json" in self.headers.get("Accept", "")
                match = re.fullmatch(r"/simple/([^/]+)/?", self.path)
                if match and canonicalize_name(match.group(1)) in index.files:
                    body, kind = index._page(str(canonicalize_name(match.group(1))), as_json)
                    return self._send(200, body, kind, head)
                match = re.fullmatch(r"/files/([^/]+\.whl)\.metadata", self.path)
                if match and index.core_metadata:
                    wheel = index._file_path(match.group(1))
                    if wheel is not None:
                        return self._send(200, _wheel_metadata(wheel), "text/plain", head)
                match = re.fullmatch(r"/files/([^/]+)", self.path)
                data = index._file(match.group(1)) if match else None
                if data is None:
                    return self._send(404, b"not found", "text/plain", head)
                wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
                if wanted and (wanted.group(1) or wanted.group(2)):
                    if wanted.group(1):
                        start = int(wanted.group(1))
                        end = int(wanted.group(2)) if wanted.group(2) else len(data) - 1
                    else:
                        start, end = max(0, len(data) - int(wanted.group(2))), len(data) - 1
                    end = min(end, len(data) - 1)
                    extra = {"Content-Range": f"bytes {start}-{end}/{len(data)}"}
                    return self._send(
                        206, data[start : end + 1], "application/octet-stream", head, extra
                    )
                self._send(200, data, "application/octet-stream", head)

            def _send(
                self,
                status: int,
                body: bytes,
                kind: str,
                head: bool = False,
                extra: Mapping[str, str] | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if not head:
                    self.wfile.write(body)

        return Handler

    @contextmanager
    def serve(self) -> Iterator[LocalIndex]:
        """Run the index in a thread for the duration of the block."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()


@pytest.fixture(scope="session")
def local_index(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalIndex]:
    """A running local index holding the bootstrap wheels (cached across test runs).

    Import it into a test module to use it; tests add their sdists with ``add``.
    """
    cache = getattr(request.config, "cache", None)
    folder = Path(cache.mkdir("fromsource-bootstrap-wheels")) if cache else None
    index = LocalIndex()
    index.add(*bootstrap_wheels(folder or tmp_path_factory.mktemp("bootstrap")))
    with index.serve():
        yield index


def build_context(base: Path, index_url: str, **kwargs: object) -> BuildContext:
    """A build context over a fresh store in *base*, reading *index_url* as upstream."""
    limits = kwargs.pop("limits", SandboxLimits(timeout_seconds=300))
    return BuildContext(
        db=open_database(f"sqlite:///{base / 'fromsource.db'}"),
        blobs=FileBlobStore(base / "blobs"),
        upstream=Upstream(index_url, tries=1),
        upstream_url=index_url,
        signing_key=load_or_create_signing_key(base / "keys"),
        work_root=base / "work",
        cache_dir=base / "cache",
        limits=limits,  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )
