"""Which files ``fromsource setup TARGET`` changes, and how: a pure plan.

Where credentials go, per target (project files are committed, so they
never hold a secret):

| target | ``--global`` | ``--project DIR`` |
| --- | --- | --- |
| pip | ``pip.conf`` ``index-url`` with the token in the URL (file 0600) | ``--index-url`` line in ``requirements.txt``; token in ``~/.netrc`` |
| uv | ``uv.toml`` ``[[index]]``; token in ``~/.netrc`` | ``[[tool.uv.index]]`` (or the project's ``uv.toml``); token in ``~/.netrc`` |
| poetry | (poetry reads sources only from a project) | ``[[tool.poetry.source]]``; token in poetry's ``auth.toml`` (0600) |
| pdm | ``config.toml`` ``[pypi]`` url, username, password (0600) | ``[[tool.pdm.source]]``; token in ``~/.netrc`` |
| netrc | ``~/.netrc`` (0600) | same |

With ``--no-credentials`` only the index settings are written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fromsource.errors import ConfigError
from fromsource.indexclient import Credentials
from fromsource.setup.model import Change, IndexSpec, Plan, Target
from fromsource.setup.netrc import set_netrc
from fromsource.setup.paths import Locations
from fromsource.setup.pipconf import set_pip_conf, set_requirements_index
from fromsource.setup.tomlconf import (
    pdm_sources,
    set_pdm_config,
    set_pdm_sources,
    set_poetry_auth,
    set_poetry_sources,
    set_uv_indexes,
)

Reader = Callable[[Path], "str | None"]
"""Returns a file's text, or None when it does not exist."""

SECRET_MODE = 0o600


@dataclass(frozen=True)
class SetupRequest:
    """One ``setup`` invocation, parsed.

    *project* is None for ``--global``.  *credentials* is None for
    ``--no-credentials``.  *requirements* is the requirements file for
    ``pip --project`` (default ``DIR/requirements.txt``).  *hashes_updated*
    is True when the project's lock file already pins the index's files
    (``fromsource adopt`` ran ``lock update-hashes``), so no re-lock is advised.
    """

    target: Target
    spec: IndexSpec
    credentials: Credentials | None
    locations: Locations
    project: Path | None = None
    requirements: Path | None = None
    hashes_updated: bool = False


def _change(path: Path, read: Reader, edit: Callable[[str], str], what: str, mode: int | None = None) -> Change:
    before = read(path)
    return Change(path, before, edit(before or ""), what, mode)


def _netrc(request: SetupRequest, read: Reader) -> list[Change]:
    creds = request.credentials
    if creds is None:
        return []
    return [
        _change(
            request.locations.netrc,
            read,
            lambda text: set_netrc(text, request.spec.host, creds.username, creds.password),
            f"credentials for {request.spec.host}",
            SECRET_MODE,
        )
    ]


def _pyproject(request: SetupRequest, read: Reader) -> tuple[Path, str]:
    assert request.project is not None
    path = request.project / "pyproject.toml"
    text = read(path)
    if text is None:
        raise ConfigError(
            f"{path} does not exist; create the project first ({request.target} init) "
            "or use --global",
            path=str(path),
        )
    return path, text


def _env_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).upper()


def _pip(request: SetupRequest, read: Reader) -> tuple[list[Change], list[str]]:
    spec = request.spec
    creds = request.credentials
    repos = spec.repos
    if request.project is None:
        urls = [spec.simple_url(r, creds) for r in repos]
        values: dict[str, Sequence[str]] = {"index-url": urls[:1], "extra-index-url": urls[1:]}
        change = _change(
            request.locations.pip_conf,
            read,
            lambda text: set_pip_conf(text, values),
            f"pip index: {', '.join(repos)}",
            SECRET_MODE if creds else None,
        )
        notes = [] if len(repos) == 1 else [
            (
                "pip has no index priority: it takes the best version from all indexes "
                "(python-all gives remediated versions priority with a single index)"
            )
        ]
        return [change], notes
    target = request.requirements or request.project / "requirements.txt"
    urls = [spec.simple_url(r) for r in repos]
    change = _change(
        target,
        read,
        lambda text: set_requirements_index(text, urls[0], urls[1:]),
        f"pip index: {', '.join(repos)}",
    )
    return [change, *_netrc(request, read)], [
        f"pip reads the token for {spec.host} from {request.locations.netrc}"
    ]


def _uv(request: SetupRequest, read: Reader) -> tuple[list[Change], list[str]]:
    spec = request.spec
    if request.project is None:
        path, pyproject = request.locations.uv_toml, False
    elif read(request.project / "uv.toml") is not None:
        # uv ignores [tool.uv] when the project has a uv.toml, so edit that one instead.
        path, pyproject = request.project / "uv.toml", False
    else:
        path, _ = _pyproject(request, read)
        pyproject = True
    before = read(path)
    after, notes = set_uv_indexes(before or "", spec, pyproject=pyproject)
    change = Change(path, before, after, f"uv indexes: {', '.join(spec.repos)}")
    env_names = ", ".join(
        f"UV_INDEX_{_env_name(s.name)}_USERNAME/_PASSWORD" for s in spec.sources()
    )
    return [change, *_netrc(request, read)], [
        *notes,
        (
            f"uv reads the token for {spec.host} from {request.locations.netrc}; "
            f"in CI you can set {env_names} instead"
        ),
    ]


def _poetry(request: SetupRequest, read: Reader) -> tuple[list[Change], list[str]]:
    if request.project is None:
        raise ConfigError(
            "poetry reads package sources only from a project's pyproject.toml; "
            "pass --project DIR"
        )
    spec = request.spec
    path, text = _pyproject(request, read)
    after, notes = set_poetry_sources(text, spec)
    changes = [Change(path, text, after, f"poetry sources: {', '.join(spec.repos)}")]
    creds = request.credentials
    if creds is not None:
        changes.append(
            _change(
                request.locations.poetry_auth,
                read,
                lambda t: set_poetry_auth(t, spec.sources(), creds)[0],
                "poetry http-basic credentials",
                SECRET_MODE,
            )
        )
    env_names = ", ".join(
        f"POETRY_HTTP_BASIC_{_env_name(s.name)}_USERNAME/_PASSWORD" for s in spec.sources()
    )
    return changes, [*notes, f"in CI you can set {env_names} instead of auth.toml"]


def _pdm(request: SetupRequest, read: Reader) -> tuple[list[Change], list[str]]:
    spec = request.spec
    creds = request.credentials
    if request.project is None:
        change = _change(
            request.locations.pdm_config,
            read,
            lambda text: set_pdm_config(text, spec, creds)[0],
            f"pdm indexes: {', '.join(spec.repos)}",
            SECRET_MODE if creds else None,
        )
        return [change], []
    path, text = _pyproject(request, read)
    after, notes = set_pdm_sources(text, spec)
    change = Change(path, text, after, f"pdm sources: {', '.join(spec.repos)}")
    names = ", ".join(s.name for s in pdm_sources(spec))
    return [change, *_netrc(request, read)], [
        *notes,
        f"pdm sources {names}: the one named 'pypi' replaces the public index",
        f"pdm reads the token for {spec.host} from {request.locations.netrc}",
    ]


def purge_commands(target: Target, spec: IndexSpec) -> tuple[str, ...]:
    """The commands that empty the client's download cache, so wheels fetched
    from the public index before are not installed again."""
    if target == "pip":
        return ("pip cache purge",)
    if target == "uv":
        return ("uv cache clean",)
    if target == "poetry":
        return tuple(f"poetry cache clear --all {s.name}" for s in spec.sources()) + (
            "poetry cache clear --all PyPI",
        )
    if target == "pdm":
        return ("pdm cache clear",)
    return ("pip cache purge", "uv cache clean")


def plan_setup(request: SetupRequest, read: Reader) -> Plan:
    """The changes for *request*, reading current files through *read*.

    Raises ConfigError when the target cannot be set up as asked (poetry
    without a project, a project without pyproject.toml, netrc without
    credentials, a file that is not valid TOML).
    """
    handlers = {"pip": _pip, "uv": _uv, "poetry": _poetry, "pdm": _pdm}
    if request.target == "netrc":
        if request.credentials is None:
            raise ConfigError("setup netrc writes credentials; pass --username and --password")
        changes, notes = _netrc(request, read), list[str]()
    else:
        changes, notes = handlers[request.target](request, read)
    relock = {"uv": "uv lock", "poetry": "poetry lock", "pdm": "pdm lock"}.get(request.target)
    if relock and request.project is not None and not request.hashes_updated:
        notes.append(
            f"run `{relock}` again: wheels built by this index have other sha256 digests "
            "than the public ones, so an existing lock file's hashes no longer match"
        )
    if request.credentials is None and request.target != "netrc":
        notes.append(
            "no credentials were written (--no-credentials): provide them with "
            "`fromsource setup netrc` or the client's environment variables"
        )
    return Plan(tuple(changes), tuple(notes), purge_commands(request.target, request.spec))
