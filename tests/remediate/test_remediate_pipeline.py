"""``remediate`` end to end: upstream sdist + our series -> built, signed, published +fs.N.

Then the published wheel itself is installed into a venv of its era and the
behaviour probe runs against it (not against a source tree).
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fromsource.build.pipeline import BuildContext
from fromsource.config import Settings
from fromsource.provenance.dsse import parse_envelope
from fromsource.provenance.statement import parse_statement
from fromsource.remediate.feed import published_releases
from fromsource.remediate.openvex import openvex_document, remediation_statements
from fromsource.remediate.run import remediate_release
from fromsource.remediate.series import find_series
from fromsource.store.catalog import project_files
from tests.remediate.probes import CASES, FLASK_PROBE, install, make_venv, probe

pytestmark = pytest.mark.network


@contextmanager
def context(data_dir: Path) -> Iterator[BuildContext]:
    ctx = BuildContext.from_settings(Settings(data_dir=data_dir), allow_unsandboxed=True)
    try:
        yield ctx
    finally:
        ctx.upstream.close()
        ctx.db.dispose()


def test_remediate_flask(tmp_path: Path) -> None:
    with context(tmp_path / "data") as ctx:
        check_flask(ctx, tmp_path)


def check_flask(ctx: BuildContext, tmp_path: Path) -> None:
    series = find_series("flask", "2.0.0")
    assert series is not None
    first = remediate_release(ctx, series)
    assert first.ok, first.build.message
    assert first.build.wheel == "flask-2.0.0+fs.1-py3-none-any.whl"
    second = remediate_release(ctx, series)
    assert second.ok and str(second.plan.version) == "2.0.0+fs.2"

    [info] = [f for f in project_files(ctx.db, "python-remediated", "flask")
              if f.version == "2.0.0+fs.1" and f.kind == "wheel"]
    assert info.provenance_sha256 and info.sbom_sha256
    envelope = parse_envelope(ctx.blobs.read_bytes(info.provenance_sha256))
    attestation = parse_statement(base64.b64decode(envelope["payload"]))
    [patch] = attestation.patches
    assert (patch.name, patch.sha256) == (series.patches[0].name, series.patches[0].sha256)
    assert "CVE-2023-30861" in patch.fixes
    sbom = json.loads(ctx.blobs.read_bytes(info.sbom_sha256))
    pedigree = sbom["metadata"]["component"]["pedigree"]
    assert {r["id"] for r in pedigree["patches"][0]["resolves"]} >= {"PYSEC-2023-62"}

    releases = published_releases(ctx.db, ctx.blobs)
    assert [r.version for r in releases] == ["2.0.0+fs.1", "2.0.0+fs.2"]
    doc = openvex_document(remediation_statements(releases), now=releases[-1].published,
                           author="test", project="flask")
    [statement] = doc["statements"]
    assert statement["vulnerability"]["name"] == "CVE-2023-30861"
    assert [p["@id"] for p in statement["products"]] == [
        "pkg:pypi/flask@2.0.0%2Bfs.1", "pkg:pypi/flask@2.0.0%2Bfs.2"]

    # the published wheel, installed, has the fix
    wheel = tmp_path / info.filename
    shutil.copyfile(ctx.blobs.local_path(info.sha256) or "", wheel)
    python = make_venv(tmp_path / "venv", CASES["flask"].deps)
    install(python, str(wheel), no_deps=True)
    assert probe(python, None, FLASK_PROBE) == {"set_cookie": True, "vary": "Cookie"}


def test_a_hunk_that_does_not_apply_fails_the_build(tmp_path: Path) -> None:
    shipped = find_series("flask", "2.0.0")
    assert shipped is not None
    root = tmp_path / "series"
    shutil.copytree(shipped.directory, root / "flask" / "2.0.0")
    patch = root / "flask" / "2.0.0" / shipped.patches[0].name
    patch.write_text(patch.read_text().replace(
        "         secure = self.get_cookie_secure(app)\n",
        "         secure = self.get_cookie_secure(app)  # not upstream\n", 1))
    series = find_series("flask", "2.0.0", root=root)
    assert series is not None
    with context(tmp_path / "data") as ctx:
        outcome = remediate_release(ctx, series)
    assert not outcome.ok
    assert outcome.build.category == "patch-failed"
    assert "hunk #1 (@@ -371,6 +371,12 @@) of src/flask/sessions.py" in outcome.build.message
