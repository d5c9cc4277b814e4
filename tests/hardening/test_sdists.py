"""Hostile sdists: bombs of every compressor and of tar's own headers, a million members,
PKG-INFO and wheels that lie, and build backends that try to leave the sandbox.

The member-level traversal cases (``..``, absolute paths, links, devices)
live in tests/build/test_unpack.py; this module adds what issue 8 asks on top.
Archives are written byte by byte here so they can be what no honest tool writes.
"""

from __future__ import annotations

import bz2
import dataclasses
import hashlib
import io
import json
import lzma
import os
import socket
import tarfile
import textwrap
import threading
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import pytest

from fromsource.bounded import OutputLimits
from fromsource.build.outcome import BuildOutcome
from fromsource.build.pipeline import BuildContext, build_one
from fromsource.build.sandbox import SandboxLimits, tool_available
from fromsource.build.unpack import UnpackLimits, unpack_sdist
from fromsource.errors import UnsafeArchiveError
from fromsource.store.catalog import all_files
from fromsource.store.fsck import run_fsck
from tests.conftest import IndexServer, start_server, stop_server
from tests.packages import SDIST_EPOCH, LocalIndex, build_context, local_index, make_sdist  # noqa: F401

MiB = 1 << 20
TOP = "demo-1.0"
PKG_INFO = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n"

# -- writing archives by hand ----------------------------------------------------------------


def header(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mtime, info.mode = size, kind, SDIST_EPOCH, 0o644
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE) -> bytes:
    return header(name, len(data), kind) + data + bytes(-len(data) % 512)


def zeros(total: int) -> Iterator[bytes]:
    chunk = bytes(MiB)
    while total > 0:
        yield chunk[: min(MiB, total)]
        total -= MiB


def compressed(parts: Iterable[bytes], codec: str) -> bytes:
    """The tar stream *parts* (plus its end blocks) compressed with *codec*."""
    compressor: zlib._Compress | bz2.BZ2Compressor | lzma.LZMACompressor
    if codec == "gz":
        compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    elif codec == "bz2":
        compressor = bz2.BZ2Compressor(1)
    else:
        compressor = lzma.LZMACompressor(preset=0)
    out = [compressor.compress(p) for p in parts]
    out += [compressor.compress(bytes(1024)), compressor.flush()]
    return b"".join(out)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


DEFAULT_LIMITS = UnpackLimits()


def refused(archive: Path, dest: Path, words: str, limits: UnpackLimits = DEFAULT_LIMITS) -> float:
    """Assert *archive* is refused with *words* and nothing is left; return the seconds taken."""
    start = time.monotonic()
    with pytest.raises(UnsafeArchiveError) as caught:
        unpack_sdist(archive, dest, limits)
    assert words in caught.value.message, caught.value.message
    assert archive.name in caught.value.message
    assert not dest.exists() or not any(dest.iterdir())
    return time.monotonic() - start


# -- bombs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["gz", "bz2", "xz"])
def test_compression_bombs_are_refused_with_the_default_limits(tmp_path: Path, codec: str) -> None:
    size = 256 * MiB if codec == "bz2" else 64 * MiB  # bz2 squeezes zeros the hardest
    parts = [member(f"{TOP}/PKG-INFO", PKG_INFO), header(f"{TOP}/zeros.bin", size), *zeros(size)]
    archive = write(tmp_path, f"demo-1.0.tar.{codec}", compressed(parts, codec))
    assert archive.stat().st_size < size // 100
    assert refused(archive, tmp_path / "out", "compression bomb") < 30


def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_bomb_is_refused_with_the_default_limits(tmp_path: Path) -> None:
    archive = write(tmp_path, "demo-1.0.zip", _zip([(f"{TOP}/PKG-INFO", PKG_INFO), (f"{TOP}/z", bytes(64 * MiB))]))
    assert refused(archive, tmp_path / "out", "compression bomb") < 30


def _overlapping_zip(copies: int, size: int, rename: bool) -> bytes:
    """One compressed file that many central-directory entries point at (an overlap bomb).

    With *rename* the entries carry other names than the one local header.
    """
    one = zipfile.ZipInfo(f"{TOP}/z0", (2021, 1, 1, 0, 0, 0))
    one.compress_type = zipfile.ZIP_DEFLATED
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(one, bytes(size))
    data = buffer.getvalue()
    end = data.rindex(b"PK\x05\x06")
    central = data[data.index(b"PK\x01\x02") : end]
    records = b"".join(
        central.replace(b"/z0", f"/z{i % 10}".encode()) if rename else central for i in range(copies)
    )
    local = data[: data.index(b"PK\x01\x02")]
    eocd = (
        b"PK\x05\x06" + bytes(4) + copies.to_bytes(2, "little") * 2
        + len(records).to_bytes(4, "little") + len(local).to_bytes(4, "little") + b"\x00\x00"
    )
    return local + records + eocd


def test_overlapping_zip_bomb_is_refused(tmp_path: Path) -> None:
    archive = write(tmp_path, "demo-1.0.zip", _overlapping_zip(copies=200, size=8 * MiB, rename=False))
    assert refused(archive, tmp_path / "out", "compression bomb") < 30


def test_a_zip_whose_directory_and_headers_disagree_is_refused(tmp_path: Path) -> None:
    # Regression: zipfile's BadZipFile escaped unpack_sdist raw instead of UnsafeArchiveError.
    archive = write(tmp_path, "demo-1.0.zip", _overlapping_zip(copies=20, size=1024, rename=True))
    assert refused(archive, tmp_path / "out", "cannot be read") < 5


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME])
def test_an_oversized_extended_header_is_refused_before_it_is_read(tmp_path: Path, kind: bytes) -> None:
    # Regression: tarfile read the whole header into memory; a 1.3 MB archive with a
    # 300 MB pax header took ~900 MB and 18 s before being accepted.
    size = 64 * MiB
    parts = [header("././@PaxHeader", size, kind), *zeros(size), member(f"{TOP}/PKG-INFO", PKG_INFO)]
    archive = write(tmp_path, "demo-1.0.tar.gz", compressed(parts, "gz"))
    assert refused(archive, tmp_path / "out", "past the 1048576-byte limit (a memory bomb)") < 2


def test_a_chain_of_extended_headers_is_refused(tmp_path: Path) -> None:
    # Regression: each GNU long-name header made tarfile recurse; 2000 gave a RecursionError.
    link = b"demo-1.0/" + b"x" * 100 + b"\x00"
    parts = [member("././@LongLink", link, tarfile.GNUTYPE_LONGNAME) for _ in range(2000)]
    parts.append(member(f"{TOP}/PKG-INFO", PKG_INFO))
    archive = write(tmp_path, "demo-1.0.tar.gz", compressed(parts, "gz"))
    assert refused(archive, tmp_path / "out", "chains more than 8 extended headers") < 5


def test_headers_alone_cannot_decompress_without_bound(tmp_path: Path) -> None:
    # Many extended headers just under the size limit: only headers, no content at all.
    parts: list[bytes] = []
    for number in range(120):
        record = b"comment=" + b"x" * (MiB - 40) + b"\n"
        text = str(len(record) + 8).encode() + b" " + record
        parts.append(member("././@PaxHeader", text[: MiB - 1], tarfile.XHDTYPE))
        parts.append(member(f"{TOP}/f{number}", b""))
    archive = write(tmp_path, "demo-1.0.tar.gz", compressed(parts, "gz"))
    assert refused(archive, tmp_path / "out", "bytes of tar stream") < 10


def test_a_million_tiny_members_are_refused_at_the_member_limit(tmp_path: Path) -> None:
    block = header(f"{TOP}/tiny")
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    chunks = [compressor.compress(block * 2000) for _ in range(500)]  # 1,000,000 members
    archive = write(tmp_path, "demo-1.0.tar.gz", b"".join([*chunks, compressor.compress(bytes(1024)), compressor.flush()]))
    seconds = refused(archive, tmp_path / "out", "past the limit of 1000 members", UnpackLimits(max_members=1000))
    assert seconds < 5  # stops at member 1001: the other 998,999 are never read


# -- the pipeline: lies and escapes -----------------------------------------------------------

needs_bwrap = pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")


@pytest.fixture(scope="module")
def hostile(
    tmp_path_factory: pytest.TempPathFactory, local_index: LocalIndex  # noqa: F811
) -> Iterator[tuple[BuildContext, IndexServer, Path]]:
    """A build context whose data dir a live index serves, with planted secrets outside it."""
    base = tmp_path_factory.mktemp("hostile-builds")
    context = build_context(
        base / "data", local_index.url,
        limits=SandboxLimits(timeout_seconds=60, max_processes=32, memory_bytes=1 << 30),
    )
    server = start_server(base / "data")
    try:
        yield context, server, base
    finally:
        stop_server(server)
        context.close()


def _tarball(dest: Path, name: str, files: dict[str, str], pkg_info: str) -> Path:
    top = f"{name.replace('-', '_')}-1.0"
    parts = [member(f"{top}/PKG-INFO", pkg_info.encode())]
    parts += [member(f"{top}/{path}", text.encode()) for path, text in sorted(files.items())]
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{top}.tar.gz"
    target.write_bytes(compressed(parts, "gz"))
    return target


@needs_bwrap
@pytest.mark.parametrize(
    ("name", "says"),
    [("demo-liar-name", "Name: somebody-else\nVersion: 1.0\n"),
     ("demo-liar-version", "Name: demo-liar-version\nVersion: 6.6.6\n")],
)
def test_a_pkg_info_that_lies_is_refused(
    hostile: tuple[BuildContext, IndexServer, Path], local_index: LocalIndex, name: str, says: str  # noqa: F811
) -> None:
    ctx, _server, base = hostile
    honest = make_sdist(base / "honest", name, "1.0", "in-tree")
    with tarfile.open(honest) as tar:
        files = {
            m.name.split("/", 1)[1]: (tar.extractfile(m) or io.BytesIO()).read().decode()
            for m in tar.getmembers() if m.isfile() and not m.name.endswith("PKG-INFO")
        }
    local_index.add(_tarball(base / "liars", name, files, "Metadata-Version: 2.1\n" + says))
    outcome = build_one(ctx, f"{name}==1.0")
    assert outcome.status == "failed" and outcome.category == "sdist-mismatch", outcome.message
    assert "PKG-INFO says" in outcome.message
    assert not [f for f in all_files(ctx.db) if f.project == name]


_LYING_WHEEL = textwrap.dedent("""\
    import base64, hashlib, os, zipfile

    def get_requires_for_build_wheel(config_settings=None):
        return []

    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        info = "{folder}"
        files = {{
            info + "/METADATA": b"Metadata-Version: 2.1\\nName: {meta_name}\\nVersion: {meta_version}\\n\\n" + b"{padding}",
            info + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: liar\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
        }}
        def h(data):
            return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record = [f"{{p}},{{h(d)}},{{len(d)}}" for p, d in files.items()] + [info + "/RECORD,,"]
        files[info + "/RECORD"] = ("\\n".join(record) + "\\n").encode()
        filename = "{module}-{file_version}-py3-none-any.whl"
        with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as zf:
            for path, data in files.items():
                zf.writestr(path, data)
        return filename
    """)


@needs_bwrap
@pytest.mark.parametrize(
    ("name", "meta_name", "meta_version", "file_version", "folder"),
    [
        ("demo-wheel-name", "somebody-else", "1.0", "1.0", ""),  # METADATA lies (new check)
        ("demo-wheel-meta", "demo-wheel-meta", "2.0", "1.0", ""),  # METADATA lies about the version
        ("demo-wheel-file", "demo-wheel-file", "2.0", "2.0", ""),  # the filename itself is another version
        # Issue 18: filename and METADATA honest, the .dist-info folder names another project
        # (uv would install it over that project's files).
        ("demo-wheel-folder", "demo-wheel-folder", "1.0", "1.0", "honest-1.0.dist-info"),
    ],
)
def test_a_wheel_that_is_not_the_requested_release_is_refused(
    hostile: tuple[BuildContext, IndexServer, Path], local_index: LocalIndex,  # noqa: F811
    name: str, meta_name: str, meta_version: str, file_version: str, folder: str,
) -> None:
    ctx, _server, base = hostile
    module = name.replace("-", "_")
    backend = _LYING_WHEEL.format(
        module=module, meta_name=meta_name, meta_version=meta_version, file_version=file_version,
        folder=folder or f"{module}-1.0.dist-info", padding="",
    )
    local_index.add(make_sdist(base / "sdists", name, "1.0", "in-tree", backend_code=backend))
    outcome = build_one(ctx, f"{name}==1.0")
    assert outcome.status == "failed" and outcome.category == "wheel-mismatch", outcome.message
    assert not [f for f in all_files(ctx.db) if f.project == name]
    assert "attest" not in dict(outcome.step_seconds)  # refused before anything was signed
    if folder:
        assert repr(folder) in outcome.message


@needs_bwrap
def test_a_metadata_bomb_is_refused_before_it_costs_the_host(
    hostile: tuple[BuildContext, IndexServer, Path], local_index: LocalIndex,  # noqa: F811
) -> None:
    # Issue 18: 256 MiB of METADATA in a 262 KB wheel; here 4 MiB against a 1 MiB cap.
    ctx, _server, base = hostile
    capped = dataclasses.replace(ctx, output_limits=OutputLimits(metadata_bytes=1 << 20))
    backend = _LYING_WHEEL.format(
        module="demo_bomb", meta_name="demo-bomb", meta_version="1.0", file_version="1.0",
        folder="demo_bomb-1.0.dist-info", padding='" + b"x" * (4 << 20) + b"',  # code: 4 MiB of body
    )
    local_index.add(make_sdist(base / "sdists", "demo-bomb", "1.0", "in-tree", backend_code=backend))
    outcome = build_one(capped, "demo-bomb==1.0")
    assert outcome.status == "failed" and outcome.category == "oversized-output", outcome.message
    assert "demo_bomb-1.0.dist-info/METADATA" in outcome.message
    assert not [f for f in all_files(ctx.db) if f.project == "demo-bomb"]


@needs_bwrap
def test_a_fifo_as_the_wheel_fails_the_build_instead_of_wedging_it(
    hostile: tuple[BuildContext, IndexServer, Path], local_index: LocalIndex,  # noqa: F811
) -> None:
    ctx, _server, base = hostile
    backend = textwrap.dedent("""\
        import os
        def get_requires_for_build_wheel(config_settings=None):
            return []
        def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
            os.mkfifo(os.path.join(wheel_directory, "demo_fifo-1.0-py3-none-any.whl"))
            return "demo_fifo-1.0-py3-none-any.whl"
        """)
    local_index.add(make_sdist(base / "sdists", "demo-fifo", "1.0", "in-tree", backend_code=backend))
    done: list[BuildOutcome] = []
    worker = threading.Thread(target=lambda: done.append(build_one(ctx, "demo-fifo==1.0")))
    worker.daemon = True
    worker.start()
    worker.join(120)
    assert done, "the build is wedged on a FIFO"
    assert done[0].status == "failed" and done[0].category == "unsafe-output", done[0].message


_ESCAPE = textwrap.dedent("""\
    import json, os, socket

    def get_requires_for_build_wheel(config_settings=None):
        return []

    def _try(action):
        try:
            return "ok: " + str(action())[:60]
        except BaseException as exc:
            return "refused: " + type(exc).__name__

    def _connect(port):
        s = socket.socket()
        s.settimeout(2)
        s.connect(("127.0.0.1", port))
        return "connected"

    def _write(path):
        with open(path, "w") as handle:
            handle.write("escaped")
        return path

    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        probes = {{
            "socket to the host": _try(lambda: _connect({listener})),
            "socket to the index": _try(lambda: _connect({index_port})),
            "signing key": _try(lambda: open({key!r}, "rb").read()),
            "key folder": _try(lambda: os.listdir({keys!r})),
            "database": _try(lambda: open({db!r}, "rb").read(16)),
            "data dir": _try(lambda: os.listdir({data!r})),
            "write outside": _try(lambda: _write({outside!r})),
            "write tmp": _try(lambda: _write("/tmp/fromsource-escape-{tag}")),
            "secret env": _try(lambda: os.environ["FROMSOURCE_PROBE_SECRET"]),
            "processes visible": _try(lambda: sum(p.isdigit() for p in os.listdir("/proc"))),
        }}
        raise RuntimeError("PROBES " + json.dumps(probes))
    """)


@needs_bwrap
def test_a_backend_cannot_reach_the_network_the_key_the_database_or_the_host(
    hostile: tuple[BuildContext, IndexServer, Path],
    local_index: LocalIndex,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx, server, base = hostile
    data = base / "data"
    key = data / "keys" / "signing-key.pem"
    key_digest = hashlib.sha256(key.read_bytes()).hexdigest()
    outside = base / "escaped.txt"
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    monkeypatch.setenv("FROMSOURCE_PROBE_SECRET", "must-not-leak")
    backend = _ESCAPE.format(
        listener=listener.getsockname()[1], index_port=int(server.url.rsplit(":", 1)[1].strip("/")),
        key=str(key), keys=str(key.parent), db=str(data / "fromsource.db"), data=str(data),
        outside=str(outside), tag=tag,
    )
    local_index.add(make_sdist(base / "sdists", "demo-escape", "1.0", "in-tree", backend_code=backend))
    try:
        outcome = build_one(ctx, "demo-escape==1.0")
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()
    assert outcome.status == "failed", outcome.message
    probes = json.loads(outcome.message.rsplit("PROBES ", 1)[1].splitlines()[0])
    visible = int(probes.pop("processes visible").split(": ", 1)[1])
    assert visible < 10, "the sandbox sees the host's processes"
    in_box_tmp = probes.pop("write tmp")  # the sandbox's own /tmp: checked on the host below
    assert all(value.startswith("refused") for value in probes.values()), probes
    assert in_box_tmp.startswith(("ok", "refused"))
    assert not outside.exists() and not Path(f"/tmp/fromsource-escape-{tag}").exists()
    assert hashlib.sha256(key.read_bytes()).hexdigest() == key_digest


@needs_bwrap
def _tasks() -> int:
    """Tasks on the whole host (the 4th field of /proc/loadavg: running/total)."""
    return int(Path("/proc/loadavg").read_text().split()[3].split("/")[1])


def test_a_fork_bomb_is_killed_and_the_index_keeps_serving(
    hostile: tuple[BuildContext, IndexServer, Path], local_index: LocalIndex  # noqa: F811
) -> None:
    ctx, server, base = hostile
    backend = textwrap.dedent("""\
        import os, time
        def get_requires_for_build_wheel(config_settings=None):
            return []
        def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(0.01)
        """)
    local_index.add(make_sdist(base / "sdists", "demo-forkbomb", "1.0", "in-tree", backend_code=backend))
    baseline = _tasks()
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:  # the host-wide number of tasks, every few milliseconds
        while not done.is_set():
            peak[0] = max(peak[0], _tasks())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.monotonic()
    try:
        outcome = build_one(ctx, "demo-forkbomb==1.0")
    finally:
        done.set()
        sampler.join()
    assert outcome.status == "failed" and outcome.category == "process-limit", outcome
    assert time.monotonic() - start < 30
    # Regression: between two polls of the watchdog the bomb reached the host's pid_max
    # (~32,000 tasks, every process on the machine unable to fork). Other work on the
    # host moves the count too, hence the generous margin.
    if Path("/sys/fs/cgroup/pids").is_dir() and os.access("/sys/fs/cgroup/pids", os.W_OK):
        assert peak[0] - baseline < 32 + 500, (baseline, peak[0])
    assert _tasks() < baseline + 500  # nothing of it is left
    assert httpx.get(server.url + "healthz", timeout=10).status_code == 200
    report = run_fsck(ctx.db, ctx.blobs)
    assert report.missing == () and report.mismatched == () and report.database == "ok"


@needs_bwrap
def test_a_build_past_its_time_limit_is_killed_with_the_daemons_it_left(
    tmp_path: Path, local_index: LocalIndex  # noqa: F811
) -> None:
    marker = f"fromsource-daemon-{os.getpid()}-{time.monotonic_ns()}"
    backend = textwrap.dedent(f"""\
        import os, signal, subprocess, sys, time
        def get_requires_for_build_wheel(config_settings=None):
            return []
        def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            # A daemon in its own session, then the backend itself hangs.
            code = "import time; open('daemon-started', 'w').close(); time.sleep(600)"
            subprocess.Popen([sys.executable, "-c", code, {marker!r}], start_new_session=True)
            time.sleep(600)
        """)
    ctx = build_context(
        tmp_path / "data", local_index.url, limits=SandboxLimits(timeout_seconds=3), keep_work=True
    )
    try:
        local_index.add(make_sdist(tmp_path / "sdists", "demo-daemon", "1.0", "in-tree", backend_code=backend))
        start = time.monotonic()
        outcome = build_one(ctx, "demo-daemon==1.0")
    finally:
        ctx.close()
    assert outcome.status == "failed" and outcome.category == "timeout", outcome.message
    assert time.monotonic() - start < 30
    assert list((tmp_path / "data" / "work").rglob("daemon-started")), "the daemon never ran"
    time.sleep(0.3)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            assert marker.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes(), pid
        except OSError:
            continue


@needs_bwrap
@pytest.mark.skipif(
    not os.access("/sys/fs/cgroup/pids", os.W_OK), reason="no writable pids cgroup controller"
)
def test_the_sandbox_leaves_no_cgroup_behind(tmp_path: Path) -> None:
    # Regression: a cgroup whose last task was still exiting could not be removed
    # (EBUSY) and stayed behind, empty, after the build.
    from fromsource.build.sandbox import Sandbox

    cgroups = Path("/sys/fs/cgroup/pids")
    before = set(cgroups.glob("fromsource-*"))
    root = tmp_path / "w"
    root.mkdir()
    box = Sandbox(root, tool="bwrap", limits=SandboxLimits(timeout_seconds=20, max_processes=16))
    env = {"PATH": "/usr/bin:/bin"}
    for command in ["sleep 0.01 & sleep 0.01 & wait", "for i in $(seq 40); do sleep 5 & done; wait",
                    "true", "exit 3"] * 3:
        box.run(["sh", "-c", command], cwd=box.root, env=env, log=tmp_path / "log")
    left = set(cgroups.glob("fromsource-*")) - before
    deadline = time.monotonic() + 60  # other builds on this host may hold theirs right now
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = {group for group in left if group.exists()}
    assert not left
