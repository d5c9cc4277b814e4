"""Where each client's configuration lives on Linux, macOS and Windows."""

from __future__ import annotations

from pathlib import Path

from fromsource.setup.paths import locations

HOME = Path("/home/u")


def test_linux_xdg_defaults_and_overrides() -> None:
    loc = locations({}, HOME, "Linux")
    assert loc.pip_conf == HOME / ".config/pip/pip.conf"
    assert loc.uv_toml == HOME / ".config/uv/uv.toml"
    assert loc.poetry_auth == HOME / ".config/pypoetry/auth.toml"
    assert loc.pdm_config == HOME / ".config/pdm/config.toml"
    assert loc.netrc == HOME / ".netrc"
    env = {"XDG_CONFIG_HOME": "/cfg", "PIP_CONFIG_FILE": "/etc/p.conf", "POETRY_CONFIG_DIR": "/po",
           "PDM_CONFIG_FILE": "/pdm.toml", "NETRC": "/n"}
    loc = locations(env, HOME, "Linux")
    assert (loc.pip_conf, loc.uv_toml, loc.poetry_auth, loc.pdm_config, loc.netrc) == (
        Path("/etc/p.conf"), Path("/cfg/uv/uv.toml"), Path("/po/auth.toml"), Path("/pdm.toml"), Path("/n"))


def test_devnull_pip_config_file_means_the_user_file() -> None:
    import os

    assert locations({"PIP_CONFIG_FILE": os.devnull}, HOME, "Linux").pip_conf == HOME / ".config/pip/pip.conf"


def test_macos_and_windows() -> None:
    mac = locations({}, HOME, "Darwin")
    assert mac.pip_conf == HOME / "Library/Application Support/pip/pip.conf"
    assert mac.poetry_auth == HOME / "Library/Application Support/pypoetry/auth.toml"
    win = locations({"APPDATA": "/r", "LOCALAPPDATA": "/l"}, HOME, "Windows")
    assert win.pip_conf == Path("/r/pip/pip.ini")
    assert win.uv_toml == Path("/r/uv/uv.toml")
    assert win.pdm_config == Path("/l/pdm/pdm/config.toml")
