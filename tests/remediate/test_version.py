"""Version rewriting on small sdist trees made here."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from fromsource.errors import RemediateError
from fromsource.remediate.version import (
    rewrite_assignments,
    rewrite_pkg_info,
    rewrite_pyproject,
    rewrite_setup_cfg,
    rewrite_setup_py,
    set_version,
)

PKG_INFO = "Metadata-Version: 2.1\nName: demo\nVersion: 1.0.0\n\nVersion: 1.0.0 in the body\n"


def make_tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "demo-1.0.0"
    for name, text in {"PKG-INFO": PKG_INFO, **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_pkg_info_header_only() -> None:
    out = rewrite_pkg_info(PKG_INFO, "1.0.0", "1.0.0+fs.1")
    assert out == PKG_INFO.replace("Version: 1.0.0\n\n", "Version: 1.0.0+fs.1\n\n")
    with pytest.raises(RemediateError, match="PKG-INFO says version 1.0.0, expected 2.0"):
        rewrite_pkg_info(PKG_INFO, "2.0", "2.0+fs.1")


def test_setup_py_keyword_any_expression() -> None:
    source = (
        "import setuptools\nabout = {}\nexec(open('demo/__version__.py').read(), about)\n"
        "setuptools.setup(\n    name='demo',\n    version=about['__version__'],  # é\n"
        "    python_requires='>=3.7',\n)\n"
    )
    out = rewrite_setup_py(source, "1.0.0", "1.0.0+fs.1")
    assert out is not None
    assert "    version=\"1.0.0+fs.1\",  # é\n" in out
    assert "python_requires='>=3.7'" in out
    assert rewrite_setup_py("setup(name='x', version='9.9')\n", "1.0.0", "1.0.0+fs.1") is None
    assert rewrite_setup_py("setup(**kw)\n", "1.0.0", "1.0.0+fs.1") is None
    assert rewrite_setup_py("print 'python 2'\n", "1.0.0", "1.0.0+fs.1") is None


def test_setup_cfg_literal_attr_and_file() -> None:
    literal = "[metadata]\nname = demo\nversion = 1.0.0\n\n[options]\nversion = 1.0.0\n"
    out = rewrite_setup_cfg(literal, "1.0", "1.0+fs.1")
    assert out == literal.replace("version = 1.0.0\n\n", "version = 1.0+fs.1\n\n", 1)
    for pointer in ("attr: demo.__version__", "file: VERSION"):
        text = f"[metadata]\nversion = {pointer}\n"
        assert rewrite_setup_cfg(text, "1.0", "1.0+fs.1") == "[metadata]\nversion = 1.0+fs.1\n"
    assert rewrite_setup_cfg("[metadata]\nversion = 7\n", "1.0", "1.0+fs.1") is None
    assert rewrite_setup_cfg("[options]\nzip_safe = 0\n", "1.0", "1.0+fs.1") is None


def test_pyproject_static_dynamic_and_poetry() -> None:
    static = '[project]\nname = "demo"\nversion = "1.0.0"  # keep me\n'
    out, what = rewrite_pyproject(static, "1.0.0", "1.0.0+fs.1") or ("", [])
    assert out == static.replace('"1.0.0"', '"1.0.0+fs.1"') and what == ["[project] version"]

    dynamic = ('[project]\nname = "demo"\ndynamic = ["version", "readme"]\n\n'
               '[tool.setuptools.dynamic]\nversion = {attr = "demo.__version__"}\n')
    result = rewrite_pyproject(dynamic, "1.0.0", "1.0.0+fs.1")
    assert result is not None
    data = tomllib.loads(result[0])
    assert data["project"]["version"] == "1.0.0+fs.1"
    assert data["project"]["dynamic"] == ["readme"]
    assert "version" not in data["tool"]["setuptools"]["dynamic"]

    poetry = '[tool.poetry]\nname = "demo"\nversion = "1.0.0"\n'
    result = rewrite_pyproject(poetry, "1.0.0", "1.0.0+fs.1")
    assert result is not None and tomllib.loads(result[0])["tool"]["poetry"]["version"] == (
        "1.0.0+fs.1")
    assert rewrite_pyproject('[project]\nversion = "3"\n', "1.0.0", "1.0.0+fs.1") is None


def test_assignments() -> None:
    text = ('__version__ = "1.0.0"\nversion = __version__\nVERSION = \'1.0.0\'\n'
            '__version__: str = "1.0.0"\nother = "1.0.0"\npython_version = "1.0.0"\n'
            "__version__ = version = '1.0.0'\n")
    out = rewrite_assignments(text, "1.0.0", "1.0.0+fs.1")
    assert out == (
        '__version__ = "1.0.0+fs.1"\nversion = __version__\nVERSION = \'1.0.0+fs.1\'\n'
        '__version__: str = "1.0.0+fs.1"\nother = "1.0.0"\npython_version = "1.0.0"\n'
        "__version__ = version = '1.0.0+fs.1'\n"
    )
    assert rewrite_assignments('__version__ = "2.0"\n', "1.0.0", "x") is None


def test_set_version_setuptools_attr_keeps_runtime_version(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {
        "setup.cfg": "[metadata]\nname = demo\nversion = attr: demo.__version__\n",
        "setup.py": "from setuptools import setup\nsetup(name='demo')\n",
        "src/demo/__init__.py": '__version__ = "1.0.0"\n',
        "src/demo.egg-info/PKG-INFO": PKG_INFO,
    })
    edits = set_version(tree, "1.0.0", "1.0.0+fs.2")
    assert [(e.path, e.what) for e in edits] == [
        ("PKG-INFO", "PKG-INFO Version"),
        ("src/demo.egg-info/PKG-INFO", "PKG-INFO Version"),
        ("setup.cfg", "[metadata] version"),
    ]
    assert "version = 1.0.0+fs.2" in (tree / "setup.cfg").read_text()
    assert (tree / "src/demo/__init__.py").read_text() == '__version__ = "1.0.0"\n'


def test_set_version_setup_py(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {
        "setup.py": "from setuptools import setup\nVERSION = '1.0.0'\n"
                    "setup(name='demo', version=VERSION)\n",
    })
    edits = set_version(tree, "1.0.0", "1.0.0+fs.1")
    assert [e.path for e in edits] == ["PKG-INFO", "setup.py"]
    assert 'version="1.0.0+fs.1")' in (tree / "setup.py").read_text()


def test_set_version_pyproject(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {
        "pyproject.toml": '[build-system]\nrequires = ["flit_core"]\n'
                          'build-backend = "flit_core.buildapi"\n\n'
                          '[project]\nname = "demo"\ndynamic = ["version", "description"]\n',
        "demo/__init__.py": '"""Demo."""\n__version__ = "1.0.0"\n',
    })
    edits = set_version(tree, "1.0.0", "1.0.0+fs.1")
    assert [e.path for e in edits] == ["PKG-INFO", "pyproject.toml"]
    data = tomllib.loads((tree / "pyproject.toml").read_text())
    assert data["project"]["version"] == "1.0.0+fs.1"
    assert data["project"]["dynamic"] == ["description"]


def test_set_version_falls_back_to_the_module(tmp_path: Path) -> None:
    tree = make_tree(tmp_path, {
        "setup.py": "from setuptools import setup\nfrom meta import kw\nsetup(**kw)\n",
        "src/demo/_version.py": "__version__ = version = '1.0.0'\n",
        "tests/__init__.py": '__version__ = "1.0.0"\n',
    })
    edits = set_version(tree, "1.0.0", "1.0.0+fs.1")
    assert [e.path for e in edits] == ["PKG-INFO", "src/demo/_version.py"]
    assert (tree / "tests/__init__.py").read_text() == '__version__ = "1.0.0"\n'


def test_set_version_errors(tmp_path: Path) -> None:
    with pytest.raises(RemediateError, match="no PKG-INFO"):
        set_version(tmp_path, "1.0", "1.0+fs.1")
    tree = make_tree(tmp_path, {})
    with pytest.raises(RemediateError, match="not a PEP 440"):
        set_version(tree, "1.0.0", "1.0.0+fs 1")
    with pytest.raises(RemediateError, match="expected 2.0"):
        set_version(tree, "2.0", "2.0+fs.1")
