"""The sdist served beside the wheels (issue 12, item 4): built, listed, installed, verified.

A release the tests write (an in-tree backend: it needs no build dependency,
so pip can build it from the sdist with our index alone) is built through the
real pipeline in the real sandbox, then served by a real ``fromsource serve``.

Remediated releases whose setuptools backend computes the version (setup.cfg
``attr:``, a ``setup.py`` argument) are built the same way as ``1.0+fs.1``;
real pip and uv then build them from the repacked sdist (setuptools from a
local folder, as a client has it) and install ``1.0+fs.1``.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from fromsource.build.history import get_build
from fromsource.build.pipeline import BuildContext, build_one
from fromsource.build.repack import repack_sdist
from fromsource.build.sandbox import tool_available
from fromsource.cli.main import main
from fromsource.provenance import (
    PatchInfo,
    envelope_bytes,
    from_pep740,
    parse_keys_document,
    verify_source_attestation,
)
from fromsource.store.catalog import project_files
from fromsource.store.publish import publish_file
from fromsource.verify.decide import LOCAL_BUILD_REASON
from tests.clients import UV, bare_venv, clean_env, pip_for, run
from tests.conftest import IndexServer, start_server, stop_server
from tests.packages import (
    SDIST_EPOCH,
    LocalIndex,
    build_context,
    make_sdist,
    wheel_from_installed,
    write_sdist,
)

pytestmark = pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")

JSON = "application/vnd.pypi.simple.v1+json"
NAME = "sdist-demo"


@dataclass(frozen=True)
class Served:
    upstream: LocalIndex
    sdist: Path
    server: IndexServer
    token: tuple[str, str]

    def get(self, path: str, **headers: str) -> httpx.Response:
        url = path if path.startswith("http") else self.server.url + path
        return httpx.get(url, auth=self.token, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``sdist-demo`` 1.0 built from the upstream into an index that is then served."""
    base = tmp_path_factory.mktemp("sdists")
    sdist = make_sdist(base / "up", NAME, "1.0", "in-tree", pkg_info="Requires-Python: >=3.9\n")
    upstream = LocalIndex()
    upstream.add(sdist)
    with upstream.serve():
        ctx = build_context(base / "data", upstream.url)
        try:
            outcome = build_one(ctx, f"{NAME}==1.0")
        finally:
            ctx.close()
        assert outcome.status == "succeeded", outcome.message
        server = start_server(base / "data")
        try:
            yield Served(upstream, sdist, server, server.token("python", "python-remediated"))
        finally:
            stop_server(server)


def _page_entries(served: Served) -> dict[str, dict[str, object]]:
    answer = served.get(f"python/simple/{NAME}/", accept=JSON)
    assert answer.status_code == 200
    return {f["filename"]: f for f in answer.json()["files"]}


def test_the_upstream_sdist_is_listed_beside_the_wheel(served: Served) -> None:
    entries = _page_entries(served)
    sdist, wheel = entries["sdist_demo-1.0.tar.gz"], entries["sdist_demo-1.0-py3-none-any.whl"]
    upstream_bytes = served.sdist.read_bytes()
    assert sdist["hashes"] == {"sha256": hashlib.sha256(upstream_bytes).hexdigest()}
    assert sdist["size"] == len(upstream_bytes)
    assert sdist["requires-python"] == ">=3.9"
    assert isinstance(sdist["upload-time"], str) and sdist["provenance"]
    assert "core-metadata" not in sdist and "dist-info-metadata" not in sdist
    assert "core-metadata" in wheel
    base = served.server.url + f"python/simple/{NAME}/"
    assert served.get(urljoin(base, str(sdist["url"]))).content == upstream_bytes

    html = served.get(f"python/simple/{NAME}/", accept="text/html").text
    (line,) = [x for x in html.splitlines() if ">sdist_demo-1.0.tar.gz<" in x]
    assert f"#sha256={hashlib.sha256(upstream_bytes).hexdigest()}" in line
    assert 'data-requires-python="&gt;=3.9"' in line and "data-provenance=" in line
    assert "data-core-metadata" not in line


def test_its_provenance_verifies_against_the_index_key(served: Served) -> None:
    entry = _page_entries(served)["sdist_demo-1.0.tar.gz"]
    base = served.server.url + f"python/simple/{NAME}/"
    document = served.get(urljoin(base, str(entry["provenance"]))).json()
    keys = parse_keys_document(served.get(".well-known/fromsource/keys.json").content)
    attestation, _keyid = verify_source_attestation(envelope_bytes(from_pep740(document)), keys)
    digest = hashlib.sha256(served.sdist.read_bytes()).hexdigest()
    assert (attestation.subject_name, attestation.subject_sha256) == (served.sdist.name, digest)
    assert attestation.sdist_sha256 == digest and not attestation.repacked
    assert (
        attestation.sdist_url
        == served.upstream.url.replace("simple/", "files/") + served.sdist.name
    )
    assert (attestation.project, attestation.version, attestation.repository) == (
        NAME,
        "1.0",
        "python",
    )
    assert attestation.fetched <= attestation.published


def _verify(venv: Path, served: Served, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The one result of ``verify --format json`` on *venv*."""
    token = served.token
    code = main(
        [
            "verify",
            str(venv),
            "--index",
            served.server.url,
            "--username",
            token[0],
            "--password",
            token[1],
            "--format",
            "json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, out + err
    (result,) = json.loads(out)["results"]
    assert isinstance(result, dict)
    return result


def test_pip_builds_it_from_the_sdist_and_verify_says_so(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = clean_env(tmp_path / "home")
    url = served.server.cred_url("python", served.token)
    for venv, extra in (
        (tmp_path / "from-sdist", ["--no-binary", ":all:"]),
        (tmp_path / "from-wheel", []),
    ):
        python = bare_venv(venv)
        done = run(
            [
                *pip_for(python),
                "install",
                "-q",
                "--no-cache-dir",
                "--index-url",
                url,
                *extra,
                f"{NAME}==1.0",
            ],
            env,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    local = _verify(tmp_path / "from-sdist", served, capsys)
    assert local["status"] == "not-built-by-index"
    assert local["details"].startswith(LOCAL_BUILD_REASON + ": sdist_demo-1.0.tar.gz, mirrored")
    assert _verify(tmp_path / "from-wheel", served, capsys)["status"] == "verified"


def test_with_the_setting_off_no_sdist_is_published_or_listed(
    served: Served, tmp_path: Path
) -> None:
    ctx = build_context(tmp_path / "data", served.upstream.url, serve_sdists=False)
    try:
        outcome = build_one(ctx, f"{NAME}==1.0")
        assert outcome.status == "succeeded", outcome.message
        assert [f.kind for f in project_files(ctx.db, "python", NAME)] == ["wheel"]
        record = get_build(ctx.db, outcome.build_id or 0)
        assert record is not None and "sdist not published: serve_sdists is off" in record.log
        publish_file(ctx.db, ctx.blobs, served.sdist, "python")  # as an operator might
    finally:
        ctx.close()
    server = start_server(tmp_path / "data", env={"FROMSOURCE_SERVE_SDISTS": "0"})
    try:
        auth = server.token("python")
        page = httpx.get(f"{server.simple()}{NAME}/", auth=auth, headers={"accept": JSON})
        assert [f["filename"] for f in page.json()["files"]] == ["sdist_demo-1.0-py3-none-any.whl"]
        html = httpx.get(f"{server.simple()}{NAME}/", auth=auth).text
        assert ".tar.gz" not in html
        file = httpx.get(f"{server.url}python/files/{NAME}/1.0/{served.sdist.name}", auth=auth)
        assert file.status_code == 404
    finally:
        stop_server(server)


def _remediate(served: Served, base: Path) -> tuple[BuildContext, bytes, str]:
    def patch(tree: Path) -> None:
        (tree / "sdist_demo" / "__init__.py").write_text('"""Fixed."""\n\n__version__ = "1.0"\n')

    ctx = build_context(base, served.upstream.url)
    fix = PatchInfo("0001-fix.patch", "ab" * 32, ("CVE-2099-0001",))
    outcome = build_one(
        ctx,
        f"{NAME}==1.0",
        repo="python-remediated",
        patches=[fix],
        patch_tree=patch,
        local_version="fs.1",
    )
    assert outcome.status == "succeeded", outcome.message
    (info,) = [f for f in project_files(ctx.db, "python-remediated", NAME) if f.kind == "sdist"]
    assert info.provenance_sha256 is not None
    envelope = ctx.blobs.read_bytes(info.provenance_sha256)
    return ctx, ctx.blobs.read_bytes(info.sha256), envelope.decode()


def test_a_remediated_build_publishes_a_reproducible_repack(served: Served, tmp_path: Path) -> None:
    first, one, envelope = _remediate(served, tmp_path / "one")
    second, two, _ = _remediate(served, tmp_path / "two")
    try:
        assert one == two  # two builds, the same bytes
        (info,) = [
            f for f in project_files(first.db, "python-remediated", NAME) if f.kind == "sdist"
        ]
        assert info.filename == "sdist_demo-1.0+fs.1.tar.gz" and info.requires_python == ">=3.9"
        key = first.signing_key
        attestation, _ = verify_source_attestation(envelope, {key.keyid: key.public})
        assert attestation.repacked and attestation.source_date_epoch == SDIST_EPOCH
        assert [(p.name, p.fixes) for p in attestation.patches] == [
            ("0001-fix.patch", ("CVE-2099-0001",))
        ]
        assert attestation.sdist_sha256 == hashlib.sha256(served.sdist.read_bytes()).hexdigest()
        with tarfile.open(first.blobs.local_path(info.sha256) or "") as tar:
            pkg_info = tar.extractfile("sdist_demo-1.0+fs.1/PKG-INFO")
            init = tar.extractfile("sdist_demo-1.0+fs.1/sdist_demo/__init__.py")
            assert pkg_info is not None and init is not None
            assert re.search(rb"^Version: 1\.0\+fs\.1$", pkg_info.read(), re.MULTILINE)
            assert init.read().startswith(b'"""Fixed')
            assert {m.mtime for m in tar.getmembers()} == {SDIST_EPOCH}
    finally:
        first.close()
        second.close()


def test_an_sdist_the_index_cannot_serve_is_left_out_with_the_reason(tmp_path: Path) -> None:
    from fromsource.build.sdists import publish_sdist

    archive = make_sdist(tmp_path / "up", NAME, "1.0", "in-tree")
    legacy = archive.with_name(f"{NAME}-1.0.tar.bz2")  # a format pages do not list
    archive.rename(legacy)
    ctx = build_context(tmp_path / "data", "http://127.0.0.1:9/simple/")
    try:
        line = publish_sdist(
            ctx,
            "python",
            legacy,
            project=NAME,
            version="1.0",
            upstream_url="http://user:secret@127.0.0.1:9/files/x",
            upstream_sha256=hashlib.sha256(legacy.read_bytes()).hexdigest(),
            build_id=1,
            work=tmp_path / "work",
            epoch=SDIST_EPOCH,
        )
        assert line.startswith("   sdist not published: ") and "secret" not in line
        assert "only .whl, .tar.gz and .zip distributions are accepted" in line
        assert project_files(ctx.db, "python", NAME) == []
    finally:
        ctx.close()


# Backends that compute the version: installers refused a local build of their repack
# (it said 1.0, the file name 1.0+fs.1) until the repack wrapped the backend.
COMPUTED = {
    "demo-attr": {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\n'
        'build-backend = "setuptools.build_meta"\n',
        "setup.cfg": "[metadata]\nname = demo-attr\nversion = attr: demo_attr.__version__\n\n"
        "[options]\npackages = demo_attr\n",
        "demo_attr/__init__.py": '__version__ = "1.0"\n',
    },
    "demo-literal": {  # no pyproject.toml: PEP 517's legacy setuptools
        "setup.py": "from setuptools import setup\n\n"
        "setup(name='demo-literal', version='1.0', packages=['demo_literal'])\n",
        "demo_literal/__init__.py": '__version__ = "1.0"\n',
    },
}
FIX = PatchInfo("0001-fix.patch", "cd" * 32, ("CVE-2099-0002",))


def _fix(tree: Path) -> None:
    (init,) = tree.glob("demo_*/__init__.py")
    init.write_text(init.read_text() + "FIXED = True\n")


@dataclass(frozen=True)
class Computed:
    served: Served
    upstream: dict[str, Path]
    published: dict[str, bytes]
    backends: Path
    """A folder holding a setuptools wheel, for clients that build from an sdist."""


@pytest.fixture(scope="module")
def computed(
    local_index: LocalIndex, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Computed]:
    """The COMPUTED releases remediated as ``1.0+fs.1`` through the pipeline, then served."""
    base = tmp_path_factory.mktemp("computed")
    upstream = {
        name: write_sdist(base / "up", name, "1.0", files) for name, files in COMPUTED.items()
    }
    local_index.add(*upstream.values())
    ctx = build_context(base / "data", local_index.url)
    published = {}
    try:
        for name in COMPUTED:
            outcome = build_one(
                ctx,
                f"{name}==1.0",
                repo="python-remediated",
                patches=[FIX],
                patch_tree=_fix,
                local_version="fs.1",
            )
            assert outcome.status == "succeeded", outcome.message
            record = get_build(ctx.db, outcome.build_id or 0)
            assert record is not None and "its build backend is wrapped to build" in record.log
            files = project_files(ctx.db, "python-remediated", name)
            (info,) = [f for f in files if f.kind == "sdist"]
            published[name] = ctx.blobs.read_bytes(info.sha256)
    finally:
        ctx.close()
    backends = base / "backends"
    wheel_from_installed("setuptools", backends)
    server = start_server(base / "data")
    try:
        token = server.token("python-remediated")
        served = Served(local_index, upstream["demo-attr"], server, token)
        yield Computed(served, upstream, published, backends)
    finally:
        stop_server(server)


@pytest.mark.parametrize("name", sorted(COMPUTED))
def test_a_computed_version_repack_is_reproducible_and_wrapped(
    computed: Computed, name: str, tmp_path: Path
) -> None:
    again = repack_sdist(
        computed.upstream[name],
        tmp_path,
        project=name,
        version="1.0+fs.1",
        epoch=SDIST_EPOCH,
        patch_tree=_fix,
    )
    assert again.wrapped and again.path.read_bytes() == computed.published[name]


@pytest.mark.parametrize("name", sorted(COMPUTED))
@pytest.mark.parametrize("client", ["pip", "uv"])
def test_pip_and_uv_build_a_computed_version_as_the_local_one(
    computed: Computed, client: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = computed.served
    python = bare_venv(tmp_path / "venv")
    url = served.server.cred_url("python-remediated", served.token)
    # the index serves the sdist; only the build backend comes from elsewhere
    common = ["--index-url", url, "--find-links", str(computed.backends), "--no-binary", name]
    wanted = f"{name}==1.0+fs.1"
    if client == "pip":
        command = [*pip_for(python), "install", "-q", "--no-cache-dir", *common, wanted]
    else:
        command = [UV, "pip", "install", "--python", str(python), "--no-cache", *common, wanted]
    done = run(command, clean_env(tmp_path / "home"))
    assert done.returncode == 0, done.stdout + done.stderr
    module = name.replace("-", "_")
    probe = f"import importlib.metadata as m, {module}; print(m.version({name!r}), {module}.FIXED)"
    shown = run([str(python), "-c", probe], clean_env(tmp_path / "home"))
    assert shown.stdout.split() == ["1.0+fs.1", "True"], shown.stderr
    result = _verify(tmp_path / "venv", served, capsys)
    assert (result["name"], result["version"], result["status"]) == (
        name,
        "1.0+fs.1",
        "not-built-by-index",
    )
    assert result["details"].startswith(
        f"{LOCAL_BUILD_REASON}: {module}-1.0+fs.1.tar.gz, repacked with 1 patch(es) from "
    )
