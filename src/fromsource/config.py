"""Settings from flags, the environment (``FROMSOURCE_*``) and defaults.

Every part takes its settings as a :class:`Settings` value; nothing reads the
environment later.  The data directory holds the embedded defaults (SQLite
database, blob folder, signing key); a fleet points ``database_url`` at
PostgreSQL and ``blob_url`` at object storage instead.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from fromsource.errors import ConfigError

REPOSITORIES = ("python", "python-remediated")
"""Repositories that hold files this index built (the only ones files are published into)."""

UPSTREAM_REPOSITORY = "python-upstream"
"""Upstream files that pass policy, fetched on first request and cached (docs/policy.md).

A token entitled to it also finds these files in ``python-all``, after the
index's own (:func:`fromsource.index.auth.entitled`)."""

VIRTUAL_REPOSITORIES = {"python-all": ("python-remediated", "python")}
"""Virtual repositories and the real ones they combine, in priority order."""

ALL_REPOSITORIES = (*REPOSITORIES, UPSTREAM_REPOSITORY, *VIRTUAL_REPOSITORIES)


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fromsource"


class Settings(BaseSettings):
    """Everything a fromsource process needs to know about where things are."""

    model_config = SettingsConfigDict(env_prefix="FROMSOURCE_", extra="ignore")

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None
    blob_url: str | None = None
    upstream: str | None = None
    anonymous_repos: list[str] = Field(default_factory=list)
    realm: str = "fromsource"
    build_on_demand: bool = False
    serve_sdists: bool = True
    """Publish the upstream sdist of every build beside its wheels and list sdists on the simple
    pages (``FROMSOURCE_SERVE_SDISTS=0``: strict deployments serve built wheels only)."""
    poll_interval: float = 0.5
    """Seconds between checks of the change counter (cache invalidation across replicas)."""
    blob_redirect: bool = False
    """Answer file downloads from object storage with a 302 to a presigned URL."""
    public_url: str | None = None
    """Base URL clients reach the index at; used only where absolute URLs are needed."""
    broker_url: str | None = None
    """Celery broker (``redis://host:6379/0``): ``serve`` sends builds to ``fromsource worker``
    processes there; without one it builds in-process."""
    auth_failures_per_minute: int = 30
    """Failed sign-ins a client address may make in a row, and per minute after that (0: off)."""
    series_root: Path | None = None
    """The operator's own folder of patch series (``remediate --series-root``); None: the
    series shipped with fromsource."""
    pythons: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Interpreters to build with instead of searching ``PATH`` and pyenv: versions (``3.12``)
    or paths; ``FROMSOURCE_PYTHONS`` is comma- or space-separated (docs/building.md)."""
    build_pythons: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Which of the found targets the index builds: versions (``3.12``, ``3.13t``) or ABI tags
    (``cp313t``); empty: every CPython >= 3.9 found, free-threaded ones excluded."""

    crates: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Where Rust crates an sdist does not vendor come from, tried in order after the blob
    store: local folders of ``NAME-VERSION.crate`` files (paths or ``file:`` URLs) and cargo
    sparse registries (``sparse+`` and the registry URL); ``FROMSOURCE_CRATES`` is comma- or
    space-separated (docs/building.md "Rust")."""
    rust_toolchain: Path | None = None
    """A Rust toolchain folder (``bin/cargo``, ``bin/rustc``, ``lib/``) for builds; None: the
    toolchain of the ``rustc`` on ``PATH``."""

    @field_validator("pythons", "build_pythons", "crates", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """``3.11,3.12`` or ``3.11 3.12`` (or a JSON list) from the environment, as a list."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part for part in text.replace(",", " ").split() if part]
        return value
    upstream_page_ttl: float = Field(default=300.0, ge=0)
    """Seconds an upstream project page is reused by ``python-upstream`` before it is fetched
    again (a release leaving its cooldown shows up within this time)."""
    upstream_cache_pages: int = Field(default=2000, ge=1)
    """Upstream project pages (and their rendered forms) kept in memory per server process."""
    follow_interval: float = Field(default=0.0, ge=0)
    """Seconds between runs of ``follow`` inside ``serve`` (0: off; ``serve --follow-interval``)."""

    agree: int | None = Field(default=None, ge=1, le=2)
    """How many independent builds must make the same wheel before it is published (1 or 2;
    ``FROMSOURCE_AGREE``); None: 2 in a fleet (a ``broker_url`` is set, and in
    ``fromsource worker``), else 1 (docs/building.md "Two builds must agree")."""
    max_metadata_bytes: int = Field(default=16 << 20, ge=1)
    """Cap on a wheel's METADATA: a larger one is refused (``oversized-output``)."""
    max_wheel_bytes: int = Field(default=4 << 30, ge=1)
    """Cap on a built wheel, file and decompressed members alike."""
    max_log_bytes: int = Field(default=64 << 20, ge=1)
    """Cap on the full build log kept as a blob; a longer log is cut and marked truncated."""

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite inside the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'fromsource.db'}"

    @property
    def resolved_blob_url(self) -> str:
        """The blob store URL, defaulting to a folder inside the data directory."""
        return self.blob_url or f"file://{self.data_dir / 'blobs'}"

    @property
    def key_dir(self) -> Path:
        """Where the index's signing keys live (mode 0700)."""
        return self.data_dir / "keys"

    @property
    def work_root(self) -> Path:
        """Where builds unpack and build (one work tree per build, removed when it ends)."""
        return self.data_dir / "work"

    def check_repos(self) -> None:
        """Raise ConfigError when an anonymous repository is not a known one."""
        unknown = sorted(set(self.anonymous_repos) - set(ALL_REPOSITORIES))
        if unknown:
            raise ConfigError(
                f"anonymous_repos names unknown repositories {unknown}; "
                f"known: {', '.join(ALL_REPOSITORIES)}"
            )


def pip_index_url() -> str:
    """The index pip on this machine is configured with.

    ``PIP_INDEX_URL`` first, then pip's configuration files, then pip's own
    default.  Raises ConfigError when pip cannot be consulted at all.
    """
    env = os.environ.get("PIP_INDEX_URL")
    if env:
        return env
    try:
        from pip._internal.configuration import Configuration
        from pip._internal.models.index import PyPI
    except ImportError as exc:  # pragma: no cover - pip ships with every venv
        raise ConfigError(
            "no upstream index configured and pip is not importable to ask it; "
            "pass --upstream URL or set FROMSOURCE_UPSTREAM"
        ) from exc
    from pip._internal.exceptions import ConfigurationError

    config = Configuration(isolated=False)
    try:
        config.load()
    except ConfigurationError:  # a broken pip.conf: pip itself would use its default
        return str(PyPI.simple_url)
    for key in ("global.index-url", "install.index-url", ":env:.index-url"):
        with contextlib.suppress(ConfigurationError):  # raised for keys that are not set
            value = config.get_value(key)
            if value:
                return str(value)
    return str(PyPI.simple_url)


def agree_level(settings: Settings, *, fleet: bool | None = None) -> int:
    """How many independent builds must agree: the ``agree`` setting, else 2 in a fleet
    (*fleet*; default: whether a broker is configured) and 1 elsewhere."""
    if settings.agree is not None:
        return settings.agree
    in_fleet = bool(settings.broker_url) if fleet is None else fleet
    return 2 if in_fleet else 1


def upstream_url(settings: Settings) -> str:
    """The upstream simple index URL, ending with ``/``."""
    url = settings.upstream or pip_index_url()
    return url if url.endswith("/") else url + "/"
