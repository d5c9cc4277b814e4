"""Which files each target touches, where the secret goes, what is printed to purge."""

from __future__ import annotations

from pathlib import Path

import pytest

from fromsource.errors import ConfigError
from fromsource.setup import Credentials, SetupRequest, index_spec, locations, plan_setup

HOME = Path("/home/u")
LOC = locations({}, HOME, "Linux")
CREDS = Credentials("acme/1", "fs_s3cret")
PROJECT = Path("/p")


def _reader(files: dict[Path, str]):  # type: ignore[no-untyped-def]
    return files.get


def _plan(target: str, files: dict[Path, str] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    request = SetupRequest(target=target, spec=index_spec("https://h/", kw.pop("repos", ())),  # type: ignore[arg-type]
                           credentials=kw.pop("creds", CREDS), locations=LOC, **kw)  # type: ignore[arg-type]
    return plan_setup(request, _reader(files or {}))


def test_project_files_never_hold_the_secret() -> None:
    files = {PROJECT / "pyproject.toml": '[project]\nname = "a"\n'}
    for target in ("pip", "uv", "poetry", "pdm"):
        plan = _plan(target, files, project=PROJECT)
        for change in plan.changes:
            if change.path.is_relative_to(PROJECT):
                assert "fs_s3cret" not in change.after, target
                assert change.mode is None
            else:
                assert change.mode == 0o600, (target, change.path)
        assert any("lock" in n for n in plan.notes) or target == "pip"


def test_pip_global_inline_and_no_credentials() -> None:
    plan = _plan("pip")
    (change,) = plan.changes
    assert change.path == LOC.pip_conf and "acme_1:fs_s3cret@h" in change.after
    assert change.mode == 0o600 and plan.purge == ("pip cache purge",)
    bare = _plan("pip", creds=None)
    assert "@" not in bare.changes[0].after and bare.changes[0].mode is None
    assert any("no credentials" in n for n in bare.notes)


def test_uv_project_prefers_its_uv_toml() -> None:
    plan = _plan("uv", {PROJECT / "uv.toml": ""}, project=PROJECT)
    assert plan.changes[0].path == PROJECT / "uv.toml"
    assert "[[index]]" in plan.changes[0].after
    assert plan.changes[1].path == LOC.netrc


def test_refusals() -> None:
    with pytest.raises(ConfigError, match="--project"):
        _plan("poetry")
    with pytest.raises(ConfigError, match="pyproject.toml does not exist"):
        _plan("uv", project=PROJECT)
    with pytest.raises(ConfigError, match="credentials"):
        _plan("netrc", creds=None)


def test_purge_commands_per_client() -> None:
    files = {PROJECT / "pyproject.toml": ""}
    assert _plan("uv").purge == ("uv cache clean",)
    assert _plan("pdm").purge == ("pdm cache clear",)
    assert _plan("netrc").purge == ("pip cache purge", "uv cache clean")
    assert _plan("poetry", files, project=PROJECT, repos=("python-remediated", "python")).purge == (
        "poetry cache clear --all fromsource-remediated",
        "poetry cache clear --all fromsource-python",
        "poetry cache clear --all PyPI",
    )
