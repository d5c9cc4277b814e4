"""The I/O side of ``setup``: read the current files, show a masked diff, write atomically.

A file is written to a temporary name in its own folder (created 0700 when
missing, as the clients create theirs), fsynced, given its mode, then renamed
over the old one: another process reading it sees the old or the new text,
never half of it, and a secret never sits in a file readable by others, not
even for a moment.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from pathlib import Path

from fromsource.errors import ConfigError
from fromsource.setup.model import Change, mask


def read_text(path: Path) -> str | None:
    """The text of *path*, or None when it does not exist.

    Raises ConfigError when it exists but cannot be read as UTF-8 text.
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}); fix it and run setup again") from exc


def render_diff(change: Change, secrets: tuple[str, ...]) -> str:
    """A unified diff of *change* with every secret replaced by ``********``."""
    before = (change.before or "").splitlines(keepends=True)
    after = change.after.splitlines(keepends=True)
    old = str(change.path) if change.before is not None else "/dev/null"
    lines = difflib.unified_diff(before, after, old, str(change.path))
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return mask(text, secrets)


def write_atomic(path: Path, text: str, mode: int | None) -> None:
    """Replace *path* with *text* atomically, with *mode* (or the old file's mode).

    A symbolic link is followed (dotfile managers link ``~/.netrc``), so the
    link stays and its target is replaced.  Raises ConfigError when the
    folder cannot be created or written.
    """
    path = path.resolve() if path.is_symlink() else path
    try:
        if not path.parent.exists():
            path.parent.mkdir(parents=True, mode=0o700)
        if mode is None:
            try:
                mode = path.stat().st_mode & 0o777
            except FileNotFoundError:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be written ({exc}); nothing was changed there") from exc


def apply_change(change: Change) -> bool:
    """Write *change* if its text differs, or fix the mode of a secret file.

    Returns whether anything on disk changed.
    """
    if change.changed:
        write_atomic(change.path, change.after, change.mode)
        return True
    if change.mode is not None and change.before is not None:
        current = change.path.stat().st_mode & 0o777
        if current != change.mode:
            os.chmod(change.path, change.mode)
            return True
    return False
