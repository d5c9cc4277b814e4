"""Repacking a patched tree as a reproducible ``X.Y.Z+fs.N`` sdist."""

from __future__ import annotations

import gzip
import json
import os
import tarfile
import tomllib
from pathlib import Path

import pytest

from fromsource.build import local_version_backend as wrapper
from fromsource.build.repack import repack_sdist, set_version, wrap_backend, write_sdist
from fromsource.build.unpack import read_pkg_info
from fromsource.dist.sdistinfo import check_sdist
from tests.packages import SDIST_EPOCH, make_sdist
from tests.packages import write_sdist as write_upstream


def _tree(root: Path, stamp: int) -> Path:
    for path, text in {"PKG-INFO": "Version: 1.0\n", "b/z.py": "z\n", "a.py": "a\n"}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
        os.utime(root / path, (stamp, stamp))
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o775)
    (root / "link.py").symlink_to("a.py")
    return root


def test_the_same_tree_packs_to_the_same_bytes(tmp_path: Path) -> None:
    one = write_sdist(_tree(tmp_path / "t1", 1_000), "demo-1.0+fs.1", tmp_path / "o1", SDIST_EPOCH)
    two = write_sdist(_tree(tmp_path / "t2", 2_000), "demo-1.0+fs.1", tmp_path / "o2", SDIST_EPOCH)
    assert one.read_bytes() == two.read_bytes()
    assert one.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime 0
    with tarfile.open(one) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "demo-1.0+fs.1/PKG-INFO",
        "demo-1.0+fs.1/a.py",
        "demo-1.0+fs.1/b/z.py",
        "demo-1.0+fs.1/link.py",
        "demo-1.0+fs.1/run.sh",
    ]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {
        (SDIST_EPOCH, 0, 0, "", "")
    }
    modes = {m.name.rsplit("/", 1)[1]: (m.mode, m.issym()) for m in members}
    assert modes["a.py"] == (0o644, False) and modes["run.sh"] == (0o755, False)
    assert modes["link.py"][1] is True
    assert gzip.decompress(one.read_bytes())  # a plain gzip stream


def test_the_version_is_raised_where_it_is_written_down(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
    (tree / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\n\n[project]\nname = "demo"\nversion = "1.0"  # pinned\n'
        '\n[tool.other]\nversion = "9"\n'
    )
    (tree / "setup.cfg").write_text("[metadata]\nname = demo\nversion = 1.0\n")
    assert set_version(tree, "1.0+fs.2") == ("PKG-INFO", "pyproject.toml", "setup.cfg")
    assert read_pkg_info(tree).version.local == "fs.2"
    data = tomllib.loads((tree / "pyproject.toml").read_text())
    assert data["project"]["version"] == "1.0+fs.2" and data["tool"]["other"]["version"] == "9"
    assert "version = 1.0+fs.2\n" in (tree / "setup.cfg").read_text()


def test_a_computed_version_is_left_alone(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "PKG-INFO").write_text("Name: demo\nVersion: 1.0\n")
    pyproject = '[project]\nname = "demo"\ndynamic = ["version"]\n'
    (tree / "pyproject.toml").write_text(pyproject)
    (tree / "setup.cfg").write_text("[metadata]\nversion = attr: demo.__version__\n")
    assert set_version(tree, "1.0+fs.1") == ("PKG-INFO",)
    assert (tree / "pyproject.toml").read_text() == pyproject


def test_repack_unpacks_patches_and_relabels(tmp_path: Path) -> None:
    archive = make_sdist(tmp_path / "up", "demo-fix", "1.0", "setuptools")

    def patch(tree: Path) -> None:
        (tree / "demo_fix" / "__init__.py").write_text('__version__ = "1.0"  # fixed\n')

    first = repack_sdist(
        archive,
        tmp_path / "w1",
        project="demo-fix",
        version="1.0+fs.1",
        epoch=SDIST_EPOCH,
        patch_tree=patch,
    )
    again = repack_sdist(
        archive,
        tmp_path / "w2",
        project="demo-fix",
        version="1.0+fs.1",
        epoch=SDIST_EPOCH,
        patch_tree=patch,
    )
    assert first.path.name == "demo_fix-1.0+fs.1.tar.gz"
    assert first.pinned and not first.wrapped  # [project] pins it: nothing to wrap
    assert first.path.read_bytes() == again.path.read_bytes()
    assert check_sdist(first.path).version == "1.0+fs.1"
    with tarfile.open(first.path) as tar:
        init = tar.extractfile("demo_fix-1.0+fs.1/demo_fix/__init__.py")
        assert init is not None and b"# fixed" in init.read()


ATTR_FILES = {
    "pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]  # pinned\n'
    'build-backend = "setuptools.build_meta"\n\n[tool.other]\nkey = "kept"\n',
    "setup.cfg": "[metadata]\nname = demo-attr\nversion = attr: demo_attr.__version__\n",
    "demo_attr/__init__.py": '__version__ = "1.0"\n',
}


def test_a_computed_version_gets_the_wrapper_backend_reproducibly(tmp_path: Path) -> None:
    archive = write_upstream(tmp_path / "up", "demo-attr", "1.0", ATTR_FILES)
    one, two = (
        repack_sdist(
            archive,
            tmp_path / work,
            project="demo-attr",
            version="1.0+fs.1",
            epoch=SDIST_EPOCH,
            patch_tree=None,
        )
        for work in ("w1", "w2")
    )
    assert one.wrapped and not one.pinned and one.unwrapped is None
    assert one.path.read_bytes() == two.path.read_bytes()
    top = "demo_attr-1.0+fs.1"
    with tarfile.open(one.path) as tar:
        files = {
            m.name.removeprefix(top + "/"): tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
        }
        assert {m.mode for m in tar.getmembers()} == {0o644}
    pyproject = tomllib.loads(files["pyproject.toml"].decode())
    assert pyproject == {
        "build-system": {
            "requires": ["setuptools>=61"],
            "build-backend": wrapper.MODULE,
            "backend-path": [wrapper.FOLDER],
        },
        "tool": {"other": {"key": "kept"}},
    }
    assert files["pyproject.toml"].decode().endswith('\n[tool.other]\nkey = "kept"\n')
    assert files[f"{wrapper.FOLDER}/{wrapper.MODULE}.py"] == Path(wrapper.__file__).read_bytes()
    assert json.loads(files[f"{wrapper.FOLDER}/{wrapper.CONFIG}"]) == {
        "backend": "setuptools.build_meta",
        "backend-path": [],
        "version": "1.0+fs.1",
    }


def test_a_tree_without_build_system_is_wrapped_with_the_pep_518_defaults(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "setup.py").write_text("from setuptools import setup\nsetup(version='1.0')\n")
    assert wrap_backend(bare, "1.0+fs.1") is None
    assert tomllib.loads((bare / "pyproject.toml").read_text())["build-system"] == {
        "requires": ["setuptools>=40.8.0"],
        "build-backend": wrapper.MODULE,
        "backend-path": [wrapper.FOLDER],
    }
    settings = json.loads((bare / wrapper.FOLDER / wrapper.CONFIG).read_text())
    assert settings["backend"] == "setuptools.build_meta:__legacy__"

    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "pyproject.toml").write_text(
        '[tool.black]\nline-length = 99\n\n[build-system]\nrequires = ["x"]\n'
        'build-backend = "in_tree:api.backend"\nbackend-path = ["build_tools"]\n'
    )
    assert wrap_backend(tools, "2.0+fs.3") is None
    document = tomllib.loads((tools / "pyproject.toml").read_text())
    assert document["tool"] == {"black": {"line-length": 99}}
    assert document["build-system"]["requires"] == ["x"]
    assert json.loads((tools / wrapper.FOLDER / wrapper.CONFIG).read_text()) == {
        "backend": "in_tree:api.backend",
        "backend-path": ["build_tools"],
        "version": "2.0+fs.3",
    }


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("build-system = { requires = [] }\n", "could not be rewritten in place"),
        ("[build-system]\nbuild-backend = 'x'\n", "requires is not a list of strings"),
        ("[build-system\n", "does not parse"),
    ],
)
def test_a_build_system_it_cannot_rewrite_is_left_as_it_was(
    tmp_path: Path, text: str, reason: str
) -> None:
    (tmp_path / "pyproject.toml").write_text(text)
    assert reason in (wrap_backend(tmp_path, "1.0+fs.1") or "")
    assert [p.name for p in tmp_path.iterdir()] == ["pyproject.toml"]
    assert (tmp_path / "pyproject.toml").read_text() == text
