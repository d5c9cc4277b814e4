"""Real PostgreSQL, Redis and an S3 stand-in, started on loopback for the fleet tests and bench.

- PostgreSQL and Redis are the Debian packages (``postgresql``,
  ``redis-server``), each started in a temporary folder on a free
  127.0.0.1 port (PostgreSQL as the ``postgres`` user when we are root: it
  refuses to run as root) and stopped by PID.
- S3: no S3 server package is reachable from here, so the object store is
  ``moto`` in server mode (``python -m moto.server``) over real HTTP on
  127.0.0.1; boto3 and every HTTP client talk to it as to any S3 endpoint.
  It is addressed as ``localhost`` so that, as with a real object store, its
  host name differs from the index's and clients do not carry the index's
  credentials across the redirect.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import free_port

__all__ = [
    "Moto",
    "Postgres",
    "Redis",
    "missing_services",
    "postgres_bin",
    "start_moto",
    "start_postgres",
    "start_redis",
]

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "fleet-test",
    "AWS_SECRET_ACCESS_KEY": "fleet-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""Credentials moto accepts (any), so no real AWS configuration is ever read."""


def postgres_bin() -> Path | None:
    """The folder with initdb and postgres, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


def missing_services() -> list[str]:
    """What the fleet tests need and this machine lacks (empty when all is there)."""
    missing = []
    if postgres_bin() is None:
        missing.append("PostgreSQL (Debian package postgresql)")
    if shutil.which("redis-server") is None:
        missing.append("Redis (Debian package redis-server)")
    for module, what in (("moto", "moto[server]"), ("celery", "celery[redis]"),
                         ("psycopg", "psycopg[binary]"), ("boto3", "boto3")):
        if importlib.util.find_spec(module) is None:
            missing.append(f"the Python package {what}")
    return missing


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """A preexec function asking Linux to send *sig* to the child when the test run dies.

    So an interrupted or killed pytest does not leave servers behind on a shared machine.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork

    def arm() -> None:
        prctl(1, sig)  # PR_SET_PDEATHSIG: one system call, nothing else in the child

    return arm


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait: float = 15) -> None:
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(wait)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Postgres:
    """A running PostgreSQL server; ``database()`` makes a fresh database on it."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes]
    user: str = "fromsource"
    made: list[str] = field(default_factory=list)

    def url(self, name: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{name}"

    def database(self) -> str:
        """CREATE DATABASE with a new name; returns its SQLAlchemy URL."""
        import psycopg

        name = f"fs_{len(self.made)}_{os.getpid()}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        self.made.append(name)
        return self.url(name)

    def stop(self) -> None:
        _stop(self.process, signal.SIGINT)  # "fast" shutdown
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> Postgres:
    """initdb in a temporary folder and start ``postgres`` on a free 127.0.0.1 port."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (Debian package postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="fromsource-pg-"))
    run_as: dict[str, object] = {}
    if os.getuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
        run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    data = folder / "data"
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "fromsource",
         "--no-sync", "-E", "UTF8", "--locale", "C"],
        check=True, capture_output=True, cwd=folder, **run_as,  # type: ignore[call-overload]
    )
    port = free_port()
    with open(folder / "postgres.log", "wb") as log:
        process = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
             "-k", str(folder), "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, cwd=folder,
            preexec_fn=_die_with_parent(signal.SIGINT),  # noqa: PLW1509
            **run_as,  # type: ignore[call-overload]
        )
    server = Postgres(port, folder, process)
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"postgres exited: {(folder / 'postgres.log').read_text()}")
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user=fromsource dbname=postgres").close()
            return server
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                server.stop()
                raise
            time.sleep(0.1)


@dataclass
class Redis:
    """A running redis-server; ``url(n)`` is database *n* on it."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes]
    used: int = 0

    def url(self, number: int | None = None) -> str:
        """A Redis URL; without *number*, the next unused database (0..15)."""
        if number is None:
            number = self.used % 16
            self.used += 1
        return f"redis://127.0.0.1:{self.port}/{number}"

    def stop(self) -> None:
        _stop(self.process)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_redis() -> Redis:
    """``redis-server`` on a free 127.0.0.1 port, without persistence."""
    folder = Path(tempfile.mkdtemp(prefix="fromsource-redis-"))
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(folder), "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent(signal.SIGTERM),  # noqa: PLW1509
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            raise RuntimeError("redis-server exited at start")
        try:
            client.ping()
            client.close()
            return Redis(port, folder, process)
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                _stop(process)
                raise
            time.sleep(0.05)


@dataclass
class Moto:
    """moto's S3 in server mode; ``bucket()`` creates a fresh bucket."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path
    made: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://localhost:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment for any process that opens ``s3://`` blob stores here."""
        return {**S3_ENV, "FROMSOURCE_S3_ENDPOINT_URL": self.endpoint}

    def bucket(self) -> str:
        """Create a new bucket; returns a ``s3://bucket/prefix`` blob URL in it."""
        import boto3  # type: ignore[import-untyped]

        name = f"fleet-{len(self.made)}-{os.getpid()}"
        client = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=name)
        self.made.append(name)
        return f"s3://{name}/blobs"

    def stop(self) -> None:
        _stop(self.process)


def start_moto(folder: Path) -> Moto:
    """``python -m moto.server`` on a free 127.0.0.1 port (the S3 stand-in)."""
    import httpx

    port = free_port()
    log = folder / f"moto-{port}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, **S3_ENV},
            preexec_fn=_die_with_parent(signal.SIGTERM),  # noqa: PLW1509
        )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited: {log.read_text()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return Moto(port, process, log)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                _stop(process)
                raise
            time.sleep(0.1)
