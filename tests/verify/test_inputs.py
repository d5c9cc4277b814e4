"""Reading artifacts: kind detection, site-packages discovery, installed dists, wheels."""

from __future__ import annotations

from pathlib import Path

import pytest

from fromsource.errors import VerifyError
from fromsource.verify.inputs import (
    detect,
    environment_folders,
    hash_file,
    read_dist,
    read_wheel,
    site_packages_dirs,
)
from tests.factories import make_wheel


def test_detect(tmp_path: Path) -> None:
    (tmp_path / "venv" / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert detect(tmp_path / "venv") == "environment"
    assert detect(tmp_path / "venv" / "lib" / "python3.11" / "site-packages") == "environment"
    wheel = make_wheel(tmp_path / "wheels", "w", "1.0")
    assert detect(wheel) == "wheel"
    assert detect(tmp_path / "wheels") == "wheels"
    for name, kind in (("pylock.toml", "pylock"), ("pylock.dev.toml", "pylock"),
                       ("uv.lock", "uv-lock"), ("requirements-dev.txt", "requirements")):
        (tmp_path / name).write_text("")
        assert detect(tmp_path / name) == kind
    (tmp_path / "setup.py").write_text("")
    with pytest.raises(VerifyError, match="not a wheel"):
        detect(tmp_path / "setup.py")
    with pytest.raises(VerifyError, match="no such file"):
        detect(tmp_path / "nope")


def test_site_packages_layouts(tmp_path: Path) -> None:
    posix = tmp_path / "p" / "lib" / "python3.12" / "site-packages"
    posix.mkdir(parents=True)
    (tmp_path / "p" / "lib64").symlink_to("lib")
    assert site_packages_dirs(tmp_path / "p") == [posix]
    windows = tmp_path / "w" / "Lib" / "site-packages"
    windows.mkdir(parents=True)
    assert site_packages_dirs(tmp_path / "w") == [windows]
    (posix / "x-1.0.dist-info").mkdir()
    assert site_packages_dirs(posix) == [posix]
    with pytest.raises(VerifyError, match="no site-packages"):
        environment_folders(tmp_path / "w" / "Lib")


def test_broken_and_legacy_dists(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    (site / "old-1.0.egg-info").mkdir(parents=True)
    (site / "old-1.0.egg-info" / "PKG-INFO").write_text("Name: old\nVersion: 1.0\n\n")
    (site / "norecord-2.0.dist-info").mkdir()
    (site / "norecord-2.0.dist-info" / "METADATA").write_text("Name: NoRecord\nVersion: 2.0\n\n")
    (site / "bad-3.0.dist-info").mkdir()
    (site / "bad-3.0.dist-info" / "RECORD").write_text("a,md5=xx,1\n")
    dists = {d.name: d for d in (read_dist(s, f, site) for s, f in environment_folders(site))}
    assert dists["old"].files is None and "egg-info" in (dists["old"].problem or "")
    assert dists["NoRecord"].version == "2.0" and dists["NoRecord"].problem == "no RECORD file"
    assert dists["bad"].files is None and "unreadable" in (dists["bad"].problem or "")


def test_installed_metadata_is_read_by_the_one_reader(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    crlf = site / "crlf_pkg-1.0.dist-info"
    crlf.mkdir(parents=True)
    (crlf / "METADATA").write_bytes(
        b"Metadata-Version: 2.1\r\nName: CRLF.Pkg\r\nVersion: 1.0 \r\nSummary: caf\xe9\r\n"
        b"\r\nName: in-the-body\r\n"
    )
    (crlf / "WHEEL").write_bytes(
        b"Wheel-Version: 1.0\r\nTag: py2-none-any\r\nTag: py3-none-any\r\n"
    )
    # Two different Names: neither is trusted, the folder's name stands.
    twice = site / "twice-2.0.dist-info"
    twice.mkdir()
    (twice / "METADATA").write_text("Name: one\nName: other\nVersion: 2.0\n")
    dists = {d.dist_info: d for d in (read_dist(s, f, site) for s, f in environment_folders(site))}
    read = dists[crlf.name]
    assert (read.name, read.version) == ("CRLF.Pkg", "1.0")
    assert read.tags == ("py2-none-any", "py3-none-any")
    assert (dists[twice.name].name, dists[twice.name].version) == ("twice", "2.0")


def test_read_dist_hashes_files_and_keeps_installer_rows(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    info = site / "d-1.0.dist-info"
    info.mkdir(parents=True)
    (site / "d.py").write_text("x = 1\n")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tool").write_text("#!/venv/bin/python\nprint(1)\n")
    (info / "WHEEL").write_text("Wheel-Version: 1.0\nTag: py3-none-any\n")
    (info / "entry_points.txt").write_text("[console_scripts]\nd = d:main\n")
    (info / "RECORD").write_text(
        "d.py,,\nd-1.0.dist-info/RECORD,,\n__pycache__/d.cpython-311.pyc,,\n../bin/tool,,\n"
        "gone.py,,\n"
    )
    dist = read_dist(site, info, site)
    assert dist.files is not None
    assert dist.tags == ("py3-none-any",) and dist.scripts == frozenset({"d"})
    assert dist.files["d.py"].actual == hash_file(site / "d.py")[0]
    assert dist.files["d-1.0.dist-info/RECORD"].actual is None
    assert dist.files["../bin/tool"].variants
    assert dist.files["gone.py"].actual is None


def test_read_wheel(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "w-pkg", "1.0")
    parsed = read_wheel(wheel)
    assert (parsed.name, parsed.version) == ("w-pkg", "1.0")
    assert "w_pkg/__init__.py" in parsed.members
    broken = tmp_path / "broken-1.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip")
    with pytest.raises(VerifyError, match="cannot read the wheel"):
        read_wheel(broken)
