"""Failure categories and their one-line reasons (pure)."""

from __future__ import annotations

import pytest

from fromsource.build.outcome import CATEGORIES, REMEMBERED, categorize, explain
from fromsource.errors import BuildError, CrateError, HookError, UpstreamError

_RUST_LOG = "running build_rust\nerror: can't find Rust compiler\n\nIf you are using pip..."


def _failed(log: str, requirements: tuple[str, ...] = ()) -> tuple[str, str]:
    exc = HookError("build_wheel failed with exit status 1", category="build-failed")
    category = categorize(exc, log, requirements)
    return category, explain(category, log, requirements)


def test_a_build_that_found_no_rust_compiler_needs_rust_with_its_evidence() -> None:
    category, reason = _failed(_RUST_LOG, ("setuptools>=45", "setuptools-rust>=1.7"))
    assert category == "needs-rust"
    assert "setuptools-rust" in reason and "can't find Rust compiler" in reason
    assert "no Rust toolchain" in reason and "Cargo.lock" in reason


def test_a_rust_build_that_fails_to_compile_is_a_build_failure_not_needs_rust() -> None:
    log = (
        "   Compiling tinyadd v0.1.0\nerror[E0425]: cannot find value `b` in this scope\n"
        "error: could not compile `rustadd` (lib) due to 1 previous error\n"
        "cargo rustc --lib failed with code 101\n"
    )
    assert _failed(log, ("maturin>=1,<2",)) == ("build-failed", "")


@pytest.mark.parametrize(
    ("line", "label"),
    [
        ("error: failed to download `serde v1.0.210`", "serde 1.0.210"),
        ("error: no matching package named `serde` found", "serde"),
        ("error: failed to get `serde` as a dependency of package `demo v0.1.0`", "serde"),
        (
            "error: attempting to make an HTTP request, but --offline was specified",
            "the crates it needed",
        ),
    ],
)
def test_cargo_asking_for_a_crate_is_crates_unavailable_named(line: str, label: str) -> None:
    category, reason = _failed(f"running cargo\n{line}\n", ("maturin>=1",))
    assert category == "crates-unavailable"
    assert reason.startswith(f"crates-unavailable: {label}: ")


def test_a_lock_cargo_would_change_is_unlocked_crates() -> None:
    log = (
        "error: the lock file /fromsource/build/src/demo-1.0/Cargo.lock needs to be updated "
        "but --locked was passed to prevent this\n"
    )
    category, reason = _failed(log, ("maturin>=1",))
    assert category == "unlocked-crates"
    assert reason.startswith("unlocked-crates: a Cargo.lock of the sdist does not match")


def test_the_crate_categories_of_the_error_win_over_the_log() -> None:
    exc = CrateError(
        "crates-unavailable: tinyadd 0.1.0: pinned by Cargo.lock but not in the blob store",
        category="crates-unavailable",
    )
    assert categorize(exc, _RUST_LOG, ("maturin",)) == "crates-unavailable"
    assert explain("crates-unavailable", "== deps\n", ("maturin",)) == ""


@pytest.mark.parametrize(
    ("log", "named", "debian"),
    [
        (
            "src/lxml/etree.c:96:10: fatal error: libxml/xmlversion.h: No such file or directory",
            "libxml/xmlversion.h",
            "libxml2-dev",
        ),
        ("Package libffi was not found in the pkg-config search path.", "libffi", "libffi-dev"),
        ("/usr/bin/ld: cannot find -lpq: No such file or directory", "pq", "libpq-dev"),
        ("Error: pg_config executable not found.", "pg_config", "libpq-dev"),
        ("fatal error: yaml.h: No such file or directory", "yaml.h", "libyaml-dev"),
        ("fatal error: foo/bar.h: No such file or directory", "foo/bar.h", None),
    ],
)
def test_missing_system_libraries_are_named(log: str, named: str, debian: str | None) -> None:
    category, reason = _failed(f"compiling\n{log}\nerror: command failed")
    assert category == "missing-system-library"
    assert f"{named} is not installed" in reason
    if debian:
        assert reason.endswith(f"install the Debian package {debian}")
    else:
        assert "Debian" not in reason


def test_a_plain_failure_has_no_extra_reason() -> None:
    category, reason = _failed("Traceback ...\nSystemExit: setup.py refuses")
    assert (category, reason) == ("build-failed", "")


def test_a_category_set_on_the_error_wins() -> None:
    exc = UpstreamError("gone", category="no-sdist")
    assert categorize(exc, _RUST_LOG) == "no-sdist"
    assert categorize(BuildError("x"), "") == "build-failed"
    assert categorize(ValueError("bug")) == "internal"


def test_remembered_categories_are_categories() -> None:
    assert set(REMEMBERED) <= set(CATEGORIES)
    assert not {"timeout", "out-of-memory", "missing-system-library", "internal"} & REMEMBERED


@pytest.mark.parametrize(
    ("log", "path"),
    [
        ("PermissionError: [Errno 13] Permission denied: '/fromsource/x.h'", "/fromsource/x.h"),
        ("cc1: fatal error: clib/helper.c: Permission denied", "clib/helper.c"),
        ("/usr/bin/ld: cannot open output file build/x.so: Permission denied", "build/x.so"),
        ("sh: 1: cannot create /opt/probe.txt: Permission denied", "/opt/probe.txt"),
        ("mkdir: cannot create directory '/opt/gen': Permission denied", "/opt/gen"),
        ("ar: build/libhelper.a: Permission denied", "build/libhelper.a"),
    ],
)
def test_a_path_denied_in_the_sandbox_is_named(log: str, path: str) -> None:
    category, reason = _failed(f"running build_clib\nbuilding 'helper' library\n{log}\n")
    assert category == "sandbox-permission-denied"
    assert f"permission denied inside the sandbox on {path}:" in reason


def test_a_denial_without_a_path_says_so() -> None:
    # What setuptools prints for a multiprocessing pool that cannot make its semaphore.
    category, reason = _failed("building 'helper' library\nerror: [Errno 13] Permission denied\n")
    assert category == "sandbox-permission-denied"
    assert "a path the log does not name" in reason
    traceback = '  File "/usr/lib/python3.11/multiprocessing/synchronize.py", line 57\n'
    _, reason = _failed(traceback + "PermissionError: [Errno 13] Permission denied\n")
    assert "semaphore in /dev/shm" in reason


def test_a_word_before_the_denial_is_not_a_path() -> None:
    category, reason = _failed("Error: Permission denied\nerror: [Errno 13] Permission denied\n")
    assert category == "sandbox-permission-denied"
    assert "a path the log does not name" in reason


def test_only_a_denial_near_the_end_counts() -> None:
    early = "ls: cannot open directory '/root': Permission denied\n" + "compiling\n" * 200
    category, _ = _failed(early + "error: command 'gcc' failed with exit code 1\n")
    assert category == "build-failed"
    assert "sandbox-permission-denied" not in REMEMBERED  # the sandbox's doing: retried
