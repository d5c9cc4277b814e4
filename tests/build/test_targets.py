"""Build targets: the value, which ones are built, and "once per distinct wheel"."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
from packaging.tags import Tag

from fromsource.build.targets import (
    Target,
    assign_wheels,
    builds_target,
    covers,
    selected_targets,
    supported_targets,
    uncovered,
    wheel_kind,
    wheel_tags,
)
from fromsource.errors import TargetError


def target(version: str, *, free_threaded: bool = False, glibc: str | None = "2.36") -> Target:
    nodot = version.replace(".", "")
    return Target(
        version=version,
        full_version=f"{version}.1",
        python_tag=f"cp{nodot}",
        abi_tag=f"cp{nodot}" + ("t" if free_threaded else ""),
        platform_tag="linux_x86_64",
        interpreter=f"/opt/python{version}/bin/python{version}",
        glibc=glibc,
    )


HOST = [target(v) for v in ("3.9", "3.10", "3.11", "3.12", "3.13")] + [
    target("3.13", free_threaded=True)
]


def builds_for(name_of: Callable[[Target], str]) -> list[str]:
    """Run the matrix loop: build for the first uncovered target until none is left.

    A build for target ``t`` makes the wheel ``name_of(t)``; returns the
    wheels made, in order.
    """
    built: list[frozenset[Tag]] = []
    tried: list[Target] = []
    made: list[str] = []
    while todo := uncovered(HOST, built, tried):
        made.append(name_of(todo[0]))
        built.append(wheel_tags(made[-1]))
        tried.append(todo[0])
    return made


def test_json_round_trip_and_tag() -> None:
    t = target("3.12")
    assert t.tag == "cp312-cp312-linux_x86_64"
    assert Target.from_json(t.to_json()) == t
    free = target("3.13", free_threaded=True)
    assert (free.name, free.abi_tag, free.free_threaded) == ("3.13t", "cp313t", True)
    assert Target.from_json(free.to_json()) == free


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"version": 3.12}, "version"),
        ({"glibc": "glibc"}, "glibc"),
        ({"interpreter": None}, "interpreter"),
    ],
)
def test_from_json_names_the_malformed_field(change: dict[str, object], field: str) -> None:
    with pytest.raises(TargetError) as caught:
        Target.from_json({**target("3.12").to_json(), **change})
    assert caught.value.facts["field"] == field


def test_default_selection_is_every_cpython_from_39_without_free_threaded() -> None:
    old = target("3.8")
    chosen = selected_targets([*HOST, old], [])
    assert [t.name for t in chosen] == ["3.9", "3.10", "3.11", "3.12", "3.13"]
    assert not builds_target(old, [])


def test_setting_names_versions_abi_tags_or_whole_tags() -> None:
    chosen = selected_targets(HOST, ["3.12", "cp313t", "cp310-cp310-linux_x86_64", "3.99"])
    assert [t.name for t in chosen] == ["3.10", "3.12", "3.13t"]


def test_requires_python_picks_the_targets_a_release_supports() -> None:
    assert [t.name for t in supported_targets(">=3.10,<3.13", HOST)] == ["3.10", "3.11", "3.12"]
    # judged by the full version, as pip on that interpreter does
    assert [t.name for t in supported_targets("!=3.12.1", HOST)] == [
        "3.9",
        "3.10",
        "3.11",
        "3.13",
        "3.13t",
    ]
    assert len(supported_targets(None, HOST)) == len(HOST)
    assert len(supported_targets("not a specifier", HOST)) == len(HOST)  # pip ignores it too
    rc = dataclasses.replace(target("3.13"), full_version="3.13.0rc1")
    assert supported_targets(">=3.13", [rc]) == (rc,)


@pytest.mark.parametrize(
    ("filename", "kind"),
    [
        ("p-1.0-py3-none-any.whl", "pure"),
        ("p-1.0-py2.py3-none-any.whl", "pure"),
        ("p-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "abi3"),
        ("p-1.0-cp312-cp312-linux_x86_64.whl", "extension"),
        ("p-1.0-py3-none-linux_x86_64.whl", "extension"),  # a bundled binary, no Python ABI
    ],
)
def test_wheel_kind(filename: str, kind: str) -> None:
    assert wheel_kind(wheel_tags(filename)) == kind


def test_pure_wheel_is_built_once_whatever_the_number_of_targets() -> None:
    assert builds_for(lambda t: "p-1.0-py3-none-any.whl") == ["p-1.0-py3-none-any.whl"]


def test_abi3_wheel_is_built_once_with_the_oldest_interpreter() -> None:
    # setuptools builds the stable ABI where it can; a free-threaded interpreter cannot
    # load it (PEP 703), so there the same package builds a version-specific wheel
    def name_of(t: Target) -> str:
        abi = t.abi_tag if t.free_threaded else "abi3"
        return f"p-1.0-{t.python_tag}-{abi}-linux_x86_64.whl"

    assert builds_for(name_of) == [
        "p-1.0-cp39-abi3-linux_x86_64.whl",
        "p-1.0-cp313-cp313t-linux_x86_64.whl",
    ]


def test_extension_wheel_is_built_once_per_interpreter() -> None:
    made = builds_for(lambda t: f"p-1.0-{t.python_tag}-{t.abi_tag}-linux_x86_64.whl")
    assert [m.split("-")[3] for m in made] == ["cp39", "cp310", "cp311", "cp312", "cp313", "cp313t"]


def test_a_build_whose_wheel_misses_its_own_target_is_not_repeated() -> None:
    # e.g. a backend that tags the wheel for a newer glibc than the host's
    made = builds_for(lambda t: f"p-1.0-{t.python_tag}-{t.abi_tag}-manylinux_2_99_x86_64.whl")
    assert len(made) == len(HOST)


def test_manylinux_tags_cover_targets_with_a_new_enough_glibc() -> None:
    t = target("3.12")  # glibc 2.36
    assert covers(wheel_tags("p-1.0-cp312-cp312-manylinux_2_28_x86_64.whl"), t)
    assert covers(wheel_tags("p-1.0-cp312-cp312-manylinux2014_x86_64.whl"), t)
    assert not covers(wheel_tags("p-1.0-cp312-cp312-manylinux_2_39_x86_64.whl"), t)
    assert not covers(wheel_tags("p-1.0-cp312-cp312-linux_x86_64.whl"), target("3.11"))
    # no glibc (musl): only the plain linux tag
    assert not covers(
        wheel_tags("p-1.0-cp312-cp312-manylinux_2_17_x86_64.whl"), target("3.12", glibc=None)
    )


def test_assign_wheels_gives_each_target_the_wheel_pip_would_pick() -> None:
    wheels = [
        "p-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "p-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        "p-1.0.tar.gz",
    ]
    assigned = assign_wheels(HOST, wheels)
    assert assigned["cp312-cp312-linux_x86_64"] == wheels[1]
    assert assigned["cp39-cp39-linux_x86_64"] == wheels[0]
    assert assigned["cp313-cp313-linux_x86_64"] == wheels[0]
    assert assigned["cp313-cp313t-linux_x86_64"] is None
