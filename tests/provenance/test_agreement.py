"""The ``internalParameters.agreement`` entry: written, read back, checked, documented."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fromsource.dist.record import RecordEntry
from fromsource.errors import ProvenanceError
from fromsource.provenance.agreement import AgreeingBuild, Agreement, Override, parse_agreement
from fromsource.provenance.statement import (
    BuildFacts,
    build_statement,
    parse_statement,
    statement_bytes,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "attestations.md"
SUBJECT = "a" * 64
START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
WHEEL = "demo-1.0-py3-none-any.whl"
RECORD = [RecordEntry("demo/__init__.py", "1" * 64, 10)]
FACTS = BuildFacts(
    project="demo",
    version="1.0",
    repository="python",
    sdist_url="http://127.0.0.1:9/files/demo-1.0.tar.gz",
    sdist_sha256="3" * 64,
    patches=(),
    dependencies=(),
    build_key="f" * 64,
    python="3.11.7",
    platform="linux-x86_64",
    source_date_epoch=1_620_000_000,
    sandbox={"isolated": True},
    invocation_id="build-2",
    started=START,
    finished=START + timedelta(seconds=3),
)


def _build(number: int, digest: str = SUBJECT) -> AgreeingBuild:
    return AgreeingBuild(
        invocation_id=f"build-{number}",
        worker=f"worker@host-{number}:{100 + number}",
        started=START,
        finished=START + timedelta(seconds=number),
        wheel_sha256=digest,
        build_key="f" * 64,
        builder_id="urn:fromsource:builder",
        builder_version="0.1.0",
        sandbox={"variant": number - 1, "build_uid": None},
    )


AGREED = Agreement(required=2, builds=(_build(1), _build(2)), agreed=True)


def _statement(agreement: Agreement) -> dict[str, Any]:
    return build_statement(WHEEL, SUBJECT, RECORD, dataclasses.replace(FACTS, agreement=agreement))


def test_both_builds_are_in_the_statement_and_read_back() -> None:
    statement = _statement(AGREED)
    entry = statement["predicate"]["buildDefinition"]["internalParameters"]["agreement"]
    assert entry["agreed"] is True and [b["invocationId"] for b in entry["builds"]] == [
        "build-1",
        "build-2",
    ]
    assert entry["builds"][1]["worker"] == "worker@host-2:102"
    assert entry["builds"][0]["startedOn"] == "2026-01-02T03:04:05Z"
    parsed = parse_statement(statement_bytes(statement)).agreement
    assert parsed == AGREED
    assert parsed.summary() == (
        "2 independent builds agreed (build-1 on worker@host-1:101, build-2 on worker@host-2:102)"
    )
    assert parsed.summary(workers=False) == "2 independent builds agreed (build-1, build-2)"
    # A statement without the entry: one build published alone.
    assert (
        parse_statement(statement_bytes(build_statement(WHEEL, SUBJECT, RECORD, FACTS))).agreement
        is None
    )


def test_an_override_is_recorded_and_never_reads_as_an_agreement() -> None:
    override = Override("published with --publish-irreproducible", "build@laptop:1", ("m.py",))
    forced = Agreement(2, (_build(1, "b" * 64), _build(2)), agreed=False, override=override)
    parsed = parse_statement(statement_bytes(_statement(forced))).agreement
    assert parsed == forced
    assert "did NOT agree" in parsed.summary() and "m.py" in parsed.summary()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e["builds"][0]["wheel"].update(sha256="b" * 64), "made another wheel"),
        (lambda e: e.update(agreed=False), "without the override"),
        (lambda e: e.update(agreed="yes"), "agreed is not true or false"),
        (lambda e: e["builds"][1].pop("worker"), "worker is missing"),
    ],
)
def test_an_inconsistent_entry_is_refused(change: Any, message: str) -> None:
    entry = AGREED.to_json()
    change(entry)
    with pytest.raises(ProvenanceError, match=message):
        parse_agreement(entry, "agreement", SUBJECT)


def test_doc_example_has_the_shape_the_code_produces() -> None:
    blocks = re.findall(r"```json\n(.*?)\n```", DOC.read_text(), re.DOTALL)
    (example,) = [json.loads(b) for b in blocks if '"required"' in b]
    override = Override("why", "who", ("a",))
    produced = dataclasses.replace(AGREED, override=override).to_json()

    def shape(value: object) -> object:
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shape(value[0])] if value else []
        return None

    assert shape(example) == shape(produced)
