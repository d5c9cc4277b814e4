"""The compiler wrapper's flags (pure) and its effect on a real compile."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fromsource.build import ccwrap
from fromsource.build.ccwrap import FIXED_TEMP_NAME, random_dirs, real_compiler, wrapped_args


def test_cwd_map_comes_last() -> None:
    args = wrapped_args(["-c", "a.c"], "/srv/src", "/fromsource/build/tmp")
    assert args[:2] == ["-c", "a.c"]
    assert args[-1] == "-ffile-prefix-map=/srv/src=."


def test_random_temp_dirs_are_mapped_to_a_fixed_name() -> None:
    tmp = "/fromsource/build/tmp"
    args = wrapped_args(
        [f"-I{tmp}/tmpab12/include", "-c", f"{tmp}/tmpab12/x.c", "-I/tmp/xyz/inc"],
        f"{tmp}/tmpab12",
        tmp,
    )
    assert f"-ffile-prefix-map={tmp}/tmpab12={tmp}/{FIXED_TEMP_NAME}" in args
    assert f"-ffile-prefix-map=/tmp/xyz=/tmp/{FIXED_TEMP_NAME}" in args
    assert args[-1] == f"-ffile-prefix-map={tmp}/tmpab12=."


def test_paths_merely_containing_tmp_are_not_temp_dirs() -> None:
    assert random_dirs(["-I/fromsource/build/tmp/a/b", "/srv/tmp/x"], ["/tmp"]) == []
    assert random_dirs(["-DX=/tmp/q/r"], ["/tmp"]) == ["/tmp/q"]


def test_host_prefix_map_goes_first() -> None:
    args = wrapped_args(["-c", "a.c"], "/h/src", None, "/h=/fromsource/build")
    assert args[2] == "-ffile-prefix-map=/h=/fromsource/build"


def test_real_compiler_by_name() -> None:
    env = {"FROMSOURCE_REAL_CC": "/usr/bin/gcc", "FROMSOURCE_REAL_CXX": "/usr/bin/g++"}
    assert real_compiler("/tools/bin/cc", env) == "/usr/bin/gcc"
    assert real_compiler("/tools/bin/c++", env) == "/usr/bin/g++"
    assert real_compiler("gcc", {}) == "gcc"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler")
def test_file_macro_is_rewritten(tmp_path: Path) -> None:
    random = tmp_path / "tmpq1w2e3"
    random.mkdir()
    (random / "x.c").write_text("const char *where = __FILE__;\n")
    wrapper = tmp_path / "cc"
    wrapper.write_text(f"#!{sys.executable} -IS\n" + Path(ccwrap.__file__).read_text())
    wrapper.chmod(0o755)
    env = {"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path), "FROMSOURCE_REAL_CC": "gcc"}
    subprocess.run(
        [str(wrapper), "-E", str(random / "x.c"), "-o", str(tmp_path / "x.i")],
        cwd=tmp_path,
        env=env,
        check=True,
    )
    text = (tmp_path / "x.i").read_text()
    assert str(random) not in text.split("where")[-1]
    assert "./tmpq1w2e3/x.c" in text or f"{FIXED_TEMP_NAME}/x.c" in text
