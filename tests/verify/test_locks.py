"""Lock files: pylock.toml, uv.lock and hashed requirements parsed into pinned packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from fromsource.errors import VerifyError
from fromsource.verify.locks import parse_pylock, parse_requirements, parse_uv_lock, read_lock

A, B, C = "a" * 64, "b" * 64, "c" * 64

PYLOCK = f"""
lock-version = "1.0"
created-by = "test"

[[packages]]
name = "demo-pkg"
version = "1.0"
wheels = [
  {{name = "demo_pkg-1.0-py3-none-any.whl", url = "https://x.invalid/d.whl", hashes = {{sha256 = "{A}"}}}},
  {{name = "demo_pkg-1.0-py2-none-any.whl", url = "https://x.invalid/e.whl", hashes = {{sha256 = "{B.upper()}"}}}},
]

[[packages]]
name = "dep-pkg"
version = "0.1"
sdist = {{name = "dep_pkg-0.1.tar.gz", url = "https://x.invalid/d.tar.gz", hashes = {{sha256 = "{C}"}}}}

[[packages]]
name = "from-git"
vcs = {{type = "git", url = "https://x.invalid/r.git", commit-id = "abc"}}

[[packages]]
name = "myproject"
directory = {{path = ".", editable = true}}
"""

UV_LOCK = f"""
version = 1
requires-python = ">=3.11"

[[package]]
name = "demo-pkg"
version = "1.0"
source = {{ registry = "https://x.invalid/simple" }}
sdist = {{ url = "https://x.invalid/d.tar.gz", hash = "sha256:{C}", size = 10 }}
wheels = [
    {{ url = "https://x.invalid/d.whl", hash = "sha256:{A}", size = 10 }},
]

[[package]]
name = "myproject"
version = "0.1.0"
source = {{ editable = "." }}

[[package]]
name = "from-git"
version = "0.2"
source = {{ git = "https://x.invalid/r.git#abc" }}
"""

REQUIREMENTS = f"""\
# a comment
--index-url https://x.invalid/simple/
demo-pkg==1.0 \\
    --hash=sha256:{A} \\
    --hash=sha256:{B}
dep-pkg[extra]==0.1 ; python_version >= "3.8" --hash=sha256:{C}
unpinned>=1.0 --hash=sha256:{C}
nohash==2.0
-e ./local
direct @ https://x.invalid/direct-3.0-py3-none-any.whl --hash=sha256:{A}
"""


def test_pylock() -> None:
    packages, excluded = parse_pylock(PYLOCK, "pylock.toml")
    by_name = {p.name: p for p in packages}
    assert by_name["demo-pkg"].hashes == {A, B}
    assert by_name["demo-pkg"].version == "1.0" and by_name["demo-pkg"].unverifiable is None
    assert by_name["dep-pkg"].hashes == {C}
    assert "VCS" in (by_name["from-git"].unverifiable or "")
    assert [e.name for e in excluded] == ["myproject"]
    assert by_name["demo-pkg"].location == "pylock.toml: packages[0]"


def test_uv_lock() -> None:
    packages, excluded = parse_uv_lock(UV_LOCK, "uv.lock")
    by_name = {p.name: p for p in packages}
    assert by_name["demo-pkg"].hashes == {A, C}
    assert by_name["from-git"].unverifiable and "git" in by_name["from-git"].unverifiable
    assert [(e.name, e.reason) for e in excluded] == [("myproject", "workspace project (editable source)")]


def test_requirements() -> None:
    packages, includes = parse_requirements(REQUIREMENTS, "requirements.txt")
    assert includes == []
    by_name = {p.name: p for p in packages}
    demo = by_name["demo-pkg"]
    assert demo.hashes == {A, B} and demo.version == "1.0" and demo.allow_local
    assert demo.location == "requirements.txt:3"
    assert by_name["dep-pkg"].hashes == {C} and by_name["dep-pkg"].unverifiable is None
    assert "not pinned" in (by_name["unpinned"].unverifiable or "")
    assert "--hash" in (by_name["nohash"].unverifiable or "")
    assert "editable" in (by_name["./local"].unverifiable or "")
    assert by_name["direct"].version == "3.0" and not by_name["direct"].allow_local


def test_requirements_follow_includes(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text(f"dep-pkg==0.1 --hash=sha256:{C}\n-r requirements.txt\n")
    (tmp_path / "requirements.txt").write_text(f"-r base.txt\ndemo-pkg==1.0 --hash=sha256:{A}\n")
    packages, _ = read_lock(tmp_path / "requirements.txt", "requirements", "requirements.txt")
    assert sorted(p.name for p in packages) == ["demo-pkg", "dep-pkg"]


@pytest.mark.parametrize(
    ("parser", "text"),
    [(parse_pylock, "lock-version = [unclosed"), (parse_uv_lock, 'version = 1\n'),
     (parse_requirements, "not a requirement ((\n")],
)
def test_broken_lock_files_raise_verify_error(parser, text: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(VerifyError):
        parser(text, "lockfile")
