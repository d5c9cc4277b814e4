"""Relabelling a wheel (``+fs.N``) streams its members and keeps METADATA within its cap."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from fromsource.bounded import OutputLimits
from fromsource.build.relabel import relabel_wheel
from fromsource.dist.distinfo import check_wheel
from fromsource.errors import OversizedError
from tests.factories import make_wheel


def test_a_relabelled_wheel_names_its_new_release_everywhere(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo-pkg", "1.0", files={"demo_pkg/big.bin": bytes(3 << 20)})
    out = relabel_wheel(wheel, "fs.1", tmp_path / "out")
    assert out.name == "demo_pkg-1.0+fs.1-py3-none-any.whl"
    info = check_wheel(out)  # folder, WHEEL and METADATA agree with the new filename
    assert info.folder == "demo_pkg-1.0+fs.1.dist-info" and info.version == "1.0+fs.1"
    with zipfile.ZipFile(out) as archive:
        assert archive.read("demo_pkg/big.bin") == bytes(3 << 20)


def test_caps_hold_while_relabelling(tmp_path: Path) -> None:
    bomb = make_wheel(tmp_path / "a", "demo-pkg", "1.0", requires_dist=["x" * (2 << 20)])
    with pytest.raises(OversizedError, match="METADATA"):
        relabel_wheel(bomb, "fs.1", tmp_path / "out", OutputLimits(metadata_bytes=1 << 20))
    big = make_wheel(tmp_path / "b", "demo-pkg", "1.0", files={"demo_pkg/big.bin": bytes(2 << 20)})
    with pytest.raises(OversizedError, match="decompressed"):
        relabel_wheel(big, "fs.1", tmp_path / "out", OutputLimits(wheel_bytes=1 << 20))
