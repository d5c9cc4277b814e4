"""``fromsource worker`` refuses to start without a usable broker (exit 2, message on stderr)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fromsource.cli.main import main


def test_worker_needs_a_broker(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FROMSOURCE_BROKER_URL", raising=False)
    assert main(["--data-dir", str(tmp_path), "worker"]) == 2
    assert "--broker-url" in capsys.readouterr().err


def test_worker_rejects_a_broker_that_is_not_redis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--data-dir", str(tmp_path), "worker", "--broker-url", "amqp://127.0.0.1//"])
    assert code == 2
    assert "not a Redis URL" in capsys.readouterr().err


def test_worker_help_lists_the_lease() -> None:
    assert main(["worker", "--help"]) == 0
