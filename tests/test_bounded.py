"""The bounded reader: no FIFO wedges the host, no cap is passed, no deadline is ignored."""

from __future__ import annotations

import os
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from fromsource.bounded import (
    Budget,
    OutputLimits,
    copy_file,
    copy_head,
    open_zip,
    read_file,
    read_member,
    read_stream,
    read_tail,
    zip_directory,
)
from fromsource.config import Settings
from fromsource.errors import NotRegularFileError, OversizedError, ReadDeadlineError
from tests.factories import declared_zip64


def _finishes(action: Callable[[], object], seconds: float = 5.0) -> BaseException | None:
    """Run *action* in a thread; fail the test if it is still blocked after *seconds*."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the read blocked (a FIFO wedged the host)"
    return raised[0] if raised else None


def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "output.json"
    os.mkfifo(fifo)
    for action in (
        lambda: read_file(fifo, 100, what="the hook's result"),
        lambda: copy_file(fifo, tmp_path / "copy", 100, what="the wheel"),
        lambda: read_tail(fifo, 100, what="the log"),
        lambda: copy_head(fifo, tmp_path / "head", 100, what="the log"),
    ):
        error = _finishes(action)
        assert isinstance(error, NotRegularFileError), error
        assert "FIFO" in error.message and error.facts["category"] == "unsafe-output"
    assert not (tmp_path / "copy").exists()


def test_links_and_folders_are_not_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    (tmp_path / "link").symlink_to(secret)
    with pytest.raises(NotRegularFileError, match="symbolic link"):
        read_file(tmp_path / "link", 100, what="the wheel")
    with pytest.raises(NotRegularFileError, match="folder"):
        read_file(tmp_path, 100, what="the wheel")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:  # relative to a folder descriptor, as the sandbox output is read
        assert read_file("secret", 100, what="x", dir_fd=fd) == b"host secret"
        with pytest.raises(NotRegularFileError):
            read_file("link", 100, what="x", dir_fd=fd)
    finally:
        os.close(fd)


def test_nothing_past_the_cap_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 1000)
    assert read_file(path, 1000, what="METADATA") == b"x" * 1000
    with pytest.raises(OversizedError, match="over the cap of 999 bytes") as info:
        read_file(path, 999, what="METADATA")
    assert info.value.facts["category"] == "oversized-output"
    with pytest.raises(OversizedError):
        copy_file(path, tmp_path / "copy", 999, what="the wheel")
    assert not (tmp_path / "copy").exists()

    class Endless:
        """A stream that never ends (its declared size would say otherwise)."""

        def __init__(self) -> None:
            self.read_sizes: list[int] = []

        def read(self, size: int = -1) -> bytes:
            self.read_sizes.append(size)
            return b"y" * size

    endless = Endless()
    with pytest.raises(OversizedError):
        read_stream(endless, 3 << 20, what="a stream")  # type: ignore[arg-type]
    assert sum(endless.read_sizes) == (3 << 20) + 1


def test_a_passed_deadline_stops_the_read(tmp_path: Path) -> None:
    path = tmp_path / "wheel"
    path.write_bytes(b"x" * 10)
    with pytest.raises(ReadDeadlineError) as info:
        copy_file(path, tmp_path / "copy", 100, what="the wheel", deadline=time.monotonic() - 1)
    assert info.value.facts["category"] == "timeout"
    assert read_file(path, 100, what="x", deadline=time.monotonic() + 60) == b"x" * 10


def test_tail_and_head_read_only_what_they_keep(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    log.write_bytes(b"a" * 5000 + b"THE END")
    tail, size = read_tail(log, 7, what="the log")
    assert (tail, size) == (b"THE END", 5007)
    assert read_tail(log, 10_000, what="the log") == (log.read_bytes(), 5007)
    copied, size = copy_head(log, tmp_path / "kept", 100, what="the log")
    assert (copied, size) == (100, 5007)
    assert (tmp_path / "kept").read_bytes() == b"a" * 100


def test_a_zip_member_is_decompressed_only_up_to_its_cap(tmp_path: Path) -> None:
    path = tmp_path / "bomb.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.dist-info/METADATA", b"\0" * (4 << 20))
    assert path.stat().st_size < 64 << 10
    with zipfile.ZipFile(path) as archive:
        assert len(read_member(archive, "x.dist-info/METADATA", 4 << 20, what="M")) == 4 << 20
        with pytest.raises(OversizedError, match="4194304 bytes, over the cap of 1024"):
            read_member(archive, "x.dist-info/METADATA", 1024, what="M")
        # A size that lies low does not help: zipfile stops there and the CRC fails.
        archive.getinfo("x.dist-info/METADATA").file_size = 10
        with pytest.raises(zipfile.BadZipFile):
            read_member(archive, "x.dist-info/METADATA", 1024, what="M")


def test_a_budget_is_spent_across_parts() -> None:
    budget = Budget(10, "x.whl decompressed")
    budget.spend(6)
    budget.spend(4)
    with pytest.raises(OversizedError, match="x.whl decompressed"):
        budget.spend(1)


def test_operators_set_the_caps_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROMSOURCE_MAX_METADATA_BYTES", "1234")
    monkeypatch.setenv("FROMSOURCE_MAX_LOG_BYTES", "5678")
    limits = OutputLimits.from_settings(Settings())
    assert (limits.metadata_bytes, limits.log_bytes) == (1234, 5678)
    assert limits.wheel_bytes == OutputLimits().wheel_bytes == 4 << 30


# -- zip directories --------------------------------------------------------------------------

def test_the_directory_is_read_from_the_end_records(tmp_path: Path) -> None:
    path = tmp_path / "small.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for number in range(3):
            archive.writestr(f"m{number}.txt", b"x" * number)
        archive.comment = b"a comment that the end record is searched across"
    members, directory = zip_directory(path)
    assert members == 3 and 0 < directory < 200
    with open_zip(path, what="small.zip") as opened:
        assert len(opened.namelist()) == 3


def test_a_real_zip64_archive_is_counted_and_refused_over_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for number in range(70_000):  # past 65535: zipfile writes the zip64 end records
            archive.writestr(zipfile.ZipInfo(f"{number}"), b"")
    assert zip_directory(path)[0] == 70_000
    with pytest.raises(OversizedError, match="declares 70000 members, over the cap of 50000"):
        open_zip(path, OutputLimits(zip_members=50_000), what="many.zip")
    with open_zip(path, what="many.zip") as opened:  # the default cap admits it
        assert len(opened.infolist()) == 70_000


@pytest.mark.parametrize(
    ("members", "directory", "words"),
    [(10**9, 1000, "declares 1000000000 members"), (10, 1 << 40, "central directory is")],
    ids=["members", "directory-bytes"],
)
def test_a_tail_declaring_a_huge_directory_is_refused_before_zipfile_reads_it(
    tmp_path: Path, members: int, directory: int, words: str
) -> None:
    path = declared_zip64(tmp_path / "bomb-1.0-py3-none-any.whl", members, directory)
    with pytest.raises(OversizedError, match=words) as raised:
        open_zip(path, what=path.name)
    assert raised.value.facts["category"] == "oversized-output"


def test_a_file_without_end_records_is_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "junk.whl"
    path.write_bytes(os.urandom(300).replace(b"PK", b"pk"))
    with pytest.raises(zipfile.BadZipFile):
        open_zip(path, what="junk.whl")
