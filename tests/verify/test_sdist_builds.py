"""A package the client built from the index's sdist: still not built by the index, and said so."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fromsource.provenance.keys import SigningKey
from fromsource.provenance.source import SourceFacts, source_statement
from fromsource.provenance.statement import sign_statement
from fromsource.verify.decide import (
    LOCAL_BUILD_REASON,
    built_from_sdist,
    check_source_candidate,
)
from fromsource.verify.fetch import OfflineSource
from fromsource.verify.model import Candidate, PackageResult, Provenance, Status

DIGEST = "a" * 64
MOMENT = datetime(2025, 1, 1, tzinfo=UTC)
FACTS = SourceFacts(
    project="demo-pkg",
    version="1.0",
    repository="python",
    upstream_url="http://127.0.0.1:9/files/demo_pkg-1.0.tar.gz",
    upstream_sha256=DIGEST,
    fetched=MOMENT,
    published=MOMENT,
    invocation_id="build-7",
)
OTHER_BUILD = PackageResult("demo-pkg", "1.0", Status.NOT_BUILT, "another build is installed", ".")


def _envelope(key: SigningKey, filename: str = "demo_pkg-1.0.tar.gz") -> bytes:
    return sign_statement(source_statement(filename, DIGEST, FACTS), key)


def test_a_signed_sdist_of_that_version_restates_the_reason(signing_key: SigningKey) -> None:
    keys = {signing_key.keyid: signing_key.public}
    candidate = Candidate("demo_pkg-1.0.tar.gz", "t", _envelope(signing_key), DIGEST, "python")
    checked = check_source_candidate(candidate, keys, "Demo_Pkg", "1.0")
    assert checked.attestation is not None, checked.problem
    result = built_from_sdist(OTHER_BUILD, [checked])
    assert result.status is Status.NOT_BUILT and result.provenance is None
    assert result.details == (
        f"{LOCAL_BUILD_REASON}: demo_pkg-1.0.tar.gz, mirrored from "
        f"http://127.0.0.1:9/files/demo_pkg-1.0.tar.gz, sha256:{DIGEST}"
    )


def test_nothing_changes_without_a_valid_statement_for_this_file(signing_key: SigningKey) -> None:
    keys = {signing_key.keyid: signing_key.public}
    listed_other = Candidate("demo_pkg-1.0.tar.gz", "t", _envelope(signing_key), "b" * 64)
    wrong_file = Candidate("demo_pkg-1.0.zip", "t", _envelope(signing_key), DIGEST)
    wrong_version = Candidate("demo_pkg-1.0.tar.gz", "t", _envelope(signing_key), DIGEST)
    unsigned = Candidate("demo_pkg-1.0.tar.gz", "t", None, DIGEST, problem="no provenance")
    checks = [
        check_source_candidate(listed_other, keys, "demo-pkg", "1.0"),
        check_source_candidate(wrong_file, keys, "demo-pkg", "1.0"),
        check_source_candidate(wrong_version, keys, "demo-pkg", "1.1"),
        check_source_candidate(unsigned, keys, "demo-pkg", "1.0"),
        check_source_candidate(listed_other, {}, "demo-pkg", "1.0"),
    ]
    assert all(c.attestation is None and c.problem for c in checks)
    assert built_from_sdist(OTHER_BUILD, checks) == OTHER_BUILD
    verified = PackageResult(
        "demo-pkg",
        "1.0",
        Status.VERIFIED,
        "built",
        ".",
        Provenance("w", DIGEST, "python", "build-1", "u", DIGEST, "k"),
    )
    good = check_source_candidate(
        Candidate("demo_pkg-1.0.tar.gz", "t", _envelope(signing_key), DIGEST),
        keys,
        "demo-pkg",
        "1.0",
    )
    assert built_from_sdist(verified, [good]) == verified


def test_an_attestations_folder_holds_sdist_statements(
    signing_key: SigningKey, tmp_path: Path
) -> None:
    (tmp_path / "demo_pkg-1.0.tar.gz.dsse.json").write_bytes(_envelope(signing_key))
    (tmp_path / "notes.provenance.json").write_text("{}")
    source = OfflineSource(tmp_path, {signing_key.keyid: signing_key.public})
    (listed,) = source.sdists("demo-pkg", "1.0")
    assert listed.filename == "demo_pkg-1.0.tar.gz" and source.listing("demo-pkg", "1.0") == []
    assert source.sdists("demo-pkg", "1.1") == []
    checked = check_source_candidate(source.fetch(listed), source.trusted_keys(), "demo-pkg", "1.0")
    assert checked.attestation is not None
    assert any("notes.provenance.json" in w for w in source.warnings)
