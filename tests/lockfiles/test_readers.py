"""The lock readers: each format's text in, one PinnedPackage per pinned package out.

Value-in, value-out cases per format, the sources a lock names (index, another
index, VCS, path, URL) reported as written, and malformed or hostile input
refused with a LockError that names the file and the line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from packaging.markers import Marker

from fromsource.dist.names import ProjectName, Sha256
from fromsource.errors import LockError
from fromsource.lockfiles.pdmlock import read_pdmlock
from fromsource.lockfiles.pinned import PinnedFile, PinnedPackage, Source
from fromsource.lockfiles.pipfilelock import read_pipfilelock
from fromsource.lockfiles.poetrylock import read_poetrylock
from fromsource.lockfiles.pylock import read_pylock
from fromsource.lockfiles.read import MAX_INCLUDE_DEPTH, parse_lock, read_lock
from fromsource.lockfiles.reqfile import Include, parse_requirements
from fromsource.lockfiles.uvlock import read_uvlock

A, B, C = Sha256("a" * 64), Sha256("b" * 64), Sha256("c" * 64)
UP = "https://upstream.example/simple/"
FILES = "https://files.upstream.example/"


def _by_label(packages: tuple[PinnedPackage, ...]) -> dict[str, PinnedPackage]:
    return {p.label: p for p in packages}


# -- requirements ---------------------------------------------------------------------------

REQUIREMENTS = f"""\
# compiled
--index-url {UP}
Demo_Pkg[Fast,cli]==1.0 ; python_version >= "3.8" \\
    --hash=sha256:{A} \\
    --hash=sha256:{B.upper()}
    # via app
dep-pkg===0.1 --hash=sha256:{C} --hash=sha512:{"d" * 128}  # pinned exactly
loose>=2,<3
"""


def test_requirements_pins_hashes_markers_and_extras() -> None:
    parsed = parse_requirements(REQUIREMENTS, "reqs/requirements.txt")
    assert parsed.includes == ()
    demo, dep, loose = parsed.packages
    assert demo == PinnedPackage(
        ProjectName("demo-pkg"), "Demo_Pkg", "1.0", "reqs/requirements.txt", 3, Source("index"),
        frozenset({"fast", "cli"}), Marker('python_version >= "3.8"'), frozenset({A, B}),
        allows_local=True)
    assert demo.location == "reqs/requirements.txt:3"
    assert (dep.version, dep.allows_local, dep.hashes, dep.line) == ("0.1", False, frozenset({C}), 7)
    assert (loose.name, loose.version, loose.hashes) == ("loose", None, frozenset())


def test_requirements_report_each_source_as_written() -> None:
    text = (
        "-e ./local[dev]\n"
        "-e git+https://git.example/r.git@v1#egg=Tool_X\n"
        "lib @ git+https://git.example/lib.git@abc\n"
        f"direct @ {FILES}direct-3.0-py3-none-any.whl --hash=sha256:{A}\n"
        "./wheels/x-1.0-py3-none-any.whl\n"
        f'{FILES}y-2.0.tar.gz#egg=y ; sys_platform == "linux"\n'
        "../sibling\n"
        "file:///srv/pkgs/z-1.0.zip\n"
    )
    found = _by_label(parse_requirements(text, "r.txt").packages)
    assert found["./local[dev]"].source == Source("path", "./local", "path", editable=True)
    assert found["./local[dev]"].name is None and found["./local[dev]"].extras == {"dev"}
    tool = found["git+https://git.example/r.git@v1#egg=Tool_X"]
    assert (tool.name, tool.source.kind, tool.source.form, tool.source.editable) == (
        "tool-x", "vcs", "git", True)
    assert found["lib"].source == Source("vcs", "git+https://git.example/lib.git@abc", "git")
    direct = found["direct"]
    assert (direct.source.kind, direct.version, direct.hashes) == ("url", "3.0", frozenset({A}))
    assert not direct.allows_local
    wheel = found["./wheels/x-1.0-py3-none-any.whl"]
    assert (wheel.name, wheel.version, wheel.source.kind) == ("x", "1.0", "path")
    sdist = found[f"{FILES}y-2.0.tar.gz#egg=y"]
    assert (sdist.name, sdist.version, sdist.source.kind) == ("y", None, "url")
    assert sdist.marker == Marker('sys_platform == "linux"')
    assert found["../sibling"].source == Source("path", "../sibling", "path")
    assert found["../sibling"].name is None
    assert found["file:///srv/pkgs/z-1.0.zip"].source.kind == "path"
    assert [p.line for p in found.values()] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_requirements_lines_follow_pip() -> None:
    text = (
        "# a comment line ending in a backslash does not continue \\\n"
        "first==1.0 \\\r\n"
        "    --hash=sha256:" + A + "\r\n"
        "second==2.0 --index-url=https://other.example/simple/   # options after it are ignored\n"
        "-r more.txt -c pins.txt\n"  # pip follows the first include of a line
        "--constraint=c.txt\n"
        "-rshort.txt\n"
        "--pre --prefer-binary --extra-index https://x.example/simple/\n"
    )
    parsed = parse_requirements(text)
    assert [(p.label, p.line, p.hashes) for p in parsed.packages] == [
        ("first", 2, {A}), ("second", 4, frozenset())]
    assert parsed.includes == (Include("more.txt", False, 5), Include("c.txt", True, 6),
                               Include("short.txt", False, 7))


@pytest.mark.parametrize(("text", "message"), [
    ("ok==1\n--frobnicate x\n", "requirements.txt:2: .*unknown option --frobnicate"),
    ("ok==1\n--no\n", ":2: .*unknown option --no"),  # ambiguous prefix
    ("-z\n", ":1: .*unknown option -z"),
    ("x==1 --hash=md5:0123\n", ":1: .*--hash=md5:0123 is not one of sha256"),
    ("x==1 --hash=deadbeef\n", ":1: .*--hash=deadbeef"),
    ("x==1 --hash=sha256:xyz\n", ":1: .*sha256 'xyz' is not 64 hex digits"),
    ("x==1 --hash 'sha256:\n", ":1: .*cannot be split"),
    ("\n\nnot a requirement ((\n", ":3: .*not a requirement"),
    ("pkg==${VERSION}\n", "variables are not expanded"),
    ('x==1 ; python_version >>> "3"\n', ":1: .*marker .* is not valid"),
    ('./dir ; os_name =! "nt"\n', ":1: .*marker .* is not valid"),
    ("-e https://example.org/x-1.0.tar.gz\n", ":1: .*local folder or a VCS URL"),
    ("./x-1.0-py3-none.whl\n", ":1: .*not a valid wheel filename"),
    ("git+https://g.example/r.git#egg=../../evil\n", ":1: .*is not a project name"),
    ("-r\n", ":1: .*option --requirement needs a value"),
    ("--pre=yes\n", ":1: .*option --pre takes no value"),
])
def test_requirements_refuse_what_pip_refuses(text: str, message: str) -> None:
    with pytest.raises(LockError, match=message) as refused:
        parse_requirements(text, "requirements.txt")
    assert refused.value.facts["path"] == "requirements.txt"


def test_hostile_input_is_cut_short_in_messages() -> None:
    with pytest.raises(LockError) as refused:
        parse_requirements("x" * 100_000 + "((\n", "requirements.txt")
    assert refused.value.message.startswith("requirements.txt:1: not a well-formed")
    assert len(refused.value.message) < 500
    with pytest.raises(LockError, match="is not 64 hex digits") as digest:
        read_uvlock('[[package]]\nname = "x"\nsource = { registry = "r" }\n'
                    f'sdist = {{ url = "u", hash = "sha256:{"f" * 100_000}" }}\n', "uv.lock")
    assert len(digest.value.message) < 500


def test_read_lock_follows_includes_in_pips_order(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "requirements.txt").write_text(
        f"first==1 --hash=sha256:{A}\n-r sub/base.txt\n-c pins.txt\nlast==3\n")
    (tmp_path / "sub" / "base.txt").write_text(
        "base==2\n-r ../requirements.txt\n-r more.txt\n")  # a loop is read once
    (tmp_path / "sub" / "more.txt").write_text("more==2.5\n")
    (tmp_path / "pins.txt").write_text("pinned==4 ; os_name == 'posix'\n-r nested-pins.txt\n")
    (tmp_path / "nested-pins.txt").write_text("nested==5\n")
    lock = read_lock(tmp_path / "requirements.txt", origin="requirements.txt")
    assert lock.format == "requirements"
    assert [(p.label, p.location) for p in lock.packages] == [
        ("first", "requirements.txt:1"), ("base", "sub/base.txt:1"),
        ("more", "sub/more.txt:1"), ("last", "requirements.txt:4")]
    # Inside a constraints file every include constrains too, as in pip.
    assert [(p.label, p.location) for p in lock.constraints] == [
        ("pinned", "pins.txt:1"), ("nested", "nested-pins.txt:1")]
    assert lock.files == ("requirements.txt", "sub/base.txt", "sub/more.txt", "pins.txt",
                          "nested-pins.txt")


def test_read_lock_refuses_deep_missing_and_remote_includes(tmp_path: Path) -> None:
    for number in range(MAX_INCLUDE_DEPTH + 2):
        (tmp_path / f"r{number}.txt").write_text(f"-r r{number + 1}.txt\n")
    with pytest.raises(LockError, match=r"r10.txt:1: -r r11.txt: includes nest deeper than 10"):
        read_lock(tmp_path / "r0.txt", origin="r0.txt")
    (tmp_path / "top.txt").write_text("x==1\n\n-r gone.txt\n")
    with pytest.raises(LockError, match=r"top.txt:3: -r gone.txt: .*cannot read"):
        read_lock(tmp_path / "top.txt", origin="top.txt")
    (tmp_path / "remote.txt").write_text("-c https://example.org/constraints.txt\n")
    with pytest.raises(LockError, match=r"remote.txt:1: -c https://.*includes a URL"):
        read_lock(tmp_path / "remote.txt", origin="remote.txt")


# -- uv.lock --------------------------------------------------------------------------------

UV_LOCK = f"""\
version = 1
revision = 3
requires-python = ">=3.11"
resolution-markers = ["sys_platform == 'linux'", "sys_platform != 'linux'"]

[[package]]
name = "app"
version = "0.1"
source = {{ virtual = "." }}

[[package]]
name = "Demo_Pkg"
version = "1.0"
source = {{ registry = "{UP}" }}
resolution-markers = ["sys_platform == 'linux'"]
sdist = {{ url = "{FILES}demo_pkg-1.0.tar.gz", hash = "sha256:{C}", size = 10 }}
wheels = [
    {{ url = "{FILES}demo_pkg-1.0-py3-none-any.whl", hash = "sha256:{A}", size = 11 }},
    {{ url = "{FILES}demo_pkg-1.0-cp311-cp311-win_amd64.whl", hash = "sha512:{"e" * 128}" }},
]

[[package]]
name = "vcs-pkg"
version = "0.3"
source = {{ git = "https://git.example/vcs-pkg?rev=abc#abc" }}

[[package]]
name = "member"
version = "0.2"
source = {{ editable = "packages/member" }}

[[package]]
name = "local-wheel"
version = "0.4"
source = {{ path = "wheels/local_wheel-0.4-py3-none-any.whl" }}
wheels = [{{ filename = "local_wheel-0.4-py3-none-any.whl", hash = "sha256:{B}" }}]

[[package]]
name = "from-url"
version = "0.5"
source = {{ url = "https://archive.example/from_url-0.5.tar.gz" }}
sdist = {{ hash = "sha256:{C}" }}
"""


def test_uv_lock() -> None:
    found = _by_label(read_uvlock(UV_LOCK, "uv.lock"))
    assert found["Demo_Pkg"] == PinnedPackage(
        ProjectName("demo-pkg"), "Demo_Pkg", "1.0", "uv.lock", 11,
        Source("index", UP, "registry"), marker=Marker("sys_platform == 'linux'"),
        hashes=frozenset({A, C}),
        files=(PinnedFile("demo_pkg-1.0.tar.gz", f"{FILES}demo_pkg-1.0.tar.gz", C),
               PinnedFile("demo_pkg-1.0-py3-none-any.whl",
                          f"{FILES}demo_pkg-1.0-py3-none-any.whl", A),
               PinnedFile("demo_pkg-1.0-cp311-cp311-win_amd64.whl",
                          f"{FILES}demo_pkg-1.0-cp311-cp311-win_amd64.whl", None)))
    assert found["app"].source == Source("path", ".", "virtual")
    assert found["vcs-pkg"].source == Source("vcs", "https://git.example/vcs-pkg?rev=abc#abc", "git")
    assert found["member"].source == Source("path", "packages/member", "editable", editable=True)
    assert found["local-wheel"].files == (
        PinnedFile("local_wheel-0.4-py3-none-any.whl", None, B),)
    assert found["from-url"].files == (PinnedFile("from_url-0.5.tar.gz", None, C),)
    assert found["from-url"].source.kind == "url"
    assert [p.line for p in found.values()] == [6, 11, 22, 27, 32, 38]


@pytest.mark.parametrize(("entry", "message"), [
    ('name = "x"\nversion = "1"\n', r"uv.lock:3: .*package x: `source` names 0 of registry"),
    ('name = "x"\nsource = { registry = "r", git = "g" }\n', r"`source` names 2"),
    ('version = "1"\nsource = { registry = "r" }\n', r"uv.lock:3: .*package\[0\]: `name` is missing"),
    ('name = "x"\nsource = { registry = "r" }\nwheels = 5\n', r"`wheels` is an integer"),
    ('name = "x"\nsource = { registry = "r" }\nwheels = [{ url = "u", hash = "abc" }]\n',
     r"hash 'abc' is not `algorithm:digest`"),
    ('name = "x"\nsource = { registry = "r" }\nsdist = { url = "u", hash = "sha256:zz" }\n',
     r"sha256 'zz' is not 64 hex digits"),
    ('name = "x"\nsource = { registry = "r" }\nwheels = [{ hash = "sha256:' + "a" * 64 + '" }]\n',
     r"a file entry has no url, path or filename"),
    ('name = "x"\nsource = { registry = 3 }\n', r"`registry` is an integer"),
    ('name = "x"\nsource = { registry = "r" }\nresolution-markers = ["os_name ==="]\n',
     r"marker 'os_name ===' is not valid"),
])
def test_uv_lock_refuses_malformed_entries(entry: str, message: str) -> None:
    with pytest.raises(LockError, match=message) as refused:
        read_uvlock(f"version = 1\n\n[[package]]\n{entry}", "uv.lock")
    assert "regenerate the file with `uv lock`" in refused.value.message


def test_uv_lock_refuses_what_is_not_a_uv_lock() -> None:
    with pytest.raises(LockError, match="uv.lock: not valid TOML"):
        read_uvlock("[[package]\n", "uv.lock")
    with pytest.raises(LockError, match=r"no \[\[package\]\] table"):
        read_uvlock("version = 1\n", "uv.lock")
    with pytest.raises(LockError, match=r"package\[0\]: the entry is an integer"):
        read_uvlock("version = 1\npackage = [1]\n", "uv.lock")


# -- poetry.lock ----------------------------------------------------------------------------

POETRY_LOCK = f"""\
# This file is automatically @generated by Poetry 2.2.1 and should not be changed by hand.

[[package]]
name = "demo-pkg"
version = "1.0"
python-versions = "*"
groups = ["main", "dev"]
markers = {{main = "sys_platform == \\"linux\\"", dev = "python_version >= \\"3.12\\""}}
files = [
    {{file = "demo_pkg-1.0-py3-none-any.whl", hash = "sha256:{A}"}},
    {{file = "demo_pkg-1.0.tar.gz", hash = "sha256:{C}"}},
]

[package.source]
type = "legacy"
url = "{UP}"
reference = "private"

[[package]]
name = "plain"
version = "2.0"
markers = "os_name == \\"posix\\""
files = []

[[package]]
name = "tool"
version = "0.2"
files = []
develop = false

[package.source]
type = "git"
url = "https://git.example/tool.git"
reference = "HEAD"
resolved_reference = "abc"

[[package]]
name = "mine"
version = "0.1"
develop = true

[package.source]
type = "directory"
url = "../mine"

[metadata]
lock-version = "2.1"
content-hash = "0000"
"""


def test_poetry_lock() -> None:
    found = _by_label(read_poetrylock(POETRY_LOCK, "poetry.lock"))
    demo = found["demo-pkg"]
    assert (demo.line, demo.source) == (3, Source("index", UP, "legacy"))
    assert demo.hashes == {A, C}
    assert demo.marker == Marker('python_version >= "3.12" or sys_platform == "linux"')
    assert demo.files[0] == PinnedFile("demo_pkg-1.0-py3-none-any.whl", None, A)
    assert (found["plain"].source, found["plain"].marker) == (Source("index"),
                                                              Marker('os_name == "posix"'))
    assert found["tool"].source == Source("vcs", "https://git.example/tool.git", "git")
    assert found["mine"].source == Source("path", "../mine", "directory", editable=True)


def test_poetry_lock_1x_keeps_files_under_metadata() -> None:
    text = f"""\
[[package]]
name = "Demo-Pkg"
version = "1.0"

[metadata]
lock-version = "1.1"

[metadata.files]
Demo-Pkg = [
    {{file = "demo_pkg-1.0-py3-none-any.whl", hash = "sha256:{A}"}},
]
"""
    (demo,) = read_poetrylock(text, "poetry.lock")
    assert demo.files == (PinnedFile("demo_pkg-1.0-py3-none-any.whl", None, A),)


def test_poetry_lock_refuses_an_unknown_source_type() -> None:
    text = '[[package]]\nname = "x"\nversion = "1"\n[package.source]\ntype = "svn"\n'
    with pytest.raises(LockError, match=r"poetry.lock:1: .*package x: unknown source type 'svn'"):
        read_poetrylock(text, "poetry.lock")


# -- pdm.lock -------------------------------------------------------------------------------

PDM_LOCK = f"""\
# This file is @generated by PDM.
[metadata]
lock_version = "4.5.0"

[[package]]
name = "demo-pkg"
version = "1.0"
marker = "python_version >= \\"3.11\\""
files = [
    {{file = "demo_pkg-1.0-py3-none-any.whl", hash = "sha256:{A}"}},
]

[[package]]
name = "demo-pkg"
version = "1.0"
extras = ["Fast"]
files = [
    {{url = "{FILES}demo_pkg-1.0-py3-none-any.whl", hash = "sha256:{A}"}},
]

[[package]]
name = "tool"
version = "0.2"
git = "https://git.example/tool.git"
revision = "abc"

[[package]]
name = "mine"
version = "0.1"
path = "./mine"
editable = true

[[package]]
name = "archive"
version = "0.3"
url = "https://archive.example/archive-0.3.tar.gz"
"""


def test_pdm_lock() -> None:
    plain, fast, tool, mine, archive = read_pdmlock(PDM_LOCK, "pdm.lock")
    assert plain == PinnedPackage(
        ProjectName("demo-pkg"), "demo-pkg", "1.0", "pdm.lock", 5, Source("index"),
        marker=Marker('python_version >= "3.11"'), hashes=frozenset({A}),
        files=(PinnedFile("demo_pkg-1.0-py3-none-any.whl", None, A),))
    assert fast.extras == {"fast"}
    assert fast.files == (PinnedFile("demo_pkg-1.0-py3-none-any.whl",
                                     f"{FILES}demo_pkg-1.0-py3-none-any.whl", A),)
    assert tool.source == Source("vcs", "https://git.example/tool.git", "git")
    assert mine.source == Source("path", "./mine", "path", editable=True)
    assert archive.source == Source("url", "https://archive.example/archive-0.3.tar.gz", "url")


def test_pdm_lock_refuses_malformed_files() -> None:
    text = '[[package]]\nname = "x"\nversion = "1"\nfiles = [{hash = "sha256:' + "a" * 64 + '"}]\n'
    with pytest.raises(LockError, match=r"pdm.lock:1: .*a `files` entry has no file or url"):
        read_pdmlock(text, "pdm.lock")
    with pytest.raises(LockError, match=r"`editable` is a string, not a boolean"):
        read_pdmlock('[[package]]\nname = "x"\neditable = "yes"\n', "pdm.lock")


# -- pylock.toml ----------------------------------------------------------------------------

PYLOCK = f"""\
lock-version = "1.0"
created-by = "uv"

[[packages]]
name = "demo-pkg"
version = "1.0"
marker = "sys_platform == 'linux'"
index = "{UP}"
sdist = {{ url = "{FILES}demo_pkg-1.0.tar.gz", hashes = {{ sha256 = "{C}" }} }}
wheels = [
    {{ name = "demo_pkg-1.0-py3-none-any.whl", url = "{FILES}d.whl", hashes = {{ sha256 = "{A}" }} }},
    {{ path = "wheels/demo_pkg-1.0-py2-none-any.whl", hashes = {{ sha512 = "{"e" * 128}" }} }},
]

[[packages]]
name = "remote-archive"
version = "0.3"
archive = {{ url = "https://archive.example/ra-0.3.zip", hashes = {{ sha256 = "{B}" }} }}

[[packages]]
name = "local-archive"
archive = {{ path = "dist/la-0.4.tar.gz", hashes = {{ sha256 = "{B}" }} }}

[[packages]]
name = "from-git"
vcs = {{ type = "git", url = "https://git.example/r.git", commit-id = "abc" }}

[[packages]]
name = "me"
directory = {{ path = ".", editable = true }}
"""


def test_pylock() -> None:
    demo, remote, local, git, me = read_pylock(PYLOCK, "pylock.toml")
    assert demo == PinnedPackage(
        ProjectName("demo-pkg"), "demo-pkg", "1.0", "pylock.toml", 4, Source("index", UP),
        marker=Marker("sys_platform == 'linux'"), hashes=frozenset({A, C}),
        files=(PinnedFile("demo_pkg-1.0.tar.gz", f"{FILES}demo_pkg-1.0.tar.gz", C),
               PinnedFile("demo_pkg-1.0-py3-none-any.whl", f"{FILES}d.whl", A),
               PinnedFile("demo_pkg-1.0-py2-none-any.whl", None, None,
                          "wheels/demo_pkg-1.0-py2-none-any.whl")))
    assert [f.is_wheel for f in demo.files] == [False, True, True]
    assert remote.source == Source("url", "https://archive.example/ra-0.3.zip", "archive")
    assert remote.hashes == {B} and remote.files[0].filename == "ra-0.3.zip"
    assert local.source == Source("path", "dist/la-0.4.tar.gz", "archive")
    assert local.version is None
    assert git.source == Source("vcs", "https://git.example/r.git", "git")
    assert me.source == Source("path", ".", "directory", editable=True)
    assert me.source.describe() == "editable directory ."


def test_pylock_refuses_malformed_entries() -> None:
    with pytest.raises(LockError, match=r"no \[\[packages\]\] table; is this a pylock.toml"):
        read_pylock('lock-version = "1.0"\n', "pylock.toml")
    two = '[[packages]]\nname = "x"\nvcs = { url = "u" }\ndirectory = { path = "." }\n'
    with pytest.raises(LockError, match=r"pylock.toml:1: .*it has vcs and directory"):
        read_pylock(two, "pylock.toml")
    with pytest.raises(LockError, match=r"`hashes.sha256` is an integer"):
        read_pylock('[[packages]]\nname = "x"\nsdist = { url = "u", hashes = { sha256 = 1 } }\n',
                    "pylock.toml")


# -- Pipfile.lock ---------------------------------------------------------------------------

PIPFILE = {
    "_meta": {"hash": {"sha256": "0" * 64}, "pipfile-spec": 6,
              "sources": [{"name": "private", "url": UP, "verify_ssl": True}]},
    "default": {
        "demo-pkg": {"hashes": [f"sha256:{A}", f"sha384:{'f' * 96}"], "index": "private",
                     "markers": "python_version >= '3.11'", "extras": ["Fast"],
                     "version": "==1.0"},
        "exact": {"hashes": [f"sha256:{B}"], "version": "===2.0"},
        "anything": {"version": "*"},
        "mine": {"editable": True, "path": "."},
    },
    "develop": {"tool": {"git": "https://git.example/tool.git", "ref": "abc"},
                "archive": {"file": "https://archive.example/a-1.0.zip"}},
}


def test_pipfile_lock() -> None:
    text = json.dumps(PIPFILE, indent=4, sort_keys=True) + "\n"
    found = _by_label(read_pipfilelock(text, "Pipfile.lock"))
    assert found["demo-pkg"] == PinnedPackage(
        ProjectName("demo-pkg"), "demo-pkg", "1.0", "Pipfile.lock",
        text.splitlines().index('        "demo-pkg": {') + 1, Source("index", UP),
        frozenset({"fast"}), Marker("python_version >= '3.11'"), frozenset({A}),
        allows_local=True)
    assert (found["exact"].version, found["exact"].allows_local) == ("2.0", False)
    assert found["exact"].source == Source("index")
    assert found["anything"].version is None
    assert found["mine"].source == Source("path", ".", "path", editable=True)
    assert found["tool"].source == Source("vcs", "https://git.example/tool.git", "git")
    assert found["archive"].source.kind == "url"
    tool_line = text.splitlines().index('        "tool": {') + 1
    assert found["tool"].location == f"Pipfile.lock:{tool_line}"


def test_pipfile_lock_refuses_malformed_entries() -> None:
    unknown = {"default": {"x": {"version": "==1", "index": "nowhere"}}}
    with pytest.raises(LockError, match=r"Pipfile.lock:3: .*default.x: index 'nowhere' is not"):
        read_pipfilelock(json.dumps(unknown, indent=4), "Pipfile.lock")
    with pytest.raises(LockError, match=r"default.x: `hashes` is an integer"):
        read_pipfilelock('{"default": {"x": {"hashes": 5}}}', "Pipfile.lock")
    with pytest.raises(LockError, match=r"default: a package category is not an object"):
        read_pipfilelock('{"default": []}', "Pipfile.lock")
    with pytest.raises(LockError, match="not valid JSON"):
        read_pipfilelock("{", "Pipfile.lock")


# -- any format -----------------------------------------------------------------------------

@pytest.mark.parametrize(("filename", "text", "labels"), [
    ("requirements.txt", REQUIREMENTS, ["Demo_Pkg", "dep-pkg", "loose"]),
    ("uv.lock", UV_LOCK, ["app", "Demo_Pkg", "vcs-pkg", "member", "local-wheel", "from-url"]),
    ("poetry.lock", POETRY_LOCK, ["demo-pkg", "plain", "tool", "mine"]),
    ("pdm.lock", PDM_LOCK, ["demo-pkg", "demo-pkg", "tool", "mine", "archive"]),
    ("pylock.dev.toml", PYLOCK, ["demo-pkg", "remote-archive", "local-archive", "from-git", "me"]),
    ("Pipfile.lock", json.dumps(PIPFILE), ["demo-pkg", "exact", "anything", "mine", "tool",
                                           "archive"]),
])
def test_read_lock_detects_each_format(tmp_path: Path, filename: str, text: str,
                                       labels: list[str]) -> None:
    path = tmp_path / filename
    path.write_text(text)
    lock = read_lock(path)
    assert [p.label for p in lock.packages] == labels
    assert lock.origin == str(path) and lock.files == (str(path),)
    assert all(p.origin == str(path) for p in lock.packages)


def test_parse_lock_refuses_an_unknown_format() -> None:
    with pytest.raises(LockError, match="unknown lock format 'x.lock'"):
        parse_lock("x.lock", "", "x.lock")
