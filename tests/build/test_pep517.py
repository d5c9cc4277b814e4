"""PEP 517 builds in the sandbox: build-system parsing, the environment, the hooks."""

from __future__ import annotations

import tarfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fromsource.bounded import DEFAULT_LIMITS, OutputLimits
from fromsource.build.deps import uv_binary
from fromsource.build.pep517 import (
    LEGACY_BACKEND,
    BuildEnvironment,
    BuildSystem,
    build_environ,
    read_build_system,
)
from fromsource.build.sandbox import SandboxLimits, tool_available
from fromsource.errors import DependencyError, HookError
from tests.packages import SDIST_EPOCH, make_sdist

needs_bwrap = pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")


def test_build_system_defaults_for_legacy_trees(tmp_path: Path) -> None:
    legacy = read_build_system(tmp_path)
    assert legacy.backend == LEGACY_BACKEND and not legacy.declared
    assert legacy.requires == ("setuptools>=40.8.0", "wheel")
    (tmp_path / "pyproject.toml").write_text("[tool.black]\nline-length = 80\n")
    assert read_build_system(tmp_path).backend == LEGACY_BACKEND


def test_build_system_is_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["flit_core>=3"]\nbuild-backend = "flit_core.buildapi"\n'
        'backend-path = ["."]\n'
    )
    assert read_build_system(tmp_path) == BuildSystem(
        ("flit_core>=3",), "flit_core.buildapi", (".",)
    )


@pytest.mark.parametrize(
    "text", ['[build-system]\nrequires = "setuptools"\n', "[build-system\n", "requires = [1]\n"]
)
def test_malformed_build_systems_are_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / "pyproject.toml").write_text(
        text if text.startswith("[") else "[build-system]\n" + text
    )
    with pytest.raises(DependencyError) as info:
        read_build_system(tmp_path)
    assert info.value.facts["category"] == "bad-pyproject"


def test_the_environment_is_fixed_and_complete() -> None:
    env = build_environ(
        root="/fromsource/build",
        tools="/fromsource/tools",
        epoch=1234,
        real_cc="/usr/bin/gcc",
        real_cxx="/usr/bin/g++",
        host_root=None,
    )
    assert env["SOURCE_DATE_EPOCH"] == "1234" and env["PYTHONHASHSEED"] == "0"
    assert env["LC_ALL"] == "C.UTF-8" and env["TZ"] == "UTC"
    assert env["CC"] == "/fromsource/tools/bin/cc" and env["CXX"] == "/fromsource/tools/bin/c++"
    assert env["TMPDIR"] == "/fromsource/build/tmp" and env["HOME"] == "/fromsource/build/home"
    assert env["PIP_CONFIG_FILE"] == "/dev/null"
    assert "FROMSOURCE_PREFIX_MAP" not in env
    assert (
        build_environ(root="/h", tools="/t", epoch=1, real_cc="cc", real_cxx="c++", host_root="/h")[
            "FROMSOURCE_PREFIX_MAP"
        ]
        == "/h=/fromsource/build"
    )


_LIMITS = SandboxLimits(timeout_seconds=60)


def _environment(
    tmp_path: Path,
    backend_code: str,
    limits: SandboxLimits = _LIMITS,
    output_limits: OutputLimits = DEFAULT_LIMITS,
) -> tuple[BuildEnvironment, Path]:
    sdist = make_sdist(
        tmp_path / "sdist", "demo-hooks", "1.0", "in-tree", backend_code=backend_code
    )
    env = BuildEnvironment(
        tmp_path / "work",
        tool="bwrap",
        limits=limits,
        epoch=SDIST_EPOCH,
        uv=uv_binary(),
        output_limits=output_limits,
    )
    with tarfile.open(sdist) as archive:
        archive.extractall(env.src, filter="data")
    tree = env.src / "demo_hooks-1.0"
    env.create_venv()
    return env, tree


@needs_bwrap
def test_hooks_run_in_the_sandbox_with_the_fixed_environment(tmp_path: Path) -> None:
    backend = textwrap.dedent("""\
        import os, sys, warnings
        def get_requires_for_build_wheel(config_settings=None):
            warnings.warn("a backend warning that must not reach the host")
            return ["probe==" + "|".join([os.environ["SOURCE_DATE_EPOCH"], os.getcwd(),
                    os.environ["PYTHONHASHSEED"], sys.prefix, oct(os.umask(0))])]
        """)
    env, tree = _environment(tmp_path, backend)
    (requires,) = env.get_requires(tree, read_build_system(tree))
    epoch, cwd, seed, prefix, umask = requires.removeprefix("probe==").split("|")
    assert epoch == str(SDIST_EPOCH) and seed == "0" and umask == "0o22"
    assert cwd == "/fromsource/build/src/demo_hooks-1.0"
    assert prefix == "/fromsource/build/venv"
    assert "a backend warning" in env.log_path.read_text()


@needs_bwrap
def test_a_wheel_left_as_a_link_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.whl"
    secret.write_bytes(b"host secret")
    backend = textwrap.dedent(f"""\
        import os
        def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
            os.symlink({str(secret)!r}, os.path.join(wheel_directory, "x-1.0-py3-none-any.whl"))
            return "x-1.0-py3-none-any.whl"
        """)
    env, tree = _environment(tmp_path, backend)
    with pytest.raises(HookError, match="link"):
        env.build_wheel(tree, read_build_system(tree), tmp_path / "dist")
    assert not (tmp_path / "dist" / "x-1.0-py3-none-any.whl").exists()


@needs_bwrap
def test_a_failing_hook_reports_its_output(tmp_path: Path) -> None:
    backend = "def build_wheel(*args, **kwargs):\n    raise ValueError('the backend broke')\n"
    env, tree = _environment(tmp_path, backend)
    with pytest.raises(HookError, match="the backend broke") as info:
        env.build_wheel(tree, read_build_system(tree), tmp_path / "dist")
    assert info.value.facts["category"] == "build-failed"


@needs_bwrap
def test_the_control_folder_takes_only_the_hook_result(tmp_path: Path) -> None:
    # The hook's control folder is a host temp folder (issue 18): the build may not
    # add files to it, and its one result file is held to the file-size limit.
    backend = textwrap.dedent("""\
        import os, sys
        def _write(path, size):
            try:
                with open(path, "wb") as handle:
                    for _ in range(size >> 20):
                        handle.write(bytes(1 << 20))
            except OSError as exc:
                return exc.strerror
            return "written"
        def get_requires_for_build_wheel(config_settings=None):
            control = sys.argv[-1]
            return ["extra:" + _write(os.path.join(control, "extra"), 1 << 20),
                    "result:" + _write(os.path.join(control, "output.json"), 64 << 20)]
        """)
    limits = SandboxLimits(timeout_seconds=60, max_file_bytes=8 << 20)
    env, tree = _environment(tmp_path, backend, limits)
    requires = env.get_requires(tree, read_build_system(tree))
    assert requires == ["extra:Read-only file system", "result:File too large"]


def _within(seconds: float, action: Callable[[], object]) -> BaseException | None:
    """What *action* raised; the test fails if it is still blocked after *seconds*."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the host is blocked reading the build's output"
    return raised[0] if raised else None


@needs_bwrap
def test_a_fifo_returned_as_the_wheel_is_refused_without_waiting(tmp_path: Path) -> None:
    backend = textwrap.dedent("""\
        import os
        def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
            os.mkfifo(os.path.join(wheel_directory, "x-1.0-py3-none-any.whl"))
            return "x-1.0-py3-none-any.whl"
        """)
    env, tree = _environment(tmp_path, backend)
    start = time.monotonic()
    error = _within(60, lambda: env.build_wheel(tree, read_build_system(tree), tmp_path / "dist"))
    assert isinstance(error, HookError), error
    assert "FIFO" in error.message and error.facts["category"] == "unsafe-output"
    assert time.monotonic() - start < 60
    assert not (tmp_path / "dist" / "x-1.0-py3-none-any.whl").exists()


@needs_bwrap
def test_a_fifo_left_as_the_hook_result_is_refused_without_waiting(tmp_path: Path) -> None:
    # The hook runner's control folder is its second argument; a backend that planted a
    # FIFO at output.json and exited before the runner wrote there made the host wait
    # forever in open() (issue 18).  Two defences now: the folder is read-only to the
    # build (the result file cannot be replaced), and the host opens it non-blocking and
    # refuses what is not a regular file (tests/test_bounded.py).
    backend = textwrap.dedent("""\
        import os, sys
        def get_requires_for_build_wheel(config_settings=None):
            result = os.path.join(sys.argv[2], "output.json")
            for plant in (lambda: os.unlink(result), lambda: os.mkfifo(result + ".new"),
                          lambda: os.rename(result + ".new", result)):
                try:
                    plant()
                except OSError as exc:
                    print("refused:", exc.strerror, flush=True)
            os._exit(0)
        """)
    env, tree = _environment(tmp_path, backend)
    error = _within(60, lambda: env.get_requires(tree, read_build_system(tree)))
    assert isinstance(error, HookError), error
    assert "without writing its result" in error.message
    assert env.log_path.read_text().count("refused: Read-only file system") == 3


@needs_bwrap
def test_a_hook_that_leaves_no_result_fails_with_a_reason(tmp_path: Path) -> None:
    backend = (
        "import os\ndef get_requires_for_build_wheel(config_settings=None):\n    os._exit(0)\n"
    )
    env, tree = _environment(tmp_path, backend)
    with pytest.raises(HookError, match="without writing its result") as info:
        env.get_requires(tree, read_build_system(tree))
    assert info.value.facts["category"] == "build-failed"


@needs_bwrap
def test_an_oversized_wheel_or_result_is_not_copied_out(tmp_path: Path) -> None:
    backend = textwrap.dedent("""\
        import os
        def get_requires_for_build_wheel(config_settings=None):
            return ["x" * 300_000]
        def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
            with open(os.path.join(wheel_directory, "x-1.0-py3-none-any.whl"), "wb") as f:
                f.write(b"\\0" * 300_000)
            return "x-1.0-py3-none-any.whl"
        """)
    small = OutputLimits(wheel_bytes=100_000, hook_result_bytes=100_000)
    env, tree = _environment(tmp_path, backend, output_limits=small)
    with pytest.raises(HookError, match="output.json") as info:
        env.get_requires(tree, read_build_system(tree))
    assert info.value.facts["category"] == "oversized-output"
    with pytest.raises(HookError, match="over the cap of 100000 bytes") as info:
        env.build_wheel(tree, read_build_system(tree), tmp_path / "dist")
    assert info.value.facts["category"] == "oversized-output"
    assert not (tmp_path / "dist" / "x-1.0-py3-none-any.whl").exists()
