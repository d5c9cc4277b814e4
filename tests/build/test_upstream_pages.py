"""Tests for fromsource.build.upstream_pages: what a listed file is, values in, values out."""

from __future__ import annotations

import pytest
from packaging.version import Version

from fromsource.build.upstream_pages import dist_of, python_ok
from fromsource.indexclient import ProjectFile

PAGE = "https://index.invalid/simple/demo-pkg/"


def _file(name: str, requires: str | None = None) -> ProjectFile:
    return ProjectFile(name, PAGE + name, None, requires_python=requires)


@pytest.mark.parametrize(
    ("filename", "project", "kind", "version"),
    [
        ("demo_pkg-1.0.tar.gz", "Demo.Pkg", "sdist", "1.0"),
        ("demo-pkg-extra-2.0.zip", "demo-pkg-extra", "sdist", "2.0"),
        ("Demo-Pkg-1.0.post1.tar.bz2", "demo-pkg", "sdist", "1.0.post1"),
        ("demo_pkg-1.0-py3-none-any.whl", "demo-pkg", "wheel", "1.0"),
    ],
)
def test_dist_of(filename: str, project: str, kind: str, version: str) -> None:
    dist = dist_of(_file(filename), project)
    assert dist is not None and dist.kind == kind and dist.version == Version(version)


@pytest.mark.parametrize(
    "filename", ["other-1.0.tar.gz", "demo_pkg-1.0.exe", "demo_pkg-not!a!version.tar.gz"]
)
def test_dist_of_skips_foreign_files(filename: str) -> None:
    assert dist_of(_file(filename), "demo-pkg") is None


def test_python_ok() -> None:
    assert python_ok(_file("a-1.tar.gz", ">=3.8"), "3.11")
    assert not python_ok(_file("a-1.tar.gz", ">=3.8"), "2.7")
    assert python_ok(_file("a-1.tar.gz", "garbage!"), "2.7")
