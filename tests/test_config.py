"""Settings: where the upstream index comes from when none is given (docs/building.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pip._internal.models.index import PyPI

from fromsource.config import Settings, agree_level, pip_index_url, upstream_url


@pytest.fixture
def no_pip_config(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No PIP_INDEX_URL, no FROMSOURCE_UPSTREAM, and pip reads no configuration file."""
    for name in list(os.environ):
        if name.startswith("PIP_") or name == "FROMSOURCE_UPSTREAM":
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # pip then loads no file at all
    return monkeypatch


def test_without_any_index_configured_the_upstream_is_pips_own_default(
    no_pip_config: pytest.MonkeyPatch,
) -> None:
    assert pip_index_url() == PyPI.simple_url
    assert upstream_url(Settings()) == PyPI.simple_url.rstrip("/") + "/"


def test_an_unparsable_pip_configuration_counts_as_none(
    no_pip_config: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("[global\nindex-url = http://127.0.0.1:9/never/simple\n")
    no_pip_config.setenv("PIP_CONFIG_FILE", str(conf))
    assert pip_index_url() == PyPI.simple_url


def test_the_upstream_follows_fromsource_then_pip_settings(
    no_pip_config: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = http://127.0.0.1:9/from-pip-conf/simple\n")
    no_pip_config.setenv("PIP_CONFIG_FILE", str(conf))
    assert pip_index_url() == "http://127.0.0.1:9/from-pip-conf/simple"
    no_pip_config.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/from-env/simple")
    assert upstream_url(Settings()) == "http://127.0.0.1:9/from-env/simple/"
    no_pip_config.setenv("FROMSOURCE_UPSTREAM", "http://127.0.0.1:9/ours/simple/")
    assert upstream_url(Settings()) == "http://127.0.0.1:9/ours/simple/"


def test_crate_sources_and_the_rust_toolchain_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FROMSOURCE_CRATES", f"{tmp_path}/crates, sparse+http://127.0.0.1:9/index/")
    monkeypatch.setenv("FROMSOURCE_RUST_TOOLCHAIN", str(tmp_path / "rust"))
    settings = Settings()
    assert settings.crates == [f"{tmp_path}/crates", "sparse+http://127.0.0.1:9/index/"]
    assert settings.rust_toolchain == tmp_path / "rust"


def test_two_builds_must_agree_in_a_fleet_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FROMSOURCE_AGREE", "FROMSOURCE_BROKER_URL"):
        monkeypatch.delenv(name, raising=False)
    assert agree_level(Settings()) == 1
    assert agree_level(Settings(), fleet=True) == 2  # fromsource worker
    assert agree_level(Settings(broker_url="redis://127.0.0.1:6379/0")) == 2
    monkeypatch.setenv("FROMSOURCE_AGREE", "1")
    assert agree_level(Settings(broker_url="redis://127.0.0.1:6379/0"), fleet=True) == 1
    monkeypatch.setenv("FROMSOURCE_AGREE", "3")
    with pytest.raises(ValueError, match="agree"):
        Settings()
