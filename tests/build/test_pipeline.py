"""The whole pipeline on sdists the tests make: offline, in the real sandbox."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from fromsource.bounded import OutputLimits
from fromsource.build.batch import build_many
from fromsource.build.history import get_build
from fromsource.build.pipeline import BuildContext, build_one
from fromsource.build.rebuild import rebuild_check
from fromsource.build.sandbox import SandboxLimits, tool_available
from fromsource.cli.main import main
from fromsource.config import Settings, upstream_url
from fromsource.errors import DependencyError, SignatureError
from fromsource.provenance.sbom import SBOM_PATH
from fromsource.provenance.statement import PatchInfo, verify_attestation
from fromsource.store.catalog import project_files
from fromsource.store.models import BuildRow, FileRow
from fromsource.store.publish import publish_file
from tests.factories import make_wheel
from tests.packages import (  # noqa: F401
    LocalIndex,
    _minimal_backend,
    build_context,
    local_index,
    make_sdist,
)

pytestmark = pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")


@pytest.fixture
def ctx(tmp_path: Path, local_index: LocalIndex) -> Iterator[BuildContext]:  # noqa: F811
    context = build_context(tmp_path / "data", local_index.url)
    yield context
    context.close()


def _sdist(index: LocalIndex, tmp_path: Path, name: str, backend: str, **kw: object) -> str:
    index.add(make_sdist(tmp_path / "sdists", name, "1.0", backend, **kw))  # type: ignore[arg-type]
    return f"{name}==1.0"


def _published(ctx: BuildContext, project: str) -> tuple[Path, bytes, bytes, str]:
    (info,) = [f for f in project_files(ctx.db, "python", project) if f.kind == "wheel"]
    assert info.provenance_sha256 and info.sbom_sha256
    path = ctx.blobs.local_path(info.sha256)
    assert path is not None
    return (
        path,
        ctx.blobs.read_bytes(info.provenance_sha256),
        ctx.blobs.read_bytes(info.sbom_sha256),
        info.sha256,
    )


@pytest.mark.parametrize("backend", ["setuptools", "flit-core", "hatchling", "setuptools-c"])
def test_backends_build_with_sbom_and_signed_provenance(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
    backend: str,
) -> None:
    name = f"demo-{backend}"
    outcome = build_one(ctx, _sdist(local_index, tmp_path, name, backend))
    assert outcome.status == "succeeded", outcome.message
    wheel, envelope, sbom, digest = _published(ctx, name)

    with zipfile.ZipFile(wheel) as archive:
        info_dir = next(n.split("/")[0] for n in archive.namelist() if ".dist-info/" in n)
        assert archive.read(f"{info_dir}/{SBOM_PATH}") == sbom
    document = json.loads(sbom)
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"

    key = ctx.signing_key
    attestation, keyid = verify_attestation(envelope, {key.keyid: key.public})
    assert keyid == key.keyid
    assert attestation.subject_sha256 == digest
    assert attestation.sandbox["isolated"] is True and attestation.sandbox["network"] == "none"
    assert attestation.sandbox["build_path"] == "/fromsource/build"
    assert all(d.source == "bootstrap" for d in attestation.dependencies)
    assert f"{info_dir}/{SBOM_PATH}" in attestation.byproducts

    tampered = json.loads(envelope)
    tampered["payload"] = tampered["payload"][:-8] + "AAAAAAA="
    with pytest.raises(SignatureError):
        verify_attestation(json.dumps(tampered), {key.keyid: key.public})

    record = get_build(ctx.db, outcome.build_id or 0)
    assert record is not None and record.status == "succeeded" and record.key == outcome.key
    assert "$ build_wheel" in record.log
    if backend == "setuptools-c":
        target = tmp_path / "installed"
        zipfile.ZipFile(wheel).extractall(target)
        code = "import demo_setuptools_c as m; print(m.add(2, 3), m.where())"
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=target, capture_output=True, text=True, check=True
        )
        assert done.stdout.split() == ["5", "src/_speedups.c"]


def test_the_same_inputs_are_not_built_twice(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    requirement = _sdist(local_index, tmp_path, "demo-twice", "flit-core")
    first = build_one(ctx, requirement)
    assert first.status == "succeeded"
    again = build_one(ctx, requirement)
    assert again.status == "skipped" and "already published" in again.message

    # Even with the file gone, a key that built successfully is not built again.
    with ctx.db.session() as session, session.begin():
        session.execute(sa.update(BuildRow).values(file_id=None))
        session.execute(sa.delete(FileRow))
    third = build_one(ctx, requirement)
    assert third.status == "skipped", third.message
    assert f"build {first.build_id}" in third.message and third.key == first.key


@pytest.mark.parametrize("backend", ["setuptools-c", "hatchling"])
def test_rebuild_check_is_bit_for_bit(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
    backend: str,
) -> None:
    requirement = _sdist(local_index, tmp_path, f"demo-again-{backend}", backend)
    if backend == "hatchling":  # compare with the published wheel
        assert build_one(ctx, requirement).status == "succeeded"
    report = rebuild_check(ctx, requirement)
    assert report.identical, report.to_json()
    assert report.differing == () and report.only_in_rebuild == ()
    expected = "published" if backend == "hatchling" else "first build"
    assert report.reference.startswith(expected)
    if backend == "setuptools-c":  # check builds publish nothing, so they do not count as built
        assert build_one(ctx, requirement).status == "succeeded"


def test_a_backend_cannot_reach_the_network(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    port = server.getsockname()[1]
    backend = textwrap.dedent(f"""\
        import socket
        def get_requires_for_build_wheel(config_settings=None):
            return []
        def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
            results = []
            for host in ("127.0.0.1", {local_index.url.split("/")[2].split(":")[0]!r}):
                s = socket.socket(); s.settimeout(3)
                results.append(s.connect_ex((host, {port})))
            raise RuntimeError("network probe: connect_ex gave %r" % (results,))
        """)
    outcome = build_one(
        ctx, _sdist(local_index, tmp_path, "demo-netprobe", "in-tree", backend_code=backend)
    )
    try:
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()
    assert outcome.status == "failed" and outcome.category == "build-failed"
    assert "network probe: connect_ex gave" in outcome.message
    assert "gave [0" not in outcome.message and ", 0]" not in outcome.message


def test_a_backend_that_sleeps_past_the_timeout_is_killed(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    local_index: LocalIndex,  # noqa: F811
) -> None:
    ctx = build_context(tmp_path / "data", local_index.url, limits=SandboxLimits(timeout_seconds=3))
    backend = textwrap.dedent("""\
        import time
        def get_requires_for_build_wheel(config_settings=None):
            return []
        def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
            time.sleep(120)
        """)
    outcome = build_one(
        ctx, _sdist(local_index, tmp_path, "demo-sleeper", "in-tree", backend_code=backend)
    )
    assert outcome.status == "failed" and outcome.category == "timeout"
    assert outcome.seconds < 30
    record = get_build(ctx.db, outcome.build_id or 0)
    assert record is not None and record.details["category"] == "timeout"


def test_a_long_log_is_kept_whole_up_to_its_cap_and_its_end_in_the_row(
    tmp_path: Path,
    local_index: LocalIndex,  # noqa: F811
) -> None:
    # Issue 18: a backend that printed 256 MiB made the host re-read all of it on every
    # save.  Small caps here stand for the real ones (64 MiB blob, 512 KiB tail).
    limits = OutputLimits(log_bytes=1 << 20, log_tail_bytes=64 << 10)
    ctx = build_context(tmp_path / "data", local_index.url, output_limits=limits)
    backend = _minimal_backend("demo-chatty", "1.0") + textwrap.dedent("""\

        _build = build_wheel

        def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
            import sys
            for number in range(30_000):
                sys.stdout.write(f"line {number:06d} " + "x" * 100 + "\\n")
            sys.stdout.write("THE LAST LINE\\n")
            sys.stdout.flush()
            return _build(wheel_directory, config_settings, metadata_directory)
        """)
    outcome = build_one(
        ctx, _sdist(local_index, tmp_path, "demo-chatty", "in-tree", backend_code=backend)
    )
    assert outcome.status == "succeeded", outcome.message
    record = get_build(ctx.db, outcome.build_id or 0)
    assert record is not None
    # The row: our lines and the last 64 KiB of the output, marked as cut.
    assert len(record.log) < (64 << 10) + 8192
    assert "THE LAST LINE" in record.log and "line 000000" not in record.log
    assert "output cut: the last 65536 of" in record.log
    assert "the stored log is truncated" in record.log
    # The blob: the first 1 MiB of the output, marked where it was cut.
    kept = record.details["log"]
    assert kept["truncated"] is True and kept["output_bytes"] > 3_000_000
    whole = ctx.blobs.read_bytes(kept["sha256"])
    assert len(whole) == kept["size"] < (1 << 20) + 512
    assert whole.startswith(b"\n$ create venv") and b"line 000000 " in whole
    assert whole.rstrip().endswith(b"its end is in the build's row (fromsource builds show ID)")
    assert b"THE LAST LINE" not in whole
    ctx.close()


def test_failures_carry_a_category(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert build_one(ctx, "packaging==26.3").category == "no-sdist"
    assert build_one(ctx, "no-such-project-here==1.0").category == "not-found"
    broken = make_sdist(
        tmp_path / "sdists",
        "demo-broken",
        "1.0",
        "setuptools",
        extra_files={
            "demo_broken/__init__.py": "raise SystemExit('broken on purpose')\n",
            "setup.py": "raise SystemExit('setup.py refuses')\n",
        },
    )
    local_index.add(broken)
    failed = build_one(ctx, "demo-broken==1.0")
    assert failed.status == "failed" and failed.category == "build-failed"
    assert "setup.py refuses" in failed.message


def test_a_failure_with_the_same_inputs_is_not_built_again(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    broken = make_sdist(
        tmp_path / "sdists",
        "demo-fails-once",
        "1.0",
        "setuptools",
        extra_files={"setup.py": "raise SystemExit('setup.py refuses')\n"},
    )
    local_index.add(broken)
    first = build_one(ctx, "demo-fails-once==1.0")
    assert first.status == "failed" and "build" in dict(first.step_seconds)
    again = build_one(ctx, "demo-fails-once==1.0")
    assert again.status == "failed" and again.category == "build-failed"
    assert f"build {first.build_id} failed with the same inputs" in again.message
    assert "setup.py refuses" in again.message
    assert "build" not in dict(again.step_seconds)  # stopped before the sandbox
    retried = build_one(ctx, "demo-fails-once==1.0", retry_failed=True)
    assert retried.status == "failed" and "build" in dict(retried.step_seconds)
    assert "same inputs" not in retried.message


def test_with_deps_builds_the_runtime_dependencies(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    sdists = tmp_path / "sdists"
    local_index.add(
        make_sdist(sdists, "demo-lib", "1.0", "flit-core"),
        make_sdist(sdists, "demo-lib", "1.1", "flit-core"),
        make_sdist(
            sdists,
            "demo-app",
            "1.0",
            "flit-core",
            dependencies=["demo-lib>=1.0", "never-needed; python_version < '3'"],
        ),
    )
    outcomes = build_many(ctx, ["demo-app==1.0"], with_deps=True, jobs=2)
    built = sorted((o.project, o.version, o.status) for o in outcomes)
    assert built == [("demo-app", "1.0", "succeeded"), ("demo-lib", "1.1", "succeeded")]


def test_remediated_build_carries_the_local_version_and_patch(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    requirement = _sdist(local_index, tmp_path, "demo-fixme", "flit-core")

    def patch(tree: Path) -> None:
        (tree / "demo_fixme" / "__init__.py").write_text('"""Fixed."""\n\n__version__ = "1.0"\n')

    patches = [PatchInfo("0001-fix.patch", "ab" * 32, ("CVE-2099-0001",))]
    outcome = build_one(
        ctx,
        requirement,
        repo="python-remediated",
        patches=patches,
        patch_tree=patch,
        local_version="fs.1",
    )
    assert outcome.status == "succeeded", outcome.message
    assert outcome.wheel == "demo_fixme-1.0+fs.1-py3-none-any.whl"
    (info,) = [f for f in project_files(ctx.db, "python-remediated", "demo-fixme")
               if f.kind == "wheel"]
    assert info.version == "1.0+fs.1"
    with zipfile.ZipFile(ctx.blobs.local_path(info.sha256) or "") as archive:
        assert archive.read("demo_fixme/__init__.py").startswith(b'"""Fixed')
        assert b"Version: 1.0+fs.1" in archive.read("demo_fixme-1.0+fs.1.dist-info/METADATA")
    assert info.sbom_sha256 is not None
    sbom = json.loads(ctx.blobs.read_bytes(info.sbom_sha256))
    assert sbom["metadata"]["component"]["pedigree"]["patches"]


def test_build_dependencies_come_from_our_repository_when_built_there(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    (flit,) = [
        p for paths in local_index.files.values() for p in paths if p.name.startswith("flit_core-")
    ]
    publish_file(ctx.db, ctx.blobs, flit, "python")  # as if we had built it from source
    outcome = build_one(ctx, _sdist(local_index, tmp_path, "demo-closure", "flit-core"))
    assert outcome.status == "succeeded", outcome.message
    record = get_build(ctx.db, outcome.build_id or 0)
    assert record is not None
    (dep,) = record.details["dependencies"]
    assert dep["project"] == "flit-core" and dep["source"] == "fromsource"
    assert dep["url"].startswith("fromsource:python/files/flit-core/")


@pytest.mark.network
def test_a_real_package_from_the_configured_upstream(tmp_path: Path) -> None:
    ctx = build_context(tmp_path / "data", upstream_url(Settings()))
    try:
        outcome = build_one(ctx, "iniconfig==2.0.0")
        assert outcome.status == "succeeded", outcome.message
        report = rebuild_check(ctx, "iniconfig==2.0.0")
        assert report.identical, report.to_json()
    finally:
        ctx.close()


_TINY_BACKEND = textwrap.dedent('''\
    """A tiny PEP 517 backend (a test package other test packages build with)."""

    import base64
    import hashlib
    import os
    import tomllib
    import zipfile

    __version__ = "1.0"


    def _hash(data):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
        return "sha256=" + digest.decode()


    def get_requires_for_build_wheel(config_settings=None):
        return []


    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        with open("pyproject.toml", "rb") as handle:
            project = tomllib.load(handle)["project"]
        module = project["name"].replace("-", "_")
        info = f"{module}-{project['version']}.dist-info"
        meta = f"Metadata-Version: 2.1\\nName: {project['name']}\\nVersion: {project['version']}\\n"
        files = {
            f"{module}/__init__.py": open(f"{module}/__init__.py", "rb").read(),
            f"{info}/METADATA": meta.encode(),
            f"{info}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: tiny\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
        }
        rows = [f"{p},{_hash(d)},{len(d)}" for p, d in files.items()] + [f"{info}/RECORD,,"]
        files[f"{info}/RECORD"] = ("\\n".join(rows) + "\\n").encode()
        name = f"{module}-{project['version']}-py3-none-any.whl"
        with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as archive:
            for path, data in files.items():
                archive.writestr(path, data)
        return name
    ''')


def test_with_build_deps_builds_the_backend_from_source_first(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    sdists = tmp_path / "sdists"
    backend_files = {"demo_tiny_backend/__init__.py": _TINY_BACKEND}
    # Upstream has the backend as a wheel (bootstrap) and as an sdist (to build from).
    local_index.add(
        make_wheel(tmp_path / "upstream", "demo-tiny-backend", "1.0", files=backend_files),
        make_sdist(sdists, "demo-tiny-backend", "1.0", "flit-core", extra_files=backend_files),
        make_sdist(
            sdists,
            "demo-user",
            "1.0",
            "in-tree",
            extra_files={
                "pyproject.toml": '[build-system]\nrequires = ["demo-tiny-backend"]\n'
                'build-backend = "demo_tiny_backend"\n\n[project]\nname = "demo-user"\n'
                'version = "1.0"\n',
            },
        ),
    )
    outcomes = build_many(ctx, ["demo-user==1.0"], with_build_deps=True)
    status = {o.project: (o.status, o.category) for o in outcomes}
    assert status["demo-tiny-backend"] == ("succeeded", None)
    assert status["demo-user"] == ("succeeded", None)
    # flit-core has no sdist on this index: it stays a bootstrap wheel, and says why.
    assert status["flit-core"] == ("failed", "no-sdist")

    record = get_build(ctx.db, next(o.build_id for o in outcomes if o.project == "demo-user") or 0)
    assert record is not None
    (dep,) = record.details["dependencies"]
    assert (dep["project"], dep["source"]) == ("demo-tiny-backend", "fromsource")


# A setup.py of the class that failed only in the sandbox (issue 18): helper static
# libraries through build_clib, compiled by the common "parallel compile" patch of
# CCompiler.compile (a multiprocessing thread pool: its semaphore lives in /dev/shm).
_CLIB_SETUP = textwrap.dedent("""\
    import multiprocessing.pool

    from setuptools import Extension, setup
    from distutils import ccompiler


    def parallel_compile(self, sources, output_dir=None, macros=None, include_dirs=None,
                         debug=0, extra_preargs=None, extra_postargs=None, depends=None):
        macros, objects, extra_postargs, pp_opts, build = self._setup_compile(
            output_dir, macros, include_dirs, sources, depends, extra_postargs)
        cc_args = self._get_cc_args(pp_opts, debug, extra_preargs)

        def one(obj):
            src, ext = build[obj]
            self._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)

        with multiprocessing.pool.ThreadPool(2) as pool:
            pool.map(one, objects)
        return objects


    ccompiler.CCompiler.compile = parallel_compile

    setup(
        libraries=[("helper", {"sources": ["clib/helper.c", "clib/twice.c"]})],
        ext_modules=[
            Extension("demo_clib._speedups", ["src/_speedups.c"], libraries=["helper"])
        ],
    )
    """)
_CLIB_FILES = {
    "setup.py": _CLIB_SETUP,
    "clib/helper.c": "long twice(long a);\nlong helper_add(long a, long b) { return twice(a) + b; }\n",
    "clib/twice.c": "long twice(long a) { return 2 * a; }\n",
    "src/_speedups.c": textwrap.dedent("""\
        #define PY_SSIZE_T_CLEAN
        #include <Python.h>

        long helper_add(long a, long b);

        static PyObject *add(PyObject *self, PyObject *args) {
            long a, b;
            if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
            return PyLong_FromLong(helper_add(a, b));
        }

        static PyMethodDef methods[] = {
            {"add", add, METH_VARARGS, "2a + b, from the helper library."},
            {NULL, NULL, 0, NULL},
        };

        static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups", NULL, -1, methods};

        PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
        """),
    "demo_clib/__init__.py": "from ._speedups import add\n",
}


def test_a_package_with_helper_libraries_builds_and_imports(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    requirement = _sdist(
        local_index, tmp_path, "demo-clib", "setuptools-c", extra_files=_CLIB_FILES
    )
    outcome = build_one(ctx, requirement)
    assert outcome.status == "succeeded", outcome.message
    wheel, *_ = _published(ctx, "demo-clib")
    target = tmp_path / "installed"
    zipfile.ZipFile(wheel).extractall(target)
    done = subprocess.run(
        [sys.executable, "-c", "import demo_clib; print(demo_clib.add(20, 2))"],
        cwd=target,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "42"


def test_a_path_denied_in_the_sandbox_is_its_own_category(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    # A generated-headers folder the build itself made read-only: the build's uid is
    # not root and has no capability, so it is denied there (root on the host is not).
    setup = (
        "import os\n"
        "from setuptools import setup\n"
        "os.makedirs('gen', exist_ok=True)\n"
        "os.chmod('gen', 0o500)\n"
        "open('gen/config.h', 'w').close()\n"
        "setup()\n"
    )
    local_index.add(
        make_sdist(tmp_path / "sdists", "demo-denied", "1.0", extra_files={"setup.py": setup})
    )
    outcome = build_one(ctx, "demo-denied==1.0")
    assert outcome.status == "failed"
    assert outcome.category == "sandbox-permission-denied", outcome.message
    assert "permission denied inside the sandbox on gen/config.h:" in outcome.message
    record = get_build(ctx.db, outcome.build_id or 0)
    assert record is not None and record.details["category"] == "sandbox-permission-denied"

def test_rebuild_uses_exactly_the_recorded_build_dependencies(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Issue 18: a release built with an upstream (bootstrap) backend was rebuilt, once that
    # backend had been built into python, with our wheel of it; its SBOM then differed.
    backend_files = {"demo_rebuild_backend/__init__.py": _TINY_BACKEND}
    upstream_wheel = make_wheel(
        tmp_path / "upstream", "demo-rebuild-backend", "1.0", files=backend_files
    )
    sdists = tmp_path / "sdists"
    local_index.add(
        upstream_wheel,
        make_sdist(sdists, "demo-rebuild-backend", "1.0", "flit-core", extra_files=backend_files),
        make_sdist(
            sdists,
            "demo-rebuilt",
            "1.0",
            "in-tree",
            extra_files={
                "pyproject.toml": '[build-system]\nrequires = ["demo-rebuild-backend"]\n'
                'build-backend = "demo_rebuild_backend"\n\n[project]\nname = "demo-rebuilt"\n'
                'version = "1.0"\n',
            },
        ),
    )
    first = build_one(ctx, "demo-rebuilt==1.0")
    assert first.status == "succeeded", first.message
    record = get_build(ctx.db, first.build_id or 0)
    assert record is not None
    (recorded,) = record.details["dependencies"]
    assert recorded["source"] == "bootstrap"
    assert recorded["sha256"] == hashlib.sha256(upstream_wheel.read_bytes()).hexdigest()

    # Since then the backend was built into python: another wheel with the same name.
    assert build_one(ctx, "demo-rebuild-backend==1.0").status == "succeeded"
    (ours,) = [f for f in project_files(ctx.db, "python", "demo-rebuild-backend")
               if f.kind == "wheel"]
    assert ours.filename == recorded["filename"] and ours.sha256 != recorded["sha256"]

    # The rebuild fetches the recorded wheel by its digest (not the cached copy, not ours).
    shutil.rmtree(ctx.cache_dir / "wheels")
    report = rebuild_check(ctx, "demo-rebuilt==1.0")
    assert report.identical, report.to_json()
    assert report.reference.startswith("published")
    (rebuilt,) = report.outcomes
    rebuilt_record = get_build(ctx.db, rebuilt.build_id or 0)
    assert rebuilt_record is not None
    assert rebuilt_record.details["dependencies"] == [recorded]

    # Gone everywhere (the upstream dropped it, the caches are empty): said so, naming it.
    local_index.files["demo-rebuild-backend"].remove(upstream_wheel)
    shutil.rmtree(ctx.cache_dir)
    with pytest.raises(DependencyError) as gone:
        rebuild_check(ctx, "demo-rebuilt==1.0")
    assert gone.value.facts["category"] == "inputs-unavailable"
    assert gone.value.facts["filename"] == recorded["filename"]
    assert recorded["sha256"] in gone.value.message
    data = ["--data-dir", str(tmp_path / "data")]
    upstream = ["--upstream", local_index.url]
    assert main([*data, "rebuild", "--check", "demo-rebuilt==1.0", *upstream]) == 2
    stderr = capsys.readouterr().err
    assert "inputs unavailable" in stderr and recorded["filename"] in stderr


def test_an_upstream_page_cannot_make_the_build_read_the_signing_key(tmp_path: Path) -> None:
    # Issue 18: a page linking the key as an sdist made the build log print the key's digest.
    key = tmp_path / "data" / "keys" / "signing-key.pem"
    href = f"{key.as_uri()}#sha256={'0' * 64}"

    class Page(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = f'<html><body><a href="{href}">demo_keyleak-1.0.tar.gz</a></body></html>'
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body.encode())))
            self.end_headers()
            self.wfile.write(body.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    ctx = build_context(tmp_path / "data", f"http://127.0.0.1:{server.server_address[1]}/simple/")
    try:
        assert key.is_file()  # the context created it
        outcome = build_one(ctx, "demo-keyleak==1.0")
        record = get_build(ctx.db, outcome.build_id or 0)
    finally:
        ctx.close()
        server.shutdown()
        server.server_close()
        thread.join()
    assert outcome.status == "failed" and outcome.category == "upstream-error"
    assert "not fetched" in outcome.message
    assert record is not None
    digest = hashlib.sha256(key.read_bytes()).hexdigest()
    for text in (outcome.message, record.log, json.dumps(record.details)):
        assert digest not in text and str(key) not in text


def test_an_archived_sdist_that_is_not_the_listed_bytes_is_refused(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    # Issue 17: the blob store is shared by builders that must not take each other's word.
    requirement = _sdist(local_index, tmp_path, "demo-tampered", "in-tree")
    first = build_one(ctx, requirement, publish=False)
    assert first.status == "succeeded", first.message
    record = get_build(ctx.db, first.build_id or 0)
    assert record is not None
    archived = ctx.blobs.local_path(record.details["sdist"]["sha256"])
    assert archived is not None
    archived.chmod(0o644)
    archived.write_bytes(archived.read_bytes() + b"tampered")
    again = build_one(ctx, requirement, publish=False)
    assert again.status == "failed" and again.category == "hash-mismatch", again.message
    assert "the archived copy in the blob store" in again.message
