"""Crash safety: kill -9 the server and a publisher at random points, at least 50 times.

A publisher subprocess publishes wheels without pause (into the store
directly, and through the server's management API), a client thread keeps
fetching pages and files, and the loop kills one of the two processes (its
whole process group: granian's worker too) at a random moment, then starts
it again.  After every kill ``fsck`` must find the database and the blob
store agreeing (orphans allowed: they are what a crash before the commit
leaves, and the repairs remove them); the client must never see a file
whose sha256 differs from what its page says, nor a listed file the
server cannot serve.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

from fromsource.store.blobs import FileBlobStore
from fromsource.store.catalog import all_files
from fromsource.store.db import open_database
from fromsource.store.fsck import FsckReport, run_fsck
from fromsource.store.tokens import create_token
from tests.conftest import REPO_ROOT, free_port

JSON = "application/vnd.pypi.simple.v1+json"
MIN_KILLS = 50
SERVER_SHARE = 0.3  # a server restart takes seconds: it is a victim only once it is up


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(
            args, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT,
            start_new_session=True,  # its own process group: kill -9 reaches every worker
        )


def _kill9(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(30)


@dataclass
class Server:
    """The index process of the moment, and whether it answers yet."""

    process: subprocess.Popen[bytes]
    url: str
    ready: bool = False

    def poll_ready(self) -> bool:
        if not self.ready:
            try:
                self.ready = httpx.get(self.url + "healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                pass
        return self.ready


@dataclass
class Harness:
    """Processes, logs and counters of one crash loop."""

    base: Path
    env: dict[str, str]
    reader: tuple[str, str]
    admin: tuple[str, str]
    server: Server | None = None
    publisher: subprocess.Popen[bytes] | None = None
    kills: dict[str, int] = field(default_factory=lambda: {"server": 0, "publisher": 0})
    checks: int = 0
    killed_child: int = 0

    @property
    def data(self) -> Path:
        return self.base / "data"

    def start_server(self) -> Server:
        port = free_port()
        process = _spawn(
            [sys.executable, "-m", "fromsource.cli.main", "--data-dir", str(self.data), "serve",
             "--host", "127.0.0.1", "--port", str(port)],
            self.base / "server.log", self.env,
        )
        self.server = Server(process, f"http://127.0.0.1:{port}/")
        (self.base / "url").write_text(self.server.url)
        return self.server

    def start_publisher(self) -> None:
        """Start the supervisor that forks one publisher child after the other."""
        self.publisher = _spawn(
            [sys.executable, "-m", "tests.hardening.crash_publisher", str(self.data),
             str(self.base / "url"), str(self.base / "publisher.pid"), *self.admin],
            self.base / "publisher.log", self.env,
        )

    def publisher_child(self, timeout: float = 60) -> int:
        """The pid of the running publisher child, once it is publishing (not the last killed)."""
        pid_file = self.base / "publisher.pid"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.publisher is not None and self.publisher.poll() is None, (
                (self.base / "publisher.log").read_text()[-3000:]
            )
            try:
                pid = int(pid_file.read_text())
            except (FileNotFoundError, ValueError):
                pid = 0
            if pid and pid != self.killed_child and self.is_child(pid):
                return pid
            time.sleep(0.02)
        raise AssertionError("no publisher child came up")

    def is_child(self, pid: int) -> bool:
        """Whether *pid* is a live child of our supervisor (never signal anyone else)."""
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        fields = stat.rsplit(")", 1)[1].split()
        return self.publisher is not None and fields[0] != "Z" and int(fields[1]) == self.publisher.pid

    def wait_server(self, timeout: float = 60) -> None:
        assert self.server is not None
        deadline = time.monotonic() + timeout
        while not self.server.poll_ready():
            assert self.server.process.poll() is None, (self.base / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the server did not come back"
            time.sleep(0.1)

    def stop(self) -> None:
        for process in (self.publisher, self.server.process if self.server else None):
            if process is not None and process.poll() is None:
                _kill9(process)


@dataclass
class Watcher:
    """A client that keeps fetching pages and files and checks every digest."""

    harness: Harness
    stop: threading.Event = field(default_factory=threading.Event)
    verified: int = 0
    pages: int = 0
    problems: list[str] = field(default_factory=list)

    def run(self) -> None:
        rng = random.Random(7)
        with httpx.Client(auth=self.harness.reader, timeout=10) as client:
            while not self.stop.is_set():
                server = self.harness.server
                if server is None or not server.ready:
                    time.sleep(0.05)
                    continue
                try:
                    self._round(client, server.url, rng)
                except (httpx.TransportError, httpx.DecodingError):
                    time.sleep(0.05)  # killed under us: the next server comes

    def _round(self, client: httpx.Client, url: str, rng: random.Random) -> None:
        root = client.get(url + "python/simple/", headers={"Accept": JSON})
        if root.status_code != 200:
            self.problems.append(f"root page answered {root.status_code}")
            return
        projects = [p["name"] for p in root.json()["projects"]]
        if not projects:
            time.sleep(0.05)
            return
        page_url = f"{url}python/simple/{rng.choice(projects)}/"
        page = client.get(page_url, headers={"Accept": JSON})
        if page.status_code != 200:
            self.problems.append(f"{page_url} answered {page.status_code}")
            return
        self.pages += 1
        files = page.json()["files"]
        for entry in rng.sample(files, min(2, len(files))):
            for suffix, digest in (("", entry["hashes"]["sha256"]),
                                   (".metadata", entry["core-metadata"]["sha256"])):
                response = client.get(urljoin(page_url, entry["url"]) + suffix)
                if response.status_code != 200:
                    self.problems.append(f"{entry['filename']}{suffix}: {response.status_code}")
                elif hashlib.sha256(response.content).hexdigest() != digest:
                    self.problems.append(f"{entry['filename']}{suffix}: sha256 differs from the page")
                else:
                    self.verified += 1


def _agree(harness: Harness, report: FsckReport, when: str) -> None:
    harness.checks += 1
    assert report.database == "ok", (when, report.database)
    assert report.missing == (), (when, report.to_json()["missing"])
    assert report.mismatched == (), (when, report.to_json()["mismatched"])


@pytest.mark.slow
def test_kill_9_server_and_publisher_during_publish(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("FROMSOURCE_CRASH_SEED", "20261124")))
    env = {**os.environ, "FROMSOURCE_POLL_INTERVAL": "0.05", "TMPDIR": str(tmp_path / "tmp"),
           "PYTHONPATH": str(REPO_ROOT)}
    (tmp_path / "tmp").mkdir()
    data = tmp_path / "data"
    db = open_database(f"sqlite:///{data / 'fromsource.db'}")
    blobs = FileBlobStore(data / "blobs")
    reader = create_token(db, org="reader", repos=["python"])
    admin = create_token(db, org="ops", repos=[], admin=True)
    harness = Harness(tmp_path, env, (reader.info.id, reader.secret), (admin.info.id, admin.secret))
    watcher = Watcher(harness)
    thread = threading.Thread(target=watcher.run, daemon=True)
    harness.start_server()
    harness.wait_server()
    harness.start_publisher()
    thread.start()
    grace = timedelta(seconds=10)  # far longer than any publish takes: in-flight blobs are safe
    try:
        while sum(harness.kills.values()) < MIN_KILLS:
            child = harness.publisher_child()
            time.sleep(rng.uniform(0.05, 0.5))
            server = harness.server
            assert server is not None
            if server.poll_ready() and rng.random() < SERVER_SHARE:
                _kill9(server.process)
                harness.kills["server"] += 1
                _agree(harness, run_fsck(db, blobs, verify_digests=False), "after a server kill")
                harness.start_server()  # boots while the publisher goes on
            else:
                if harness.is_child(child):
                    os.kill(child, signal.SIGKILL)  # the supervisor reaps it, forks the next
                harness.killed_child = child
                harness.kills["publisher"] += 1
                report = run_fsck(db, blobs, repair=True, grace=grace, verify_digests=False)
                _agree(harness, report, "after a publisher kill")
        harness.wait_server()
        time.sleep(1.0)  # a last round of fetches against the last server
    finally:
        watcher.stop.set()
        thread.join(30)
        harness.stop()

    # Everything is stopped: repair with no grace, then the store must be spotless.
    repaired = run_fsck(db, blobs, repair=True, grace=timedelta(0))
    _agree(harness, repaired, "final repair")
    final = run_fsck(db, blobs)
    assert final.ok and final.orphans == (), final.to_json()
    published = all_files(db)
    db.dispose()

    assert harness.kills["server"] >= 3 and harness.kills["publisher"] >= 20, harness.kills
    assert len(published) >= 20, "the publisher hardly published"
    assert watcher.problems == [], watcher.problems[:10]
    assert watcher.verified >= 20 and watcher.pages >= 10, (watcher.verified, watcher.pages)
    # Uploads of killed servers were spooled inside blobs/tmp (not the system's temp
    # folder), and the repair removed them with the orphans.
    assert not list((tmp_path / "tmp").glob("fromsource-upload-*"))
    assert not any((data / "blobs" / "tmp").iterdir())
    print(
        f"\ncrash loop: {harness.kills} kills, {harness.checks} fsck checks, "
        f"{len(published)} files published, {watcher.verified} downloads verified, "
        f"{len(repaired.orphans)} orphans and {repaired.temp_files_removed} temporary files "
        "removed at the end"
    )

    # A fresh server serves every file of every page with the digest its page gives.
    harness.start_server()
    try:
        harness.wait_server()
        with httpx.Client(auth=harness.reader, timeout=30) as client:
            base = harness.server.url if harness.server else ""
            for project in ("crash-alpha", "crash-beta", "crash-gamma"):
                page_url = f"{base}python/simple/{project}/"
                page = client.get(page_url, headers={"Accept": JSON})
                if page.status_code == 404:
                    continue
                for entry in page.json()["files"]:
                    body = client.get(urljoin(page_url, entry["url"])).content
                    assert hashlib.sha256(body).hexdigest() == entry["hashes"]["sha256"]
    finally:
        harness.stop()
