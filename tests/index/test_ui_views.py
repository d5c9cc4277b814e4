"""The web UI's pure views: search, versions, provenance checks, SBOM summary, fixes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fromsource.dist.names import ProjectName, Sha256
from fromsource.dist.record import RecordEntry
from fromsource.index.ui_views import (
    LOG_LIMIT,
    build_view,
    fixed_advisories,
    group_versions,
    human_size,
    provenance_view,
    sbom_view,
    search,
)
from fromsource.provenance.keys import SigningKey, key_id
from fromsource.provenance.pep740 import to_pep740
from fromsource.provenance.sbom import SbomInput, build_sbom
from fromsource.provenance.statement import BuildFacts, PatchInfo, build_statement, sign_statement
from fromsource.remediate.osv import parse_advisory
from fromsource.store.catalog import FileInfo

T = datetime(2025, 1, 1, tzinfo=UTC)


def _file(version: str, filename: str | None = None, **kw: object) -> FileInfo:
    values: dict[str, object] = {
        "id": 1, "repo": "python", "project": ProjectName("demo"), "version": version,
        "filename": filename or f"demo-{version}-py3-none-any.whl", "kind": "wheel", "sha256": Sha256("a" * 64),
        "size": 2048, "requires_python": None, "yanked": False, "yanked_reason": None, "metadata_sha256": None,
        "provenance_sha256": None, "sbom_sha256": None, "build_id": None, "upload_time": T,
    }
    values.update(kw)
    return FileInfo(**values)  # type: ignore[arg-type]


def test_search_ranks_exact_then_prefix_then_substring() -> None:
    projects = {"python": ["flask", "flask-login", "quart-flask"], "python-remediated": ["flask"]}
    hits, total = search(projects, "Flask", 10)
    assert [(h.project, h.repos) for h in hits] == [
        ("flask", ("python", "python-remediated")), ("flask-login", ("python",)), ("quart-flask", ("python",))]
    assert total == 3
    hits, total = search(projects, "", 1)
    assert len(hits) == 1 and total == 3


def test_group_versions_newest_first_with_yanks_and_remediation() -> None:
    files = [_file("1.0"), _file("1.10", requires_python=">=3.9"), _file("1.2", yanked=True),
             _file("1.0+fs.1")]
    versions = group_versions(files)
    assert [v.version for v in versions] == ["1.10", "1.2", "1.0+fs.1", "1.0"]
    assert versions[0].requires_python == ">=3.9"
    assert versions[1].yanked and versions[2].remediated and not versions[3].remediated


def test_human_size() -> None:
    assert [human_size(n) for n in (0, 1023, 1024, 5 * 1024 * 1024)] == ["0 B", "1023 B", "1.0 KiB", "5.0 MiB"]


def _signed(info: FileInfo, key: SigningKey) -> bytes:
    facts = BuildFacts(
        project="demo", version=info.version, repository="python", sdist_url="http://x/demo.tar.gz",
        sdist_sha256="3" * 64, patches=(PatchInfo("fix.patch", "4" * 64, ("GHSA-1",)),), dependencies=(),
        build_key="f" * 64, python="3.11", platform="linux", source_date_epoch=0, sandbox={},
        invocation_id="b1", started=T, finished=T,
    )
    statement = build_statement(info.filename, info.sha256, [RecordEntry("demo/__init__.py", "1" * 64, 1)], facts)
    return sign_statement(statement, key)


def test_provenance_verified_for_this_file_only() -> None:
    private = Ed25519PrivateKey.generate()
    key = SigningKey(private, key_id(private.public_key()))
    keys = {key.keyid: key.public}
    info = _file("1.0")
    envelope = _signed(info, key)
    view = provenance_view(envelope, keys, info)
    assert view.status == "verified" and view.attestation is not None and view.keyid == key.keyid
    pep740 = json.dumps(to_pep740(json.loads(envelope), "urn:fromsource:builder")).encode()
    assert provenance_view(pep740, keys, info).status == "verified"
    other = replace(info, sha256=Sha256("b" * 64))
    mismatch = provenance_view(envelope, keys, other)
    assert mismatch.status == "invalid" and mismatch.attestation is None and "not this file" in mismatch.message
    assert provenance_view(envelope, {}, info).status == "invalid"
    assert provenance_view(b"{not json", keys, info).status == "unreadable"
    assert provenance_view(None, keys, info).status == "missing"


def test_sbom_summary() -> None:
    raw = build_sbom(SbomInput(
        project="demo", version="1.0+fs.1", wheel_filename="demo-1.0+fs.1-py3-none-any.whl",
        sdist_url="http://x/demo-1.0.tar.gz", sdist_sha256="3" * 64, dependencies=(),
        patches=(PatchInfo("fix.patch", "4" * 64, ("GHSA-1",)),), epoch=0,
    ))
    view = sbom_view(raw)
    assert view.status == "ok" and view.spec_version == "1.6"
    assert view.purl.startswith("pkg:pypi/demo@1.0")
    assert view.sdist_url == "http://x/demo-1.0.tar.gz" and view.sdist_sha256 == "3" * 64
    assert [(p.name, p.resolves) for p in view.patches] == [("fix.patch", ("GHSA-1",))]
    assert view.vulnerabilities == (("GHSA-1", "resolved_with_pedigree"),)
    assert sbom_view(None).status == "missing"
    assert sbom_view(b"[]").status == "unreadable" and sbom_view(b"\xff").status == "unreadable"


def test_fixed_advisories_merge_aliases() -> None:
    advisory = parse_advisory({"id": "PYSEC-1", "aliases": ["CVE-1"], "summary": "bad",
                               "affected": [{"package": {"ecosystem": "PyPI", "name": "demo"}}]})
    fixed = fixed_advisories([("a.patch", ("PYSEC-1", "CVE-1")), ("b.patch", ("GHSA-x",))], [advisory])
    assert [(f.id, f.aliases, f.summary, f.patches) for f in fixed] == [
        ("GHSA-x", (), "", ("b.patch",)), ("PYSEC-1", ("CVE-1",), "bad", ("a.patch",))]


def test_build_log_keeps_its_end() -> None:
    view = build_view(1, "succeeded", None, "x" * LOG_LIMIT + "END", T, T, T)
    assert view.log_truncated and view.log.endswith("END") and len(view.log) == LOG_LIMIT
    assert view.duration == "0.0 s"


# -- the build matrix ---------------------------------------------------------------------


def test_matrix_rows_per_wheel_per_failed_target_and_the_sdist() -> None:
    from fromsource.index.ui_views import MatrixBuild, build_matrix, target_of

    cp311 = _file("1.0", "demo-1.0-cp311-cp311-linux_x86_64.whl", id=1, build_id=10)
    cp312 = _file("1.0", "demo-1.0-cp312-cp312-linux_x86_64.whl", id=2)  # published by hand
    sdist = _file("1.0", "demo-1.0.tar.gz", id=3, kind="sdist", build_id=10)
    failed_target = {"target": {"python_tag": "cp313", "abi_tag": "cp313",
                                "platform_tag": "linux_x86_64"}}
    builds = [
        MatrixBuild(14, "failed", "build-failed", target_of(failed_target), None),
        MatrixBuild(13, "failed", "timeout", target_of(failed_target), None),  # older, same target
        MatrixBuild(12, "skipped", None, None, None),
        MatrixBuild(11, "failed", "timeout", ("cp311", "cp311", "linux_x86_64"), None),  # has a wheel
        MatrixBuild(10, "succeeded", None, target_of({"wheel": {"filename": cp311.filename}}), 1),
    ]
    rows = build_matrix([sdist, cp312, cp311], builds, {3: "mirrored source"})
    assert [(r.python, r.abi, r.platform, r.status, r.file.id if r.file else None,
             r.build.id if r.build else None, r.note) for r in rows] == [
        ("cp311", "cp311", "linux_x86_64", "succeeded", 1, 10, ""),
        ("cp312", "cp312", "linux_x86_64", "published", 2, None, ""),
        ("cp313", "cp313", "linux_x86_64", "failed", None, 14, "build-failed"),
        ("source", "any", "any", "mirrored source", 3, 10, ""),
    ]
    assert target_of({}) is None and target_of({"target": "3.12"}) is None
    multi = target_of({"wheel": {"filename": "demo-1.0-py2.py3-none-any.whl"}})
    assert multi == ("py2.py3", "none", "any")


def test_an_sdist_provenance_is_checked_as_mirrored_source() -> None:
    from fromsource.provenance.source import SourceFacts, source_statement

    private = Ed25519PrivateKey.generate()
    key = SigningKey(private, key_id(private.public_key()))
    facts = SourceFacts(
        project="demo", version="1.0", repository="python", upstream_url="http://x/demo-1.0.tar.gz",
        upstream_sha256="a" * 64, fetched=T, published=T, invocation_id="build-10",
    )
    envelope = sign_statement(source_statement("demo-1.0.tar.gz", "a" * 64, facts), key)
    info = _file("1.0", "demo-1.0.tar.gz", kind="sdist")
    view = provenance_view(envelope, {key.keyid: key.public}, info)
    assert view.status == "verified" and view.source is not None and view.attestation is None
    assert view.source.sdist_url == "http://x/demo-1.0.tar.gz" and not view.source.repacked
    other = provenance_view(envelope, {key.keyid: key.public}, replace(info, filename="demo-1.0.zip"))
    assert other.status == "invalid" and "not this file" in other.message
    # A wheel statement served for an sdist (or the other way round) is not read as one.
    as_wheel = provenance_view(envelope, {key.keyid: key.public}, _file("1.0"))
    assert as_wheel.status == "unreadable"
