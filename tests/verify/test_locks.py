"""Lock files as verify counts them: read by fromsource.lockfiles, then excluded or pinned."""

from __future__ import annotations

from pathlib import Path

from fromsource.lockfiles.read import read_lock
from fromsource.verify.decide import locked_packages
from fromsource.verify.model import Excluded, LockedPackage

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

[[package]]
name = "local-wheel"
version = "0.3"
source = {{ path = "wheels/local_wheel-0.3-py3-none-any.whl" }}
wheels = [
    {{ filename = "local_wheel-0.3-py3-none-any.whl", hash = "sha256:{B}" }},
]
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


def _counted(tmp_path: Path, name: str, text: str
             ) -> tuple[dict[str, LockedPackage], list[Excluded]]:
    path = tmp_path / name
    path.write_text(text)
    packages, excluded = locked_packages(read_lock(path, origin=name))
    return {p.name: p for p in packages}, excluded


def test_pylock(tmp_path: Path) -> None:
    by_name, excluded = _counted(tmp_path, "pylock.toml", PYLOCK)
    assert by_name["demo-pkg"].hashes == {A, B}
    assert by_name["demo-pkg"].version == "1.0" and by_name["demo-pkg"].unverifiable is None
    assert not by_name["demo-pkg"].allow_local
    assert by_name["demo-pkg"].location == "pylock.toml:5"
    assert by_name["dep-pkg"].hashes == {C}
    assert by_name["from-git"].unverifiable == (
        "installed from git https://x.invalid/r.git, not from an index")
    assert excluded == [Excluded("myproject", None, "editable directory .")]


def test_uv_lock(tmp_path: Path) -> None:
    by_name, excluded = _counted(tmp_path, "uv.lock", UV_LOCK)
    assert by_name["demo-pkg"].hashes == {A, C} and by_name["demo-pkg"].unverifiable is None
    assert by_name["from-git"].unverifiable == (
        "installed from git https://x.invalid/r.git#abc, not from an index")
    # A local wheel pinned by hash can still be an attested file.
    assert by_name["local-wheel"].hashes == {B} and by_name["local-wheel"].unverifiable is None
    assert excluded == [Excluded("myproject", "0.1.0", "workspace project (editable source)")]


def test_requirements(tmp_path: Path) -> None:
    by_name, excluded = _counted(tmp_path, "requirements.txt", REQUIREMENTS)
    assert excluded == []
    demo = by_name["demo-pkg"]
    assert demo.hashes == {A, B} and demo.version == "1.0" and demo.allow_local
    assert demo.location == "requirements.txt:3"
    assert by_name["dep-pkg"].hashes == {C} and by_name["dep-pkg"].unverifiable is None
    assert by_name["unpinned"].unverifiable == "not pinned to one version"
    assert by_name["nohash"].unverifiable == "no sha256 hash pinned"
    assert by_name["./local"].unverifiable == (
        "installed from editable path ./local, not from an index")
    assert by_name["direct"].version == "3.0" and not by_name["direct"].allow_local
    assert by_name["direct"].unverifiable is None


def test_requirements_follow_includes(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text(f"dep-pkg==0.1 --hash=sha256:{C}\n-r requirements.txt\n")
    (tmp_path / "requirements.txt").write_text(f"-r base.txt\ndemo-pkg==1.0 --hash=sha256:{A}\n")
    by_name, _ = _counted(tmp_path, "requirements.txt",
                          f"-r base.txt\ndemo-pkg==1.0 --hash=sha256:{A}\n")
    assert sorted(by_name) == ["demo-pkg", "dep-pkg"]
    assert by_name["dep-pkg"].location == "base.txt:1"
