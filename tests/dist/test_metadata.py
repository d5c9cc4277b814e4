"""The one core-metadata reader: lenient over real-world files, strict only where asked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fromsource.dist.metadata import CoreMetadata, parse_metadata, requires_dist
from fromsource.errors import InvalidDistributionError

# PKG-INFO as distutils wrote it (metadata 1.0): the description is a header
# whose continuation lines carry 8 spaces and a bar.
V1_0 = b"""Metadata-Version: 1.0
Name: Old.Pkg
Version: 0.9
Summary: An old package
Home-page: UNKNOWN
Author: Someone
License: UNKNOWN
Description: First line.
        |
        |Second paragraph.
Platform: UNKNOWN
"""

# 1.1: classifiers no list knows and Requires (not Requires-Dist); no Summary.
V1_1 = b"""Metadata-Version: 1.1
Name: mid_pkg
Version: 2.0
Classifier: Not A :: Real :: Classifier
Classifier: Programming Language :: Python
Requires: os
"""

V1_2 = b"""Metadata-Version: 1.2
Name: pkg12
Version: 1.2.3
Requires-Python: >=2.7, !=3.0.*
Requires-Dist: six (>=1.0)
"""

# 2.1: description in the body, extras and markers.
V2_1 = b"""Metadata-Version: 2.1
Name: Demo-Pkg
Version: 1.0.post1
Summary: A demo
Requires-Python: >=3.8
Provides-Extra: test
Requires-Dist: requests[socks,security] (>=2.0) ; python_version >= "3.8"
Requires-Dist: pytest>=7; extra == "test"
Requires-Dist: colorama; sys_platform == "win32" and extra == 'cli'
Description-Content-Type: text/markdown

# Demo

A body description
over several lines.
"""

V2_4 = b"""Metadata-Version: 2.4
Name: new-pkg
Version: 3.0
License-Expression: MIT OR Apache-2.0
License-File: LICENSE
Dynamic: Requires-Dist
Requires-Dist: attrs>=23
"""


def test_metadata_1_0_with_a_folded_description() -> None:
    meta = parse_metadata(V1_0)
    assert (meta.metadata_version, meta.name, meta.version) == ("1.0", "Old.Pkg", "0.9")
    assert meta.summary == "An old package"
    assert meta.description == "First line.\n        |\n        |Second paragraph."
    assert meta.requires_dist == () and meta.requires_python is None


def test_metadata_1_1_without_summary_and_with_unknown_classifiers() -> None:
    meta = parse_metadata(V1_1)
    assert (meta.name, meta.version, meta.summary) == ("mid_pkg", "2.0", None)
    assert meta.requires_dist == ()
    assert meta.release("PKG-INFO") == ("mid_pkg", "2.0")


def test_metadata_1_2_requires_python_and_old_style_requires_dist() -> None:
    meta = parse_metadata(V1_2)
    assert meta.requires_python == ">=2.7, !=3.0.*"
    assert meta.requires_dist == ("six (>=1.0)",)


def test_metadata_2_1_body_description_extras_and_markers() -> None:
    meta = parse_metadata(V2_1)
    assert (meta.name, meta.version, meta.summary) == ("Demo-Pkg", "1.0.post1", "A demo")
    assert meta.description == "# Demo\n\nA body description\nover several lines.\n"
    assert meta.provides_extra == ("test",)
    # As written and in file order: what the resolver is handed.
    assert meta.requires_dist == (
        'requests[socks,security] (>=2.0) ; python_version >= "3.8"',
        'pytest>=7; extra == "test"',
        "colorama; sys_platform == \"win32\" and extra == 'cli'",
    )
    assert requires_dist(V2_1) == meta.requires_dist


def test_metadata_2_4_fields_are_read_and_kept_apart_from_the_ones_we_use() -> None:
    meta = parse_metadata(V2_4)
    assert (meta.metadata_version, meta.name, meta.version) == ("2.4", "new-pkg", "3.0")
    assert meta.requires_dist == ("attrs>=23",)
    assert meta.unparsed == {}


def test_unknown_fields_land_in_unparsed() -> None:
    meta = parse_metadata(b"Name: a\nVersion: 1\nX-Custom: yes\nX-Custom: again\n")
    assert meta.unparsed == {"x-custom": ("yes", "again")}


def test_headers_only_leaves_the_body_unread_and_agrees_on_the_headers() -> None:
    full, head = parse_metadata(V2_1), parse_metadata(V2_1, headers_only=True)
    assert head.description is None
    assert head == CoreMetadata(**{**full.__dict__, "description": None})


def test_crlf_line_endings() -> None:
    data = V2_1.replace(b"\n", b"\r\n")
    meta = parse_metadata(data, headers_only=True)
    assert (meta.name, meta.version, len(meta.requires_dist)) == ("Demo-Pkg", "1.0.post1", 3)
    assert (
        parse_metadata(data).description
        == "# Demo\r\n\r\nA body description\r\nover several lines.\r\n"
    )


def test_bytes_that_are_not_utf8_do_not_stop_the_read() -> None:
    data = b"Metadata-Version: 2.1\nName: ok-pkg\nVersion: 1.0\nSummary: caf\xe9\n\nbody \xff\n"
    meta = parse_metadata(data)
    assert (meta.name, meta.version) == ("ok-pkg", "1.0")
    # The Summary is read as Latin-1 and kept in unparsed; the body with a replacement.
    assert meta.summary == "café" and meta.unparsed["summary"] == ("café",)
    assert meta.description == "body \ufffd\n"


def test_surrounding_whitespace_is_dropped_from_name_version_and_requires_python() -> None:
    meta = parse_metadata(b"Name:   spaced  \nVersion: 1.0 \t\nRequires-Python:  >=3.9 \n")
    assert (meta.name, meta.version, meta.requires_python) == ("spaced", "1.0", ">=3.9")


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"Metadata-Version: 2.1\nVersion: 1.0\n", "no Name field"),
        (b"Metadata-Version: 2.1\nName: a\n", "no Version field"),
        (b"Name: a\nVersion:   \n", "no Version field"),
        (b"", "no Name field; no Version field"),
        (b"Name: a\nName: b\nVersion: 1\n", "Name is given 2 times with different values"),
    ],
)
def test_release_refuses_a_missing_or_ambiguous_name_or_version(data: bytes, detail: str) -> None:
    with pytest.raises(InvalidDistributionError) as info:
        parse_metadata(data).release("x-1.0.dist-info/METADATA")
    assert info.value.message.startswith("x-1.0.dist-info/METADATA lacks Name or Version (")
    assert detail in info.value.message


def test_a_field_repeated_with_the_same_value_is_that_value() -> None:
    meta = parse_metadata(b"Name: same\nName: same\nVersion: 1\n")
    assert meta.release("PKG-INFO") == ("same", "1")


def test_release_returns_the_version_as_written() -> None:
    # Whether it is PEP 440 is the caller's question (the builder refuses, verify reports).
    assert parse_metadata(b"Name: a\nVersion: not-a-version\n").release("M") == (
        "a",
        "not-a-version",
    )


@given(st.binary(max_size=400))
def test_any_bytes_are_read_without_raising(data: bytes) -> None:
    meta = parse_metadata(data)
    assert parse_metadata(data, headers_only=True).name in (meta.name, None)
    assert all(isinstance(line, str) for line in meta.requires_dist)
