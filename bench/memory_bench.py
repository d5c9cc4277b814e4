"""Measure: the host's peak memory when a build's output is hostile (issue 18, items 3 and 4).

Three scenarios, each in a fresh child process so its peak RSS is its own
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``; the sandboxed build is a
grandchild and is not counted):

- ``build-metadata``: :func:`build_one` of an in-tree backend whose wheel
  holds a METADATA of ``--mib`` MiB (a few hundred KB compressed);
- ``build-log``: :func:`build_one` of an in-tree backend that prints
  ``--mib`` MiB and builds an honest wheel;
- ``serve-metadata``: ``fromsource serve`` with a ``--mib`` MiB ``.metadata``
  blob stored, fetched by 8 concurrent readers; the peak is the largest
  ``VmHWM`` of the server's processes.

Not a test: run it against two source trees to compare, e.g.::

    PYTHONPATH=<old checkout>/src .venv/bin/python bench/memory_bench.py
    PYTHONPATH=src .venv/bin/python bench/memory_bench.py

Needs bubblewrap for the builds; everything runs offline on loopback.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import start_server, stop_server
from tests.packages import LocalIndex, build_context, make_sdist

MiB = 1 << 20

_BACKEND = """\
import os, sys, zipfile

def get_requires_for_build_wheel(config_settings=None):
    return []

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    line = ("x" * 1023 + "\\n").encode()
    for _ in range({print_mib} * 1024):
        sys.stdout.buffer.write(line)
    sys.stdout.flush()
    info = "{module}-1.0.dist-info"
    name = "{module}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("{module}/__init__.py", b"")
        with zf.open(info + "/METADATA", "w", force_zip64=True) as out:
            out.write(b"Metadata-Version: 2.1\\nName: {name}\\nVersion: 1.0\\n\\n")
            for _ in range({metadata_mib}):
                out.write(b"d" * (1 << 20))
        zf.writestr(info + "/WHEEL", b"Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n")
    return name
"""


def _peak_self_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _build(name: str, metadata_mib: int, print_mib: int) -> dict[str, object]:
    from fromsource.build.pipeline import build_one

    module = name.replace("-", "_")
    with tempfile.TemporaryDirectory(prefix="fromsource-membench-") as tmp:
        base = Path(tmp)
        code = _BACKEND.format(
            module=module, name=name, metadata_mib=metadata_mib, print_mib=print_mib
        )
        index = LocalIndex()
        index.add(make_sdist(base / "sdists", name, "1.0", "in-tree", backend_code=code))
        with index.serve():
            ctx = build_context(base / "data", index.url)
            before = _peak_self_mib()
            start = time.monotonic()
            outcome = build_one(ctx, f"{name}==1.0")
            seconds = time.monotonic() - start
            ctx.close()
    return {
        "peak_before_mib": round(before, 1),
        "peak_after_mib": round(_peak_self_mib(), 1),
        "status": outcome.status,
        "category": outcome.category,
        "seconds": round(seconds, 1),
    }


def _tree(pid: int) -> list[int]:
    """*pid* and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _serve(mib: int, readers: int = 8) -> dict[str, object]:
    from fromsource.store.blobs import open_blob_store
    from fromsource.store.db import open_database
    from fromsource.store.publish import publish_file

    with tempfile.TemporaryDirectory(prefix="fromsource-membench-") as tmp:
        base = Path(tmp)
        data = base / "data"
        data.mkdir()
        wheel = base / "big_meta-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("big_meta/__init__.py", b"")
            with zf.open("big_meta-1.0.dist-info/METADATA", "w", force_zip64=True) as out:
                out.write(b"Metadata-Version: 2.1\nName: big-meta\nVersion: 1.0\n\n")
                for _ in range(mib):
                    out.write(b"d" * MiB)
            zf.writestr(
                "big_meta-1.0.dist-info/WHEEL",
                b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            )
        db = open_database(f"sqlite:///{data / 'fromsource.db'}")
        extra: dict[str, object] = {}
        if "limits" in inspect.signature(publish_file).parameters:  # a cap to lift for the bench
            from fromsource.bounded import OutputLimits

            extra["limits"] = OutputLimits(metadata_bytes=2 * mib * MiB)
        publish_file(db, open_blob_store(f"file://{data / 'blobs'}"), wheel, "python", **extra)  # type: ignore[arg-type]
        db.dispose()
        server = start_server(data, "--anonymous-repo", "python")
        try:
            url = f"{server.url}python/files/big-meta/1.0/{wheel.name}.metadata"
            before = max(_hwm_mib(p) for p in _tree(server.process.pid))
            sizes: list[int] = []

            def read() -> None:
                with httpx.stream("GET", url, timeout=300) as response:
                    sizes.append(sum(len(c) for c in response.iter_bytes(MiB)))

            threads = [threading.Thread(target=read) for _ in range(readers)]
            start = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.monotonic() - start
            after = max(_hwm_mib(p) for p in _tree(server.process.pid))
        finally:
            stop_server(server)
    return {
        "peak_before_mib": round(before, 1),
        "peak_after_mib": round(after, 1),
        "readers": readers,
        "bytes_each": sizes[0] if sizes else 0,
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--scenario", choices=["build-metadata", "build-log", "serve-metadata"])
    args = parser.parse_args()
    if args.scenario == "build-metadata":
        print(json.dumps(_build("demo-metabomb", args.mib, 0)))
        return
    if args.scenario == "build-log":
        print(json.dumps(_build("demo-chatty", 0, args.mib)))
        return
    if args.scenario == "serve-metadata":
        print(json.dumps(_serve(args.mib)))
        return
    import fromsource

    print(f"fromsource from {Path(fromsource.__file__).parent}, {args.mib} MiB")
    for scenario in ("build-metadata", "build-log", "serve-metadata"):
        done = subprocess.run(
            [sys.executable, __file__, "--scenario", scenario, "--mib", str(args.mib)],
            capture_output=True,
            text=True,
            check=False,
        )
        result = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-800:]
        print(f"{scenario:15} {textwrap.shorten(result, 300)}")


if __name__ == "__main__":
    main()
