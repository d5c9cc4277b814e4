"""When a lock's package is installed: its marker derived from the lock's dependency graph.

uv writes a universal lock (and Poetry did before lock-version 2.1): a
package reached only through an edge with a marker (a Windows-only
dependency) has no marker of its own.  The reader gives each package the
marker under which some root reaches it; these cases evaluate that marker on
a Linux and a Windows environment as the builder does.
"""

from __future__ import annotations

from packaging.markers import Marker, default_environment

from fromsource.build.closure import TargetEnvironment
from fromsource.lockfiles import _graph
from fromsource.lockfiles.pinned import PinnedPackage
from fromsource.lockfiles.poetrylock import read_poetrylock
from fromsource.lockfiles.uvlock import read_uvlock

REG = 'source = { registry = "http://127.0.0.1:1/simple/" }'
LINUX: dict[str, str] = {
    **{k: str(v) for k, v in default_environment().items()}, "sys_platform": "linux",
    "platform_system": "Linux", "python_version": "3.11", "python_full_version": "3.11.9"}
WINDOWS = {**LINUX, "sys_platform": "win32", "platform_system": "Windows"}
PY312 = {**LINUX, "python_version": "3.12", "python_full_version": "3.12.4"}


def _lock(*packages: str) -> dict[str, PinnedPackage]:
    text = "version = 1\nrevision = 3\nrequires-python = \">=3.11\"\n\n" + "\n".join(
        f"[[package]]\n{p}" for p in packages)
    return {f"{p.label} {p.version}": p for p in read_uvlock(text, "uv.lock")}


def _on(pin: PinnedPackage, env: dict[str, str]) -> bool:
    """Whether the builder selects *pin* for a target with the marker environment *env*."""
    return TargetEnvironment("target", env).selects(pin.marker)


def _package(name: str, *dependencies: str, version: str = "1.0", extra: str = "",
             tail: str = "") -> str:
    deps = ", ".join(dependencies)
    return (f'name = "{name}"\nversion = "{version}"\n{REG}\n{extra}'
            f"dependencies = [{deps}]\n{tail}")


APP = 'name = "app"\nversion = "0.1"\nsource = { virtual = "." }\n'


def test_a_windows_only_edge_gives_a_marker_false_on_linux() -> None:
    found = _lock(
        APP + 'dependencies = [{ name = "click" }]\n',
        _package("click", '{ name = "colorama", marker = "sys_platform == \'win32\'" }'),
        _package("colorama"),
    )
    assert found["app 0.1"].marker is None
    assert found["click 1.0"].marker is None
    colorama = found["colorama 1.0"]
    assert colorama.marker == Marker("sys_platform == 'win32'")
    assert not _on(colorama, LINUX) and _on(colorama, WINDOWS)


def test_a_package_reached_unconditionally_and_conditionally_is_always_needed() -> None:
    found = _lock(
        APP + 'dependencies = [{ name = "helper" }, '
              '{ name = "pywin32", marker = "sys_platform == \'win32\'" }]\n',
        _package("helper", '{ name = "pywin32" }'),
        _package("pywin32"),
    )
    assert found["pywin32 1.0"].marker is None


def test_two_conditional_edges_reached_twice_are_joined_with_or() -> None:
    found = _lock(
        APP + 'dependencies = [{ name = "a", marker = "sys_platform == \'win32\'" }, '
              '{ name = "b", marker = "sys_platform == \'darwin\'" }]\n',
        _package("a", '{ name = "shared" }'),
        _package("b", '{ name = "shared" }'),
        _package("shared"),
    )
    shared = found["shared 1.0"]
    assert not _on(shared, LINUX) and _on(shared, WINDOWS)
    assert _on(shared, {**LINUX, "sys_platform": "darwin"})


def test_a_chain_of_two_conditional_edges_is_their_and() -> None:
    found = _lock(
        APP + 'dependencies = [{ name = "a", marker = "sys_platform == \'win32\'" }]\n',
        _package("a", '{ name = "b", marker = "python_full_version < \'3.12\'" }'),
        _package("b"),
    )
    b = found["b 1.0"]
    assert b.marker == Marker(
        "python_full_version < '3.12' and sys_platform == 'win32'")
    assert _on(b, WINDOWS)
    assert not _on(b, LINUX)
    assert not _on(b, {**PY312, "sys_platform": "win32"})


def test_a_cycle_is_reached_once() -> None:
    found = _lock(
        APP + 'dependencies = [{ name = "a", marker = "sys_platform == \'win32\'" }]\n',
        _package("a", '{ name = "b" }'),
        _package("b", '{ name = "a" }', '{ name = "c", marker = "python_version < \'3.12\'" }'),
        _package("c"),
        # a cycle nothing reaches is kept, as a lock without edge markers is
        _package("lone-1", '{ name = "lone-2", marker = "sys_platform == \'win32\'" }'),
        _package("lone-2", '{ name = "lone-1" }'),
    )
    win32 = Marker("sys_platform == 'win32'")
    assert found["a 1.0"].marker == win32
    assert found["b 1.0"].marker == win32
    assert found["c 1.0"].marker == Marker("python_version < '3.12' and sys_platform == 'win32'")
    assert found["lone-1 1.0"].marker is None
    assert found["lone-2 1.0"].marker == win32


def test_a_fork_with_two_versions_follows_each_edge_to_its_version() -> None:
    up = '{ registry = "http://127.0.0.1:1/simple/" }'
    found = _lock(
        APP + "dependencies = [\n"
        f'  {{ name = "numpy", version = "1.26.4", source = {up}, '
        "marker = \"python_full_version < '3.12'\" },\n"
        f'  {{ name = "numpy", version = "2.0.0", source = {up}, '
        "marker = \"python_full_version >= '3.12'\" },\n]\n",
        _package("numpy", '{ name = "old-helper" }', version="1.26.4",
                 extra="resolution-markers = [\"python_full_version < '3.12'\"]\n"),
        _package("numpy", version="2.0.0",
                 extra="resolution-markers = [\"python_full_version >= '3.12'\"]\n"),
        _package("old-helper"),
    )
    old, new, helper = found["numpy 1.26.4"], found["numpy 2.0.0"], found["old-helper 1.0"]
    assert (_on(old, LINUX), _on(new, LINUX), _on(helper, LINUX)) == (True, False, True)
    assert (_on(old, PY312), _on(new, PY312), _on(helper, PY312)) == (False, True, False)
    assert old.marker == Marker("python_full_version < '3.12'")


def test_groups_extras_and_roots_without_a_workspace_member() -> None:
    found = _lock(
        # no virtual/editable project: the packages nobody depends on are the roots
        _package("top", '{ name = "plain" }',
                 tail='[package.optional-dependencies]\n'
                      'win = [{ name = "win-extra", marker = "sys_platform == \'win32\'" }]\n'
                      '[package.dev-dependencies]\n'
                      'dev = [{ name = "dev-tool" }]\n'
                      'gpu = [{ name = "conflicted", marker = "extra == \'extra-3-top-gpu\'" }]\n'),
        _package("plain"),
        _package("win-extra"),
        _package("dev-tool"),
        _package("conflicted"),
    )
    assert found["top 1.0"].marker is None
    assert found["plain 1.0"].marker is None
    assert found["win-extra 1.0"].marker == Marker("sys_platform == 'win32'")
    assert found["dev-tool 1.0"].marker is None
    assert found["conflicted 1.0"].marker is None, "a marker naming `extra` counts as true"


def test_a_condition_past_the_size_limit_is_given_up_for_always() -> None:
    count = _graph.MAX_SIZE + 2
    edges = [_graph.Edge(0, n, Marker(f"platform_release == '{n}'")) for n in range(1, count)]
    edges += [_graph.Edge(n, count, None) for n in range(1, count)]
    markers = _graph.needed_markers(count + 1, [0], edges)
    assert markers[1] == Marker("platform_release == '1'")
    assert markers[count] is None


# -- poetry.lock ----------------------------------------------------------------------------

def _poetry(lock_version: str, *packages: str) -> dict[str, PinnedPackage]:
    text = "\n".join(f'[[package]]\n{p}' for p in packages) + (
        f'\n[metadata]\nlock-version = "{lock_version}"\ncontent-hash = "0"\n')
    return {f"{p.label} {p.version}": p for p in read_poetrylock(text, "poetry.lock")}


POETRY_CLICK = (
    'name = "click"\nversion = "8.1"\nfiles = []\n\n[package.dependencies]\n'
    'colorama = {version = "*", markers = "platform_system == \\"Windows\\""}\n'
)


def test_poetry_before_2_1_derives_markers_from_its_dependencies() -> None:
    found = _poetry(
        "2.0",
        POETRY_CLICK,
        'name = "colorama"\nversion = "0.4.6"\nfiles = []\n',
        'name = "app-lib"\nversion = "1.0"\nfiles = []\n\n[package.dependencies]\n'
        'click = ">=8"\nnumpy = [\n'
        '    {version = ">=1.26,<2", markers = "python_version < \\"3.12\\""},\n'
        '    {version = ">=2", markers = "python_version >= \\"3.12\\""},\n]\n',
        'name = "numpy"\nversion = "1.26.4"\nfiles = []\n',
        'name = "numpy"\nversion = "2.0.0"\nfiles = []\n',
    )
    assert found["click 8.1"].marker is None
    colorama = found["colorama 0.4.6"]
    assert not _on(colorama, LINUX) and _on(colorama, WINDOWS)
    old, new = found["numpy 1.26.4"], found["numpy 2.0.0"]
    assert (_on(old, LINUX), _on(new, LINUX), _on(old, PY312), _on(new, PY312)) == (
        True, False, False, True)


def test_poetry_2_1_markers_are_read_as_written() -> None:
    found = _poetry("2.1", POETRY_CLICK, 'name = "colorama"\nversion = "0.4.6"\nfiles = []\n')
    assert found["colorama 0.4.6"].marker is None
