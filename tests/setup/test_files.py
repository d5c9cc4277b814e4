"""Atomic writes, modes, symlinks and masked diffs."""

from __future__ import annotations

from pathlib import Path

from fromsource.setup.files import apply_change, read_text, render_diff, write_atomic
from fromsource.setup.model import Change


def test_new_secret_file_is_0600_and_folder_0700(tmp_path: Path) -> None:
    target = tmp_path / "cfg" / "pip" / "pip.conf"
    assert apply_change(Change(target, None, "x = 1\n", "test", 0o600))
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.parent.stat().st_mode & 0o777 == 0o700
    assert list(target.parent.iterdir()) == [target]  # no temporary file left


def test_existing_mode_kept_and_loose_secret_mode_fixed(tmp_path: Path) -> None:
    target = tmp_path / "requirements.txt"
    target.write_text("a\n")
    target.chmod(0o640)
    write_atomic(target, "b\n", None)
    assert target.stat().st_mode & 0o777 == 0o640 and read_text(target) == "b\n"
    netrc = tmp_path / ".netrc"
    netrc.write_text("same\n")
    netrc.chmod(0o644)
    assert apply_change(Change(netrc, "same\n", "same\n", "t", 0o600))
    assert netrc.stat().st_mode & 0o777 == 0o600
    assert not apply_change(Change(netrc, "same\n", "same\n", "t", 0o600))


def test_symlink_target_replaced_link_kept(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "netrc"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / ".netrc"
    link.symlink_to(real)
    write_atomic(link, "new\n", 0o600)
    assert link.is_symlink() and real.read_text() == "new\n"


def test_diff_masks_secrets() -> None:
    change = Change(Path("/x/.netrc"), "machine h\n", "machine h\npassword s3cret\n", "t")
    diff = render_diff(change, ("s3cret",))
    assert "s3cret" not in diff and "+password ********" in diff
    assert read_text(Path("/nonexistent/file")) is None
