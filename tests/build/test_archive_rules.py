"""Tests for fromsource.build.archive_rules: member checks as values in, verdicts out."""

from __future__ import annotations

import pytest

from fromsource.build.archive_rules import (
    EPOCH_FLOOR,
    Member,
    check_tree,
    clamp_mtime,
    epoch_of,
    split_name,
    symlink_escapes,
)
from fromsource.errors import RefusedMemberError


@pytest.mark.parametrize(
    ("name", "parts"),
    [("./pkg-1.0/a.py", ("pkg-1.0", "a.py")), ("pkg-1.0//b/", ("pkg-1.0", "b")), ("./", ())],
)
def test_split_name(name: str, parts: tuple[str, ...]) -> None:
    assert split_name(name) == parts


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a/../../x", "'..'"),
        ("/etc/x", "absolute"),
        ("C:/x", "drive letter"),
        ("a\\x", "backslash"),
        ("a\x00b", "control character"),
        ("a/" + "x" * 256, "255 bytes"),
    ],
)
def test_split_name_refuses(name: str, reason: str) -> None:
    with pytest.raises(RefusedMemberError, match=reason):
        split_name(name)


@pytest.mark.parametrize(
    ("links", "verdict"),
    [
        ({("p", "l"): "../q"}, ""),
        ({("p", "l"): "../.."}, "leaves"),
        ({("p", "d", "l"): "..", ("p", "m"): "d/l/../.."}, "leaves"),  # only through the chain
        ({("p", "a"): "b", ("p", "b"): "a"}, "loop"),
        ({("p", "a"): "/abs", ("p", "m"): "a/x"}, "absolute"),
    ],
)
def test_symlink_escapes_follows_chains(links: dict[tuple[str, ...], str], verdict: str) -> None:
    last = list(links)[-1]
    result = symlink_escapes(last, links)
    assert (verdict in result) if verdict else result == ""


def test_check_tree_maps_hardlinks_to_their_file() -> None:
    file = Member("p/a", ("p", "a"), "file", size=3)
    first = Member("p/b", ("p", "b"), "hardlink", target="p/a")
    second = Member("p/c", ("p", "c"), "hardlink", target="./p/b")
    assert check_tree([file, first, second]) == {("p", "b"): file, ("p", "c"): file}


def test_epoch_prefers_top_pkg_info() -> None:
    members = [
        Member(
            "p/src/x.egg-info/PKG-INFO",
            ("p", "src", "x.egg-info", "PKG-INFO"),
            "file",
            mtime=2_000_000_000,
        ),
        Member("p/PKG-INFO", ("p", "PKG-INFO"), "file", mtime=1_600_000_000),
        Member("p/new.py", ("p", "new.py"), "file", mtime=1_900_000_000),
    ]
    assert epoch_of(members) == 1_600_000_000
    assert epoch_of(members[2:]) == 1_900_000_000
    assert epoch_of([]) == EPOCH_FLOOR
    assert clamp_mtime(-5) == clamp_mtime(0) == EPOCH_FLOOR
