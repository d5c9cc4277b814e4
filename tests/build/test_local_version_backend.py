"""The wrapper backend a repacked ``+fs.N`` sdist builds with, on its own.

Its rewriting functions are called here directly; its hooks run the way a
frontend runs them (a fresh interpreter, the working folder the source tree,
the wrapper's folder first on ``sys.path``) in a tree the real repack made,
around an in-tree backend that computes ``1.0``, on this Python and on the
oldest CPython the wrapper promises (3.6, when pyenv has it).
"""

from __future__ import annotations

import ast
import base64
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from fromsource.build import local_version_backend as wrapper
from fromsource.build.repack import repack_sdist
from fromsource.build.unpack import unpack_sdist
from tests.packages import SDIST_EPOCH, write_sdist

SOURCE = Path(wrapper.__file__)

# An in-tree backend that computes its version (1.0), whatever PKG-INFO says.  Python 3.6.
ORIGINAL = '''\
import base64, hashlib, io, os, tarfile, zipfile

VERSION = "1.0"
INFO = "demo_dyn-" + VERSION + ".dist-info"


def _hash(data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def _metadata():
    return ("Metadata-Version: 2.1\\nName: demo-dyn\\nVersion: " + VERSION
            + "\\n\\nVersion: 0.0 is only text in the description\\n").encode()


def get_requires_for_build_wheel(config_settings=None):
    return ["asked-with-" + (config_settings or {}).get("x", "nothing")]


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    os.mkdir(os.path.join(metadata_directory, INFO))
    with open(os.path.join(metadata_directory, INFO, "METADATA"), "wb") as handle:
        handle.write(_metadata())
    return INFO


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    assert metadata_directory is None, "the wrapper hands on no metadata folder"
    with open("demo_dyn/__init__.py", "rb") as handle:
        init = handle.read()
    files = [
        ("demo_dyn/__init__.py", init),
        ("demo_dyn-" + VERSION + ".data/scripts/demo-dyn", b"#!python\\nprint(1)\\n"),
        (INFO + "/METADATA", _metadata()),
        (INFO + "/WHEEL", b"Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\n"
                          b"Tag: py3-none-any\\n"),
    ]
    record = "".join("{},{},{}\\n".format(p, _hash(d), len(d)) for p, d in files)
    name = "demo_dyn-" + VERSION + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as archive:
        for path, data in files:
            archive.writestr(path, data)
        archive.writestr(INFO + "/RECORD", record + INFO + "/RECORD,,\\n")
    return name


def build_sdist(sdist_directory, config_settings=None):
    top = "demo_dyn-" + VERSION
    with tarfile.open(os.path.join(sdist_directory, top + ".tar.gz"), "w:gz") as tar:
        for path in ("PKG-INFO", "backend.py", "demo_dyn/__init__.py"):
            with open(path, "rb") as handle:
                data = _metadata() if path == "PKG-INFO" else handle.read()
            info = tarfile.TarInfo(top + "/" + path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return top + ".tar.gz"
'''

# What a frontend does, in the source tree.  Python 3.6.
FRONTEND = """\
import json, os, sys, tempfile
sys.path.insert(0, os.path.abspath(".fromsource-backend"))
import fromsource_local_version_backend as backend
out = {"hooks": sorted(h for h in backend.OPTIONAL_HOOKS if hasattr(backend, h))}
out["requires"] = backend.get_requires_for_build_wheel({"x": "settings"})
prepared = tempfile.mkdtemp()
out["metadata"] = backend.prepare_metadata_for_build_wheel(prepared)
with open(os.path.join(prepared, out["metadata"], "METADATA")) as handle:
    out["metadata_text"] = handle.read()
metadata = os.path.join(prepared, out["metadata"])
out["wheel"] = backend.build_wheel(sys.argv[1], None, metadata)
out["sdist"] = backend.build_sdist(sys.argv[2])
print(json.dumps(out))
"""


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _members_as_recorded(wheel: Path) -> dict[str, bytes]:
    """The wheel's members, after checking that RECORD lists each with its hash and size."""
    with zipfile.ZipFile(wheel) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    (record,) = [name for name in members if name.endswith(".dist-info/RECORD")]
    rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(members[record].decode()))}
    assert set(rows) == set(members)
    for name, data in members.items():
        expected = ["", ""] if name == record else [_record_hash(data), str(len(data))]
        assert rows[name] == expected, name
    return members


def _wheel(folder: Path, version: str = "1.0") -> Path:
    """A wheel of demo-dyn *version* with a ``.data`` script, as a backend writes one."""
    info = f"demo_dyn-{version}.dist-info"
    files = {
        "demo_dyn/__init__.py": b"x = 1\n",
        f"demo_dyn-{version}.data/scripts/demo-dyn": b"#!python\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: demo-dyn\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nTag: py3-none-any\n",
    }
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"demo_dyn-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info_ = zipfile.ZipInfo(name, (2021, 1, 1, 0, 0, 0))
            info_.external_attr = (0o755 if "scripts" in name else 0o644) << 16
            archive.writestr(info_, data)
    return path


def test_it_needs_the_standard_library_alone_and_python_3_6_syntax() -> None:
    text = SOURCE.read_text()
    tree = ast.parse(text, feature_version=(3, 6))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported and imported <= set(sys.stdlib_module_names)
    assert "__future__" not in imported and "fromsource" not in imported


def test_a_wheel_gets_the_local_version_in_its_name_folders_metadata_and_record(
    tmp_path: Path,
) -> None:
    original = _members_as_recorded(_wheel(tmp_path))
    name = wrapper.relabel_wheel(str(tmp_path), "demo_dyn-1.0-py3-none-any.whl", "1.0+fs.1")
    assert name == "demo_dyn-1.0+fs.1-py3-none-any.whl"
    assert [p.name for p in tmp_path.iterdir()] == [name]  # the old file is gone
    members = _members_as_recorded(tmp_path / name)
    assert list(members) == [
        "demo_dyn/__init__.py",
        "demo_dyn-1.0+fs.1.data/scripts/demo-dyn",
        "demo_dyn-1.0+fs.1.dist-info/METADATA",
        "demo_dyn-1.0+fs.1.dist-info/WHEEL",
        "demo_dyn-1.0+fs.1.dist-info/RECORD",
    ]
    assert members["demo_dyn-1.0+fs.1.dist-info/METADATA"].endswith(b"\nVersion: 1.0+fs.1\n")
    assert members["demo_dyn/__init__.py"] == original["demo_dyn/__init__.py"]
    with zipfile.ZipFile(tmp_path / name) as archive:
        script = archive.getinfo("demo_dyn-1.0+fs.1.data/scripts/demo-dyn")
        assert script.external_attr >> 16 == 0o755 and script.date_time == (2021, 1, 1, 0, 0, 0)


def test_a_wheel_that_already_says_the_local_version_is_left_alone(tmp_path: Path) -> None:
    before = _wheel(tmp_path, "1.0+fs.1").read_bytes()
    name = wrapper.relabel_wheel(str(tmp_path), "demo_dyn-1.0+fs.1-py3-none-any.whl", "1.0+fs.1")
    assert name == "demo_dyn-1.0+fs.1-py3-none-any.whl"
    assert (tmp_path / name).read_bytes() == before


def test_a_prepared_metadata_folder_is_renamed_and_its_version_set(tmp_path: Path) -> None:
    (tmp_path / "demo_dyn-1.0.dist-info").mkdir()
    metadata = b"Name: demo-dyn\r\nVersion: 1.0\r\n\r\nVersion: 0 in the description\r\n"
    (tmp_path / "demo_dyn-1.0.dist-info" / "METADATA").write_bytes(metadata)
    name = wrapper.relabel_metadata_directory(str(tmp_path), "demo_dyn-1.0.dist-info", "1.0+fs.1")
    assert name == "demo_dyn-1.0+fs.1.dist-info" and [p.name for p in tmp_path.iterdir()] == [name]
    assert (tmp_path / name / "METADATA").read_bytes() == metadata.replace(
        b"Version: 1.0\r", b"Version: 1.0+fs.1\r"
    )
    with pytest.raises(ValueError, match="no Version header"):
        wrapper.set_metadata_version(b"Name: x\n\nVersion: 1\n", "1+fs.1")


def test_an_sdist_is_relabelled_and_carries_the_wrapper(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / wrapper.FOLDER).mkdir(parents=True)
    for relative in ("pyproject.toml", f"{wrapper.FOLDER}/{wrapper.MODULE}.py"):
        (tree / relative).write_text(f"# {relative}\n")
    (tree / wrapper.FOLDER / wrapper.CONFIG).write_text("{}\n")
    built = tmp_path / "dist"
    built.mkdir()
    with tarfile.open(built / "demo-dyn-1.0.tar.gz", "w:gz") as tar:
        members = (("PKG-INFO", b"Name: demo-dyn\nVersion: 1.0\n"), ("pyproject.toml", b""))
        for name, data in members:
            info = tarfile.TarInfo(f"demo-dyn-1.0/{name}")
            info.size, info.mtime = len(data), SDIST_EPOCH
            tar.addfile(info, io.BytesIO(data))
    name = wrapper.relabel_sdist(str(built), "demo-dyn-1.0.tar.gz", "1.0+fs.1", str(tree))
    assert name == "demo-dyn-1.0+fs.1.tar.gz" and [p.name for p in built.iterdir()] == [name]
    with tarfile.open(built / name) as tar:
        names = tar.getnames()
        pkg_info = tar.extractfile("demo-dyn-1.0+fs.1/PKG-INFO")
        assert pkg_info is not None and pkg_info.read().endswith(b"Version: 1.0+fs.1\n")
        carried = tar.extractfile(f"demo-dyn-1.0+fs.1/{wrapper.FOLDER}/{wrapper.CONFIG}")
        assert carried is not None and carried.read() == b"{}\n"
    assert names == [
        "demo-dyn-1.0+fs.1/PKG-INFO",
        "demo-dyn-1.0+fs.1/pyproject.toml",  # the backend's own, kept
        f"demo-dyn-1.0+fs.1/{wrapper.FOLDER}/{wrapper.MODULE}.py",
        f"demo-dyn-1.0+fs.1/{wrapper.FOLDER}/{wrapper.CONFIG}",
    ]


def test_outside_a_repacked_sdist_the_hooks_say_where_they_run(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="runs only inside a repacked sdist"):
        wrapper.build_wheel(str(tmp_path))


def _python(version: str) -> str:
    """This interpreter (``running``) or pyenv's CPython *version*; skips when missing."""
    if version == "running":
        return sys.executable
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = sorted(root.glob(f"versions/{version}.*/bin/python{version}"))
    if not found:
        pytest.skip(f"needs CPython {version} in pyenv's versions folder")
    return str(found[-1])


@pytest.mark.parametrize("version", ["3.6", "running"])
def test_the_hooks_hand_on_to_the_original_backend_and_relabel_what_it_made(
    version: str, tmp_path: Path
) -> None:
    python = _python(version)
    files = {
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\n'
        'backend-path = ["."]\n\n[project]\nname = "demo-dyn"\ndynamic = ["version"]\n',
        "backend.py": ORIGINAL,
        "demo_dyn/__init__.py": "x = 1\n",
    }
    archive = write_sdist(tmp_path / "up", "demo-dyn", "1.0", files)
    repacked = repack_sdist(
        archive,
        tmp_path / "work",
        project="demo-dyn",
        version="1.0+fs.1",
        epoch=SDIST_EPOCH,
        patch_tree=None,
    )
    assert repacked.wrapped and not repacked.pinned
    tree = unpack_sdist(repacked.path, tmp_path / "tree").root
    settings = json.loads((tree / wrapper.FOLDER / wrapper.CONFIG).read_text())
    assert settings == {"backend": "backend", "backend-path": ["."], "version": "1.0+fs.1"}
    wheels, sdists = tmp_path / "wheels", tmp_path / "sdists"
    wheels.mkdir()
    sdists.mkdir()
    done = subprocess.run(
        [python, "-c", FRONTEND, str(wheels), str(sdists)],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "")},
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    # the optional hooks are those the original has, no more
    assert out["hooks"] == ["get_requires_for_build_wheel", "prepare_metadata_for_build_wheel"]
    assert out["requires"] == ["asked-with-settings"]
    assert out["metadata"] == "demo_dyn-1.0+fs.1.dist-info"
    assert out["metadata_text"].startswith("Metadata-Version: 2.1\nName: demo-dyn\n")
    assert "Version: 1.0+fs.1\n\nVersion: 0.0 is only text" in out["metadata_text"]
    assert out["wheel"] == "demo_dyn-1.0+fs.1-py3-none-any.whl"
    members = _members_as_recorded(wheels / out["wheel"])
    assert sorted(members) == [
        "demo_dyn-1.0+fs.1.data/scripts/demo-dyn",
        "demo_dyn-1.0+fs.1.dist-info/METADATA",
        "demo_dyn-1.0+fs.1.dist-info/RECORD",
        "demo_dyn-1.0+fs.1.dist-info/WHEEL",
        "demo_dyn/__init__.py",
    ]
    assert out["sdist"] == "demo_dyn-1.0+fs.1.tar.gz"
    with tarfile.open(sdists / out["sdist"]) as tar:
        assert sorted(tar.getnames()) == [
            f"demo_dyn-1.0+fs.1/{wrapper.FOLDER}/{wrapper.MODULE}.py",
            f"demo_dyn-1.0+fs.1/{wrapper.FOLDER}/{wrapper.CONFIG}",
            "demo_dyn-1.0+fs.1/PKG-INFO",
            "demo_dyn-1.0+fs.1/backend.py",
            "demo_dyn-1.0+fs.1/demo_dyn/__init__.py",
            "demo_dyn-1.0+fs.1/pyproject.toml",
        ]
        module = tar.extractfile(f"demo_dyn-1.0+fs.1/{wrapper.FOLDER}/{wrapper.MODULE}.py")
        assert module is not None and module.read() == SOURCE.read_bytes()
