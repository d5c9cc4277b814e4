"""``fromsource demo --no-serve``: the README's first command, against the real upstream.

It builds its small real set (pure packages and markupsafe's C extension, for
every build target found) with their dependencies, creates a pull token and
prints how to point pip and uv at the index; every build must succeed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from fromsource.build.sandbox import tool_available
from fromsource.cli.demo import DEMO_PACKAGES
from fromsource.cli.main import cli

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here"),
]


def test_the_demo_builds_its_set_and_prints_how_to_use_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--data-dir", str(tmp_path / "data"), "demo", "--no-serve", "--jobs", "2"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    built = next(line for line in lines if line.startswith("Built "))
    done, total = built.split()[1], built.split()[3]
    assert done == total and int(total) >= len(DEMO_PACKAGES), result.output
    assert not [line for line in lines if line.strip().startswith("failed")], result.output
    assert "markupsafe-3.0.2-cp" in result.output and "manylinux" in result.output
    assert ":<secret>@127.0.0.1:8000/python-all/simple/ six" in result.output
