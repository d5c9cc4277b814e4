"""Benchmark: simple-API project page and file download, fromsource vs nginx.

Starts, on loopback ports, (a) ``fromsource serve`` over a temporary data dir
with one project published, and (b) nginx serving the same page bytes and the
same wheel from a static folder; then runs wrk against each for a fixed time
and prints requests/s and the ratio fromsource/nginx.  Optionally (--uvicorn)
also runs the same app under uvicorn.  Everything stops by itself.

Usage: .venv/bin/python bench/index_bench.py [--seconds 10] [--connections 64]
Needs: wrk and nginx (Debian packages ``wrk`` and ``nginx-light``).
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import free_port
from tests.factories import make_wheel

from fromsource.store.blobs import open_blob_store
from fromsource.store.db import open_database
from fromsource.store.publish import publish_file
from fromsource.store.tokens import create_token

JSON = "application/vnd.pypi.simple.v1+json"


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> float:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for key, value in headers.items():
        cmd += ["-H", f"{key}: {value}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"wrk saw {non2xx.group(1)} error responses from {url}")
    assert match, out
    return float(match.group(1))


def wait_up(url: str) -> None:
    for _ in range(200):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


def start_fromsource(data: Path, port: int, server: str, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FROMSOURCE_DATA_DIR": str(data)}
    cmd = [sys.executable, "-m", "fromsource.cli.main", "serve", "--port", str(port),
           "--workers", str(workers), "--log-level", "warning", "--server", server]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def start_nginx(root: Path, port: int, work: Path) -> subprocess.Popen[bytes]:
    conf = work / "nginx.conf"
    conf.write_text(f"""
worker_processes 2;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  client_body_temp_path {work}/tmp;
  proxy_temp_path {work}/tmp;
  fastcgi_temp_path {work}/tmp;
  uwsgi_temp_path {work}/tmp;
  scgi_temp_path {work}/tmp;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    location / {{ default_type application/octet-stream; }}
  }}
}}
""")
    (work / "tmp").mkdir(exist_ok=True)
    return subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)], start_new_session=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--uvicorn", action="store_true", help="also measure under uvicorn")
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None and not Path("/usr/sbin/nginx").exists():
            raise SystemExit(f"{tool} is missing: apt-get install wrk nginx-light")

    work = Path(tempfile.mkdtemp(prefix="fromsource-bench-"))
    work.chmod(0o755)  # nginx workers run as an unprivileged user
    processes: list[subprocess.Popen[bytes]] = []
    try:
        data = work / "data"
        db = open_database(f"sqlite:///{data / 'fromsource.db'}")
        blobs = open_blob_store(f"file://{data / 'blobs'}")
        wheel = make_wheel(work / "wheels", "bench-pkg", "1.0", files={"bench_pkg/__init__.py": "x = 1\n" * 20000})
        for minor in range(20):
            publish_file(db, blobs, make_wheel(work / "wheels", "bench-pkg", f"0.{minor}"), "python")
        publish_file(db, blobs, wheel, "python")
        new = create_token(db, org="bench", repos=["python"])
        auth = "Basic " + base64.b64encode(f"{new.info.id}:{new.secret}".encode()).decode()

        results: dict[str, float] = {}
        servers = ["granian"] + (["uvicorn"] if args.uvicorn else [])
        page_bytes = b""
        file_path = ""
        for server in servers:
            port = free_port()
            proc = start_fromsource(data, port, server, args.workers)
            processes.append(proc)
            base = f"http://127.0.0.1:{port}"
            wait_up(base + "/healthz")
            page = httpx.get(base + "/python/simple/bench-pkg/", headers={"Authorization": auth, "Accept": JSON})
            page.raise_for_status()
            page_bytes = page.content
            file_url = page.json()["files"][-1]["url"]
            file_path = str(httpx.URL(base + "/python/simple/bench-pkg/").join(file_url).path)
            headers = {"Authorization": auth, "Accept": JSON}
            results[f"{server} page"] = wrk(base + "/python/simple/bench-pkg/", args.seconds, args.connections, headers)
            results[f"{server} file"] = wrk(base + file_path, args.seconds, args.connections, {"Authorization": auth})
            stop(proc)

        static = work / "static"
        (static / "python/simple/bench-pkg").mkdir(parents=True)
        (static / "python/simple/bench-pkg/index.html").write_bytes(page_bytes)
        target = static / file_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(wheel, target)
        port = free_port()
        nginx = start_nginx(static, port, work)
        processes.append(nginx)
        wait_up(f"http://127.0.0.1:{port}/")
        results["nginx page"] = wrk(f"http://127.0.0.1:{port}/python/simple/bench-pkg/", args.seconds, args.connections, {})
        results["nginx file"] = wrk(f"http://127.0.0.1:{port}{file_path}", args.seconds, args.connections, {})

        print(f"# {args.seconds}s per run, {args.connections} connections, wrk -t2, "
              f"{args.workers} fromsource worker(s), page {len(page_bytes)} B, wheel {wheel.stat().st_size} B")
        print(f"{'target':<16} {'req/s':>10} {'vs nginx':>9}")
        for name, rps in results.items():
            kind = name.split()[-1]
            print(f"{name:<16} {rps:>10.0f} {rps / results['nginx ' + kind]:>8.2f}x")
    finally:
        for proc in processes:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
