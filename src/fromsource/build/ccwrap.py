"""The compiler wrapper set as CC and CXX inside the build sandbox.

Debug info (``-g``, this Python's default) and ``__FILE__`` hold the paths
a compiler was given; some backends copy the sources into a randomly named
temporary directory before compiling, so those paths differ between two
builds.  The wrapper adds ``-ffile-prefix-map=<dir>=<fixed>`` for every
directory directly under a temporary root (``$TMPDIR``, ``/tmp``,
``/var/tmp``) that appears in its arguments or working directory, and
``-ffile-prefix-map=$PWD=.`` as the very last flag (gcc applies the last map
that matches), then execs the real compiler.  This is the recipe of
``../shared/corpus/README.md`` that made extension wheels reproducible.

This file is copied into the sandbox as an executable script run by the
base Python with ``-I -S``: it imports only the standard library.  The real
compilers come from ``FROMSOURCE_REAL_CC`` / ``FROMSOURCE_REAL_CXX``; the
wrapper's name (``cc``, ``gcc``, ``c++``, ``g++``) says which one.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence

FIXED_TEMP_NAME = "fromsource-tmp"
"""What every random temporary directory is mapped to (under its own root)."""

CXX_NAMES = frozenset({"c++", "g++", "cxx", "clang++"})
_SPLIT = re.compile(r"[=:;,\s'\"]+")


def temp_roots(tmpdir: str | None) -> tuple[str, ...]:
    """The temporary roots whose direct children count as randomly named."""
    roots = [tmpdir.rstrip("/")] if tmpdir and tmpdir.strip("/") else []
    roots += [r for r in ("/tmp", "/var/tmp") if r not in roots]
    return tuple(roots)


def random_dirs(texts: Sequence[str], roots: Sequence[str]) -> list[str]:
    """Directories directly under one of *roots* named in *texts*, in first-seen order.

    A text is split at ``= : ; ,`` and whitespace; in each piece the path
    starts at its first ``/`` (so ``-I/tmp/x`` names ``/tmp/x``, while
    ``/build/tmp/x`` is not under ``/tmp``).
    """
    found: list[str] = []
    for text in texts:
        for piece in _SPLIT.split(text):
            slash = piece.find("/")
            if slash < 0:
                continue
            path = piece[slash:]
            for root in roots:
                if path.startswith(root + "/"):
                    name = path[len(root) + 1 :].split("/", 1)[0]
                    directory = f"{root}/{name}"
                    if name and name != FIXED_TEMP_NAME and directory not in found:
                        found.append(directory)
    return found


def wrapped_args(
    args: Sequence[str], cwd: str, tmpdir: str | None, prefix_map: str | None = None
) -> list[str]:
    """*args* plus the prefix maps; ``-ffile-prefix-map=<cwd>=.`` comes last.

    *prefix_map* (``old=new``, from ``FROMSOURCE_PREFIX_MAP``) maps a host
    build tree onto the fixed path when the sandbox could not bind one.
    """
    roots = temp_roots(tmpdir)
    extra = [f"-ffile-prefix-map={prefix_map}"] if prefix_map and "=" in prefix_map else []
    for directory in random_dirs([*args, cwd], roots):
        root = directory.rsplit("/", 1)[0]
        extra.append(f"-ffile-prefix-map={directory}={root}/{FIXED_TEMP_NAME}")
    return [*args, *extra, f"-ffile-prefix-map={cwd}=."]


def real_compiler(invoked_as: str, environ: dict[str, str]) -> str:
    """The compiler to exec for a wrapper called *invoked_as*."""
    name = os.path.basename(invoked_as)
    if name in CXX_NAMES:
        return environ.get("FROMSOURCE_REAL_CXX") or "g++"
    return environ.get("FROMSOURCE_REAL_CC") or "gcc"


def main() -> None:
    """Exec the real compiler with the prefix maps added."""
    environ = dict(os.environ)
    compiler = real_compiler(sys.argv[0], environ)
    args = wrapped_args(
        sys.argv[1:], os.getcwd(), environ.get("TMPDIR"), environ.get("FROMSOURCE_PREFIX_MAP")
    )
    try:
        os.execvp(compiler, [compiler, *args])
    except OSError as exc:
        sys.stderr.write(f"fromsource compiler wrapper: cannot run {compiler}: {exc}\n")
        sys.exit(127)


if __name__ == "__main__":
    main()
