"""Benchmark: one index replica vs two behind one port, and one build worker vs two.

Everything runs on this machine, on loopback ports, and stops by itself:
PostgreSQL and Redis (Debian packages) in temporary folders, moto in server
mode as the S3 store (no S3 server package is reachable here), nginx as a
round-robin proxy on one port, wrk as the load.

- Replicas: ``fromsource serve`` processes (one granian worker each) on one
  PostgreSQL database and one bucket.  wrk hits, through nginx, (a) the
  cached JSON page of a project with Basic auth and (b) a file URL answered
  with a 302 to a presigned URL (``FROMSOURCE_BLOB_REDIRECT=1``); first with
  one replica behind nginx, then two.  The ratio is two/one.
- Builds: ``fromsource worker`` processes on Redis; N tiny sdists (an
  in-tree backend, no build dependencies) on a local upstream index are
  enqueued at once, and the time until all are published is measured with
  one worker, then (fresh database and bucket) with two.

Usage: .venv/bin/python bench/fleet_bench.py [--seconds 10] [--connections 64] [--builds 8]
Needs: postgresql, redis-server, nginx-light, wrk, bubblewrap (Debian) and moto[server].
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

from tests.conftest import IndexServer, free_port, start_server, stop_server
from tests.factories import make_wheel
from tests.fleet.conftest import Backend, spawn_worker, stop_worker, wait_ready
from tests.fleet.services import start_moto, start_postgres, start_redis
from tests.packages import LocalIndex, bootstrap_wheels, make_sdist

from fromsource.provenance.keystore import load_or_create_signing_key
from fromsource.store.models import ClaimRow
from fromsource.workers.queue import CeleryQueue
from fromsource.workers.request import BuildRequest

JSON = "application/vnd.pypi.simple.v1+json"


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> float:
    """Requests per second wrk reaches on *url* (fails on any non-2xx/3xx answer)."""
    return wrk_all([url], seconds, connections, headers)


def wrk_all(urls: list[str], seconds: int, connections: int, headers: dict[str, str]) -> float:
    """Summed requests/s of one wrk per URL run at the same time (threads and connections split)."""
    threads = max(1, 2 // len(urls))
    running = []
    for url in urls:
        cmd = ["wrk", f"-t{threads}", f"-c{connections // len(urls)}", f"-d{seconds}s"]
        for key, value in headers.items():
            cmd += ["-H", f"{key}: {value}"]
        running.append((url, subprocess.Popen([*cmd, url], stdout=subprocess.PIPE, text=True)))
    total = 0.0
    for url, process in running:
        out, _ = process.communicate()
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if errors:
            raise SystemExit(f"wrk saw {errors.group(1)} error responses from {url}")
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        assert match, out
        total += float(match.group(1))
    return total


def start_nginx(work: Path, port: int, upstreams: list[str]) -> subprocess.Popen[bytes]:
    """nginx on 127.0.0.1:*port* proxying round-robin to *upstreams* (host:port)."""
    servers = "\n".join(f"    server {u};" for u in upstreams)
    conf = work / f"nginx-{port}.conf"
    conf.write_text(f"""
worker_processes 2;
daemon off;
pid {work}/nginx-{port}.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}/tmp;
  proxy_temp_path {work}/tmp;
  fastcgi_temp_path {work}/tmp;
  uwsgi_temp_path {work}/tmp;
  scgi_temp_path {work}/tmp;
  upstream replicas {{
{servers}
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://replicas;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_buffering off;
    }}
  }}
}}
""")
    (work / "tmp").mkdir(exist_ok=True)
    process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(work)], start_new_session=True)
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit("nginx did not come up")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started in its own session (by its PID's group)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def backend(work: Path, postgres: object, moto: object, keys: Path, broker: str | None) -> Backend:
    return Backend("postgres-s3", postgres.database(), moto.bucket(), keys,  # type: ignore[attr-defined]
                   moto.env(), broker)  # type: ignore[attr-defined]


def bench_replicas(work: Path, fleet: Backend, seconds: int, connections: int) -> dict[str, float]:
    """Requests/s through nginx to one replica, then two, for a page and a redirected file."""
    replicas: list[IndexServer] = []
    proxies: list[subprocess.Popen[bytes]] = []
    try:
        for name in ("replica-1", "replica-2"):
            replicas.append(start_server(
                fleet.data_dir(work, name), "--log-level", "warning",
                env={**fleet.env, "FROMSOURCE_BLOB_REDIRECT": "1", "FROMSOURCE_POLL_INTERVAL": "0.5"},
            ))
        admin = fleet.token(admin=True)
        for minor in range(20):
            wheel = make_wheel(work / "wheels", "bench-pkg", f"0.{minor}")
            with wheel.open("rb") as handle:
                httpx.post(f"{replicas[0].url}api/repos/python/files", auth=admin,
                           files={"file": (wheel.name, handle)}).raise_for_status()
        ident, secret = fleet.token("python")
        auth = "Basic " + base64.b64encode(f"{ident}:{secret}".encode()).decode()
        headers = {"Authorization": auth, "Accept": JSON}
        time.sleep(1.5)  # both replicas have polled the change counter
        page = httpx.get(f"{replicas[1].url}python/simple/bench-pkg/", headers=headers)
        page.raise_for_status()
        file_path = httpx.URL(f"{replicas[1].url}python/simple/bench-pkg/").join(
            page.json()["files"][-1]["url"]).path
        results: dict[str, float] = {}
        for count in (1, 2):
            port = free_port()
            upstream = [r.url.split("://", 1)[1].rstrip("/") for r in replicas[:count]]
            proxy = start_nginx(work, port, upstream)
            proxies.append(proxy)
            base = f"http://127.0.0.1:{port}"
            results[f"page, {count} replica(s)"] = wrk(
                f"{base}/python/simple/bench-pkg/", seconds, connections, headers)
            results[f"302 file, {count} replica(s)"] = wrk(
                f"{base}{file_path}", seconds, connections, {"Authorization": auth})
            stop(proxy)
        direct = [r.url.rstrip("/") for r in replicas]
        for count in (1, 2):
            results[f"page, {count} replica(s), direct"] = wrk_all(
                [f"{d}/python/simple/bench-pkg/" for d in direct[:count]],
                seconds, connections, headers)
            results[f"302 file, {count} replica(s), direct"] = wrk_all(
                [f"{d}{file_path}" for d in direct[:count]], seconds, connections,
                {"Authorization": auth})
        return results
    finally:
        for proxy in proxies:
            stop(proxy)
        for replica in replicas:
            stop_server(replica)


def bench_builds(work: Path, fleet: Backend, upstream: str, workers: int, builds: int) -> float:
    """Seconds from enqueueing *builds* requests until all are published, with *workers*."""
    started = [spawn_worker(fleet, fleet.data_dir(work, f"w{workers}-{n}"), upstream, lease=10)
               for n in range(workers)]
    try:
        for worker in started:
            wait_ready(worker)
        assert fleet.broker_url
        queue = CeleryQueue(fleet.broker_url)
        start = time.monotonic()
        for n in range(builds):
            queue.submit(BuildRequest(f"bench-build-{n}==1.0"))
        queue.close()
        db = fleet.db()
        try:
            while True:
                with db.session() as session:
                    done = session.query(ClaimRow).filter(ClaimRow.state == "succeeded").count()
                if done >= builds:
                    return time.monotonic() - start
                if time.monotonic() - start > 600:
                    raise SystemExit("builds did not finish in 10 minutes")
                time.sleep(0.05)
        finally:
            db.dispose()
    finally:
        for worker in started:
            stop_worker(worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk run length")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--builds", type=int, default=8, help="tiny packages to build")
    args = parser.parse_args()
    for tool in ("wrk", "nginx", "redis-server"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is missing (Debian packages wrk, nginx-light, redis-server)")

    work = Path(tempfile.mkdtemp(prefix="fromsource-fleet-bench-"))
    work.chmod(0o755)  # nginx workers run as an unprivileged user
    postgres, redis, moto = start_postgres(), start_redis(), start_moto(work)
    keys = work / "keys"
    load_or_create_signing_key(keys)
    index = LocalIndex()
    index.add(*bootstrap_wheels(work / "bootstrap"))
    for n in range(args.builds):
        index.add(make_sdist(work / "sdists", f"bench-build-{n}", "1.0", "in-tree"))
    try:
        replica_results = bench_replicas(
            work, backend(work, postgres, moto, keys, None), args.seconds, args.connections)
        build_results = {}
        with index.serve():
            for workers in (1, 2):
                fleet = backend(work, postgres, moto, keys, redis.url())
                build_results[workers] = bench_builds(work, fleet, index.url, workers, args.builds)
        print(f"# wrk, {args.connections} connections, {args.seconds}s; replicas: fromsource "
              "serve, granian, 1 worker each, PostgreSQL + S3 (moto); 'direct': one wrk per "
              "replica at once (connections split), else through nginx (2 workers) on one port")
        print(f"{'target':<34} {'req/s':>10}")
        for name, rps in replica_results.items():
            print(f"{name:<34} {rps:>10.0f}")
        for kind in ("page", "302 file"):
            for how in ("", ", direct"):
                two = replica_results[f"{kind}, 2 replica(s){how}"]
                one = replica_results[f"{kind}, 1 replica(s){how}"]
                print(f"{kind}{how or ', via nginx'}: two replicas / one = {two / one:.2f}x")
        print(f"# {args.builds} tiny sdists (in-tree backend), sandboxed, published to S3")
        for workers, seconds in build_results.items():
            print(f"{workers} worker(s): {seconds:6.1f} s  ({args.builds / seconds:.2f} builds/s)")
        print(f"builds: two workers / one = {build_results[1] / build_results[2]:.2f}x")
    finally:
        moto.stop()
        redis.stop()
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
