"""Tests for fromsource.dist.record: RECORD parsing, rendering and digest conversion."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fromsource.dist.record import (
    RecordEntry,
    hex_from_record_hash,
    is_record_path,
    parse_record,
    record_hash,
    render_record,
)
from fromsource.errors import InvalidDistributionError

EMPTY_HEX = hashlib.sha256(b"").hexdigest()
EMPTY_RECORD_HASH = "sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"

CANONICAL = (
    f"demo/__init__.py,{EMPTY_RECORD_HASH},0\n"
    f'"demo/a,b.py",{EMPTY_RECORD_HASH},0\n'
    f"demo-1.0.dist-info/METADATA,{EMPTY_RECORD_HASH},0\n"
    "demo-1.0.dist-info/RECORD,,\n"
)


def test_record_hash_known_vector() -> None:
    assert record_hash(EMPTY_HEX) == EMPTY_RECORD_HASH
    assert hex_from_record_hash(EMPTY_RECORD_HASH) == EMPTY_HEX


@given(st.binary(min_size=32, max_size=32))
def test_record_hash_round_trip(raw: bytes) -> None:
    assert hex_from_record_hash(record_hash(raw.hex())) == raw.hex()


@pytest.mark.parametrize(
    "bad",
    ["md5=1B2M2Y8AsgTpgAmY7PhCfg", "sha256", "sha256=abc", "sha256=!!!!", EMPTY_RECORD_HASH + "A"],
)
def test_hex_from_record_hash_rejects(bad: str) -> None:
    with pytest.raises(InvalidDistributionError):
        hex_from_record_hash(bad)


def test_record_hash_rejects_non_hex() -> None:
    with pytest.raises(InvalidDistributionError):
        record_hash("xyz")


def test_parse_render_round_trip() -> None:
    entries = parse_record(CANONICAL)
    assert entries == [
        RecordEntry("demo/__init__.py", EMPTY_HEX, 0),
        RecordEntry("demo/a,b.py", EMPTY_HEX, 0),
        RecordEntry("demo-1.0.dist-info/METADATA", EMPTY_HEX, 0),
        RecordEntry("demo-1.0.dist-info/RECORD", None, None),
    ]
    assert render_record(entries) == CANONICAL
    assert parse_record(render_record(entries)) == entries


def test_render_moves_record_last_and_derives_its_path() -> None:
    record = RecordEntry("demo-1.0.dist-info/RECORD", None, None)
    files = [RecordEntry("demo/__init__.py", EMPTY_HEX, 0)]
    assert render_record([record, *files]).splitlines()[-1] == "demo-1.0.dist-info/RECORD,,"
    derived = render_record([*files, RecordEntry("demo-1.0.dist-info/WHEEL", EMPTY_HEX, 0)])
    assert derived.splitlines()[-1] == "demo-1.0.dist-info/RECORD,,"
    with pytest.raises(InvalidDistributionError):
        render_record(files)


def test_parse_accepts_installed_record_forms() -> None:
    text = "../../../bin/demo,,\ndemo/__pycache__/x.cpython-311.pyc,,\r\n\n"
    assert parse_record(text) == [
        RecordEntry("../../../bin/demo", None, None),
        RecordEntry("demo/__pycache__/x.cpython-311.pyc", None, None),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "a,b\n",
        f"a,{EMPTY_RECORD_HASH},0,extra\n",
        f",{EMPTY_RECORD_HASH},0\n",
        "a,md5=1B2M2Y8AsgTpgAmY7PhCfg,0\n",
        f"a,{EMPTY_RECORD_HASH},-1\n",
        f"a,{EMPTY_RECORD_HASH},ten\n",
        f"a,{EMPTY_RECORD_HASH},0\na,{EMPTY_RECORD_HASH},0\n",
    ],
)
def test_parse_rejects_bad_rows(text: str) -> None:
    with pytest.raises(InvalidDistributionError):
        parse_record(text)


def test_is_record_path() -> None:
    assert is_record_path("demo-1.0.dist-info/RECORD")
    assert not is_record_path("demo/RECORD")
    assert not is_record_path("x/demo-1.0.dist-info/RECORD")
    assert not is_record_path("RECORD")
