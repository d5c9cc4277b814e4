"""The command runner repair uses inside the build's sandbox: paths, stdout, what it leaves."""

from __future__ import annotations

from pathlib import Path

import pytest

from fromsource.build.repairbox import SandboxCommands
from fromsource.build.sandbox import Bind, Sandbox, tool_available

pytestmark = pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")


def test_host_paths_are_mapped_stdout_is_kept_and_links_are_not_left(tmp_path: Path) -> None:
    root, out, data = tmp_path / "build", tmp_path / "out", tmp_path / "data"
    for folder in (root, out, data):
        folder.mkdir()
    (data / "input.txt").write_text("from the host\n")
    binds = [Bind(data, "/fromsource/repair/in"), Bind(out, "/fromsource/repair/out", True)]
    runner = SandboxCommands(Sandbox(root, tool="bwrap"), binds, tmp_path / "log", out / "stdout")
    script = (
        'cat "$1"; echo "on stderr" >&2; cd "$2"; echo kept > kept.txt; '
        "ln -s /etc/passwd link; mkfifo fifo"
    )
    result = runner(
        ["/bin/sh", "-c", script, "sh", str(data / "input.txt"), str(out)],
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.ok, result.stderr
    assert result.stdout == "from the host\n"  # the host path was seen inside the sandbox
    assert "on stderr" in result.stderr and "on stderr" in (tmp_path / "log").read_text()
    assert runner.inside(str(out / "x.whl")) == "/fromsource/repair/out/x.whl"
    assert runner.inside("/usr/bin/env") == "/usr/bin/env"
    assert sorted(p.name for p in out.iterdir()) == ["kept.txt", "stdout"]
