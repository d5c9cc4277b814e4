"""Fixtures of the fleet tests: PostgreSQL, Redis and S3 (moto) services, backends, workers.

The services start once per session on free 127.0.0.1 ports and stop by
PID at the end (see tests/fleet/services.py; S3 is moto in server mode,
because no S3 server package is reachable here).  A test that needs them
is marked ``fleet`` and is skipped, with the reason, when PostgreSQL,
redis-server or the Python packages are missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa

from fromsource.provenance.keystore import load_or_create_signing_key
from fromsource.store.blobs import BlobStore, open_blob_store
from fromsource.store.db import Database, open_database
from fromsource.store.models import BuildRow, ClaimRow, FileRow
from fromsource.store.tokens import create_token
from tests.conftest import IndexServer, start_server, stop_server
from tests.fleet.services import (
    Moto,
    Postgres,
    Redis,
    missing_services,
    start_moto,
    start_postgres,
    start_redis,
)
from tests.packages import LocalIndex, local_index  # noqa: F401

F = TypeVar("F", bound=Callable[..., Any])
Row = TypeVar("Row", BuildRow, ClaimRow, FileRow)
_MISSING = missing_services()
FLEET = [
    pytest.mark.fleet,
    pytest.mark.skipif(bool(_MISSING), reason="fleet services missing: " + "; ".join(_MISSING)),
]
"""Marks for a test that needs PostgreSQL, Redis and moto."""


def fleet_test(func: F) -> F:
    """Apply the :data:`FLEET` marks to one test function."""
    for mark in FLEET:
        func = mark(func)
    return func


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    server = start_moto(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fleet_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One signing-key folder that every replica and worker of a test fleet shares."""
    folder = tmp_path_factory.mktemp("fleet-keys") / "keys"
    load_or_create_signing_key(folder)
    return folder


@dataclass
class Backend:
    """Where a test fleet keeps its state: database, blob store, optional broker."""

    name: str
    database_url: str
    blob_url: str
    keys: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    broker_url: str | None = None

    @property
    def env(self) -> dict[str, str]:
        """Environment for ``fromsource`` processes on this backend."""
        env = {
            **self.extra_env,
            "FROMSOURCE_DATABASE_URL": self.database_url,
            "FROMSOURCE_BLOB_URL": self.blob_url,
        }
        if self.broker_url:
            env["FROMSOURCE_BROKER_URL"] = self.broker_url
        return env

    def db(self) -> Database:
        return open_database(self.database_url)

    def blobs(self) -> BlobStore:
        saved = {k: os.environ.get(k) for k in self.extra_env}
        os.environ.update(self.extra_env)
        try:
            return open_blob_store(self.blob_url)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def token(self, *repos: str, admin: bool = False) -> tuple[str, str]:
        db = self.db()
        try:
            new = create_token(db, org="acme", repos=list(repos), admin=admin)
        finally:
            db.dispose()
        # Made behind the servers' backs: give them one default poll interval (0.5 s).
        time.sleep(0.6)
        return new.info.id, new.secret

    def data_dir(self, base: Path, name: str) -> Path:
        """A data dir for one process, holding a copy of the shared signing keys."""
        folder = base / name
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.keys, folder / "keys", dirs_exist_ok=True)
        return folder


def make_backend(
    kind: str, request: pytest.FixtureRequest, base: Path, *, broker: bool = False
) -> Backend:
    """A fresh backend: ``sqlite-files`` (the embedded default) or ``postgres-s3``."""
    keys: Path = request.getfixturevalue("fleet_keys")
    if kind == "sqlite-files":
        return Backend(kind, f"sqlite:///{base / 'shared.db'}", f"file://{base / 'blobs'}", keys)
    postgres: Postgres = request.getfixturevalue("postgres")
    moto: Moto = request.getfixturevalue("moto")
    broker_url = request.getfixturevalue("redis_server").url() if broker else None
    return Backend(kind, postgres.database(), moto.bucket(), keys, moto.env(), broker_url)


def serve(backend: Backend, base: Path, name: str, *extra: str, **env: str) -> IndexServer:
    """``fromsource serve`` on *backend* with its own data dir."""
    return start_server(backend.data_dir(base, name), *extra, env={**backend.env, **env})


def accepted(server: IndexServer, token: tuple[str, str], path: str = "api/tokens") -> None:
    """Wait until *server* accepts *token* on *path* (made behind its back: one poll interval)."""
    deadline = time.monotonic() + 10
    while httpx.get(server.url + path, auth=token, timeout=10).status_code != 200:
        assert time.monotonic() < deadline, f"{server.url} never accepted the new token"
        time.sleep(0.05)


def upload(server: IndexServer, admin: tuple[str, str], wheel: Path, repo: str = "python") -> None:
    """Publish *wheel* through the management API of *server*."""
    with wheel.open("rb") as handle:
        response = httpx.post(
            f"{server.url}api/repos/{repo}/files",
            auth=admin,
            files={"file": (wheel.name, handle)},
            timeout=30,
        )
    assert response.status_code == 201, response.text


@dataclass
class Worker:
    """A running ``fromsource worker`` (its own session, so kill -9 takes its children)."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the worker and everything it started."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


def spawn_worker(
    backend: Backend,
    data_dir: Path,
    upstream: str,
    *,
    lease: float = 2.0,
    env: Mapping[str, str] | None = None,
) -> Worker:
    """Start ``fromsource worker`` on *backend*, with *env* added to its environment
    (returns at once; see :func:`wait_ready`)."""
    assert backend.broker_url
    log = data_dir.parent / f"{data_dir.name}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "fromsource.cli.main", "--data-dir", str(data_dir),
             "worker", "--upstream", upstream, "--lease", str(lease), "--timeout", "120",
             "--log-level", "info"],
            stdout=handle, stderr=subprocess.STDOUT,
            env={**os.environ, **backend.env, **(env or {})},
            start_new_session=True,
        )
    return Worker(process, log)


def wait_ready(worker: Worker, seconds: float = 90) -> None:
    """Wait until *worker* consumes from the broker (kill it and fail otherwise)."""
    deadline = time.monotonic() + seconds
    while b"fromsource worker ready" not in worker.log.read_bytes():
        if worker.process.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError(f"worker did not start: {worker.log.read_text()}")
        time.sleep(0.1)


def stop_worker(worker: Worker) -> None:
    """Stop a worker at the end of a test (by its own process group)."""
    worker.kill()


@dataclass
class Fleet:
    """A running test fleet: one ``serve`` replica and ``fromsource worker`` processes on a
    PostgreSQL + S3 (moto) + Redis backend, building from a local upstream index."""

    backend: Backend
    index: IndexServer
    workers: list[Worker]
    admin: tuple[str, str]
    reader: tuple[str, str]
    upstream: LocalIndex
    base: Path
    lease: float = 2.0

    def rows(self, model: type[Row], project: str) -> list[Row]:
        """Every row of *model* (a table with a ``project`` column) for *project*."""
        db = self.backend.db()
        try:
            with db.session() as session:
                column = getattr(model, "project")  # noqa: B009 - every model here has one
                return list(session.scalars(sa.select(model).where(column == project)))
        finally:
            db.dispose()

    def builds(self, project: str) -> list[BuildRow]:
        """The project's build rows, oldest first."""
        return sorted(self.rows(BuildRow, project), key=lambda b: b.id)

    def wheels(self, project: str) -> list[FileRow]:
        """The project's published wheels (its sdist is listed beside them)."""
        return [f for f in self.rows(FileRow, project) if f.filename.endswith(".whl")]

    def request_build(self, requirement: str) -> None:
        """Ask the replica to build *requirement* (it goes to the broker)."""
        response = httpx.post(
            f"{self.index.url}api/builds",
            auth=self.admin,
            json={"requirements": [requirement]},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        assert response.json()["queue"] == "celery"

    def add_worker(self, name: str, *, wait: bool = True, **env: str) -> Worker:
        """Start one more worker named *name* (its data dir and log), with *env* added."""
        worker = spawn_worker(
            self.backend,
            self.backend.data_dir(self.base, name),
            self.upstream.url,
            lease=self.lease,
            env=env,
        )
        self.workers.append(worker)
        if wait:
            wait_ready(worker)
        return worker

    def logs(self) -> str:
        """The end of every worker's log."""
        return "\n".join(w.log.read_text(errors="replace")[-4000:] for w in self.workers)

    def wait(self, seconds: float, check: Callable[[], bool]) -> None:
        """Wait until *check* holds; fail with the workers' logs after *seconds*."""
        deadline = time.monotonic() + seconds
        while not check():
            if time.monotonic() > deadline:
                print(self.logs())
                pytest.fail(f"condition not met within {seconds} s")
            time.sleep(0.2)


@contextmanager
def running_fleet(
    request: pytest.FixtureRequest,
    base: Path,
    upstream: LocalIndex,
    workers: Mapping[str, Mapping[str, str]],
    **env: str,
) -> Iterator[Fleet]:
    """A :class:`Fleet` on a fresh backend: *env* for every process (``FROMSOURCE_AGREE``,
    ...), and one worker per entry of *workers* (name: its own environment), started
    together; every process is stopped at the end."""
    backend = make_backend("postgres-s3", request, base, broker=True)
    backend.extra_env.update(env)
    fleet: Fleet | None = None
    started: list[Worker] = []
    index: IndexServer | None = None
    try:
        for name, own in workers.items():
            data = backend.data_dir(base, name)
            started.append(spawn_worker(backend, data, upstream.url, env=own))
        index = serve(backend, base, "replica")
        for worker in started:
            wait_ready(worker)
        admin = backend.token(admin=True)
        reader = backend.token("python")
        accepted(index, admin)
        accepted(index, reader, "python/simple/")
        fleet = Fleet(backend, index, started, admin, reader, upstream, base)
        yield fleet
    finally:
        for worker in fleet.workers if fleet is not None else started:
            stop_worker(worker)
        if index is not None:
            stop_server(index)


@pytest.fixture(scope="module")
def fleet(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    local_index: LocalIndex,  # noqa: F811
) -> Iterator[Fleet]:
    """A running fleet for one test module, configured by the module's ``FLEET_WORKERS``
    (worker name: its own environment; default two plain workers) and ``FLEET_ENV`` (the
    environment of every process)."""
    workers = getattr(request.module, "FLEET_WORKERS", {"worker-a": {}, "worker-b": {}})
    env = getattr(request.module, "FLEET_ENV", {})
    base = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    with running_fleet(request, base, local_index, workers, **env) as running:
        yield running


__all__ = [
    "FLEET",
    "Backend",
    "Fleet",
    "Worker",
    "accepted",
    "fleet",
    "fleet_test",
    "make_backend",
    "running_fleet",
    "serve",
    "spawn_worker",
    "stop_server",
    "stop_worker",
    "upload",
    "wait_ready",
]
