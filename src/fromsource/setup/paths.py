"""Where each client keeps its user-level configuration, per operating system.

Pure: the environment, the home folder and the system name
(``platform.system()``) are arguments, so a test can ask about any machine.
The rules are the clients' own: pip and uv follow the XDG base directories
on Linux, poetry and pdm use platformdirs, everything honours its override
variable (``PIP_CONFIG_FILE``, ``POETRY_CONFIG_DIR``, ``PDM_CONFIG_FILE``,
``NETRC``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Locations:
    """The user-level files ``setup --global`` and the credential writers touch."""

    pip_conf: Path
    uv_toml: Path
    poetry_auth: Path
    pdm_config: Path
    netrc: Path


def _xdg_config(env: Mapping[str, str], home: Path) -> Path:
    value = env.get("XDG_CONFIG_HOME", "")
    return Path(value) if value and os.path.isabs(value) else home / ".config"


def locations(env: Mapping[str, str], home: Path, system: str) -> Locations:
    """The configuration files of pip, uv, poetry, pdm and netrc for this user."""
    mac = system == "Darwin"
    windows = system == "Windows"
    support = home / "Library" / "Application Support"
    appdata = Path(env.get("APPDATA", str(home / "AppData" / "Roaming")))
    local = Path(env.get("LOCALAPPDATA", str(home / "AppData" / "Local")))
    xdg = _xdg_config(env, home)

    pip_env = env.get("PIP_CONFIG_FILE", "")
    if pip_env and pip_env != os.devnull:
        pip_conf = Path(pip_env)
    elif windows:
        pip_conf = appdata / "pip" / "pip.ini"
    elif mac:
        pip_conf = support / "pip" / "pip.conf"
    else:
        pip_conf = xdg / "pip" / "pip.conf"

    uv_toml = (appdata if windows else xdg) / "uv" / "uv.toml"

    if env.get("POETRY_CONFIG_DIR"):
        poetry_dir = Path(env["POETRY_CONFIG_DIR"])
    elif windows:
        poetry_dir = appdata / "pypoetry"
    elif mac:
        poetry_dir = support / "pypoetry"
    else:
        poetry_dir = xdg / "pypoetry"

    if env.get("PDM_CONFIG_FILE"):
        pdm_config = Path(env["PDM_CONFIG_FILE"])
    elif windows:
        pdm_config = local / "pdm" / "pdm" / "config.toml"
    elif mac:
        pdm_config = support / "pdm" / "config.toml"
    else:
        pdm_config = xdg / "pdm" / "config.toml"

    # ~/.netrc on every system: pip (requests) and uv both look there first.
    netrc = Path(env["NETRC"]) if env.get("NETRC") else home / ".netrc"
    return Locations(pip_conf, uv_toml, poetry_dir / "auth.toml", pdm_config, netrc)
