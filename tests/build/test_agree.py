"""Publish only what two independent builds agree on (issue 17): offline, in the real sandbox.

The test packages are written here: an ordinary one (published, its
provenance naming both builds), one whose build writes random bytes into a
generated module (refused as ``irreproducible``, its log showing the
member), and one that prints what its sandbox looks like (uid, TMPDIR,
environment order, host folder), so the two builds can be told apart.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import textwrap
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from fromsource.build.agree import local_slots
from fromsource.build.batch import build_many
from fromsource.build.history import get_build, list_builds
from fromsource.build.pipeline import BuildContext, build_one
from fromsource.build.sandbox import tool_available
from fromsource.build.wheeldiff import describe_differences
from fromsource.cli.main import main
from fromsource.provenance.keys import keys_document
from fromsource.provenance.statement import parse_statement, verify_attestation
from fromsource.store.catalog import project_files
from fromsource.store.fsck import run_fsck
from fromsource.store.publish import publish_file
from tests.packages import (  # noqa: F401
    LocalIndex,
    _minimal_backend,
    build_context,
    local_index,
    make_sdist,
)

pytestmark = pytest.mark.skipif(not tool_available("bwrap"), reason="bubblewrap cannot run here")


@pytest.fixture
def ctx(tmp_path: Path, local_index: LocalIndex) -> Iterator[BuildContext]:  # noqa: F811
    context = dataclasses.replace(build_context(tmp_path / "data", local_index.url), agree=2)
    yield context
    context.close()


def _random_backend(name: str) -> str:
    """The minimal backend, plus a generated module holding fresh random bytes each build."""
    module = name.replace("-", "_")
    code = _minimal_backend(name, "1.0")
    generated = (
        f'files["{module}/_generated.py"] = ("TOKEN = %r\\n" % os.urandom(8).hex()).encode()'
    )
    changed = code.replace("    record = [", f"    {generated}\n    record = [")
    assert changed != code
    return changed


def _telltale_backend(name: str) -> str:
    """The minimal backend, printing what the build sees of its sandbox (to the build log)."""
    return _minimal_backend(name, "1.0") + textwrap.dedent("""\

        _build = build_wheel

        def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
            import sys
            print("SANDBOX uid=%d tmp=%s first_env=%s cwd_len=%d" % (
                os.getuid(), os.environ["TMPDIR"], list(os.environ)[0], len(os.getcwd())),
                file=sys.stderr)
            return _build(wheel_directory, config_settings, metadata_directory)
        """)


def _add(index: LocalIndex, tmp_path: Path, name: str, code: str = "") -> str:
    backend = "in-tree" if code else "flit-core"
    index.add(make_sdist(tmp_path / "sdists", name, "1.0", backend, backend_code=code))  # type: ignore[arg-type]
    return f"{name}==1.0"


def _rows(ctx: BuildContext, project: str) -> list:  # type: ignore[type-arg]
    return sorted(list_builds(ctx.db, project=project), key=lambda r: r.id)


def test_an_ordinary_package_is_published_and_its_provenance_names_two_builds(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (outcome,) = build_many(ctx, [_add(local_index, tmp_path, "agree-plain")])
    assert outcome.status == "succeeded", outcome.message
    assert "2 independent builds agreed" in outcome.message
    (info,) = [f for f in project_files(ctx.db, "python", "agree-plain") if f.kind == "wheel"]
    assert info.sha256 == outcome.sha256 and info.build_id == outcome.build_id
    assert info.provenance_sha256 is not None
    envelope = ctx.blobs.read_bytes(info.provenance_sha256)
    key = ctx.signing_key
    attestation, _ = verify_attestation(envelope, {key.keyid: key.public})
    agreement = attestation.agreement
    assert agreement is not None and agreement.agreed and agreement.required == 2
    first, second = agreement.builds
    rows = _rows(ctx, "agree-plain")
    assert [r.status for r in rows] == ["succeeded", "succeeded"]
    assert {first.invocation_id, second.invocation_id} == {f"build-{r.id}" for r in rows}
    assert first.wheel_sha256 == second.wheel_sha256 == info.sha256
    assert first.build_key == second.build_key == attestation.build_key
    assert [first.sandbox["variant"], second.sandbox["variant"]] == [0, 1]
    if first.sandbox["build_uid"] is not None:  # root: each build had its own uid
        assert first.sandbox["build_uid"] != second.sandbox["build_uid"]
    assert attestation.invocation_id == f"build-{outcome.build_id}"
    assert "2 independent builds agreed" in agreement.summary()
    # The first build's row says how it ended; it holds no key (it did not publish).
    waiting = get_build(ctx.db, rows[0].id)
    assert waiting is not None and waiting.key is None
    assert waiting.details["agreement"]["state"] == "agreed"
    assert waiting.details["agreement"]["published_by"] == rows[1].id
    assert rows[0].details["work"] != rows[1].details["work"]
    assert len(rows[0].details["work"]) != len(rows[1].details["work"])
    # verify --detailed says so, offline: the wheel, its provenance and the key.
    wheel = tmp_path / "check" / info.filename
    wheel.parent.mkdir()
    wheel.write_bytes(ctx.blobs.read_bytes(info.sha256))
    (tmp_path / "check" / f"{info.filename}.dsse.json").write_bytes(envelope)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(keys_document({key.keyid: key.public}, key.keyid)))
    args = ["verify", str(wheel), "--attestations", str(wheel.parent), "--keys", str(keys)]
    assert main([*args, "--detailed"]) == 0
    detailed = capsys.readouterr().out
    assert f"2 independent builds agreed (build-{rows[0].id}, build-{rows[1].id})" in detailed
    assert main([*args, "--format", "json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert result["provenance"]["agreement"]["agreed"] is True
    assert result["provenance"]["agreement"]["builds"] == [f"build-{r.id}" for r in rows]
    # Published: the first build is skipped, the second is not even started.
    (again,) = build_many(ctx, ["agree-plain==1.0"])
    assert again.status == "skipped"
    assert [r.status for r in _rows(ctx, "agree-plain")] == ["succeeded"] * 2 + ["skipped"]


def test_a_build_dependency_published_between_the_two_builds_is_not_offered_to_either(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Both builds resolve against our repository as it was when the release was asked for:
    a build dependency published in between (a batch that builds setuptools beside what
    needs it, as the corpus does) would give the second build another key and another
    embedded SBOM, and the round would fail for nothing."""
    requirement = _add(local_index, tmp_path, "agree-inputs")
    first, second = local_slots(2)
    target = ctx.build_targets()[0]
    waiting = build_one(ctx, requirement, target=target, slot=first)
    assert waiting.status == "succeeded" and waiting.file_id is None, waiting.message
    (flit,) = [
        p for paths in local_index.files.values() for p in paths if p.name.startswith("flit_core-")
    ]
    ours = tmp_path / "ours" / flit.name  # another file of the same release: another sha256
    ours.parent.mkdir()
    with zipfile.ZipFile(flit) as source, zipfile.ZipFile(ours, "w", zipfile.ZIP_STORED) as out:
        for member in source.infolist():
            out.writestr(member.filename, source.read(member))
    publish_file(ctx.db, ctx.blobs, ours, "python")
    decided = build_one(ctx, requirement, target=target, slot=second)
    assert decided.status == "succeeded" and decided.file_id is not None, decided.message
    assert "2 independent builds agreed" in decided.message
    record = get_build(ctx.db, decided.build_id or 0)
    assert record is not None
    (dep,) = record.details["dependencies"]
    assert dep["project"] == "flit-core" and dep["source"] != "fromsource", dep
    # A build asked for now is offered our wheel.
    (later,) = build_many(dataclasses.replace(ctx, agree=1), [_add(local_index, tmp_path, "later")])
    assert later.status == "succeeded", later.message
    record = get_build(ctx.db, later.build_id or 0)
    assert record is not None and record.details["dependencies"][0]["source"] == "fromsource"


def test_random_bytes_in_a_generated_module_are_refused_as_irreproducible(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    requirement = _add(local_index, tmp_path, "agree-random", _random_backend("agree-random"))
    (outcome,) = build_many(ctx, [requirement])
    assert outcome.status == "failed" and outcome.category == "irreproducible", outcome.message
    assert "agree_random/_generated.py" in outcome.message
    assert "nothing was published" in outcome.message
    assert project_files(ctx.db, "python", "agree-random") == []
    # Each build's wheel stays in the blob store, referenced by its row (fsck keeps it).
    kept = run_fsck(ctx.db, ctx.blobs, grace=timedelta(0))
    assert kept.orphans == () and kept.missing == (), kept
    rows = _rows(ctx, "agree-random")
    assert [r.status for r in rows] == ["failed", "failed"]
    assert {r.details.get("category") for r in rows} == {"irreproducible"}
    deciding = get_build(ctx.db, outcome.build_id or 0)
    assert deciding is not None and deciding.key == outcome.key
    # The log shows the member and a short diff of its two texts.
    assert "DIFFERENT: two independent builds made different wheels" in deciding.log
    assert f"| --- build-{rows[0].id}/agree_random/_generated.py" in deciding.log
    assert re.search(r"\| -TOKEN = '[0-9a-f]{16}'", deciding.log)
    assert re.search(r"\| \+TOKEN = '[0-9a-f]{16}'", deciding.log)
    # The same inputs are not built twice again ...
    (again,) = build_many(ctx, [requirement])
    assert again.status == "failed" and again.category == "irreproducible"
    assert "not built again" in again.message
    # ... unless the operator publishes it anyway, which the provenance records.
    override = dataclasses.replace(ctx, publish_irreproducible=True)
    (forced,) = build_many(override, [requirement])
    assert forced.status == "succeeded", forced.message
    assert "did NOT agree" in forced.message
    (info,) = [f for f in project_files(ctx.db, "python", "agree-random") if f.kind == "wheel"]
    assert info.provenance_sha256 is not None
    payload = json.loads(ctx.blobs.read_bytes(info.provenance_sha256))["payload"]
    attestation = parse_statement(base64.b64decode(payload))
    agreement = attestation.agreement
    assert agreement is not None and not agreement.agreed
    assert agreement.override is not None
    record = "agree_random-1.0.dist-info/RECORD"
    assert agreement.override.differing == ("agree_random/_generated.py", record)
    assert "--publish-irreproducible" in agreement.override.reason
    assert len({b.wheel_sha256 for b in agreement.builds}) == 2


def test_the_two_builds_run_in_different_sandboxes_at_the_same_time(
    ctx: BuildContext,
    local_index: LocalIndex,  # noqa: F811
    tmp_path: Path,
) -> None:
    requirement = _add(local_index, tmp_path, "agree-telltale", _telltale_backend("agree-telltale"))
    (outcome,) = build_many(ctx, [requirement], jobs=2)
    assert outcome.status == "succeeded", outcome.message
    seen = []
    for row in _rows(ctx, "agree-telltale"):
        match = re.search(r"SANDBOX uid=(\d+) tmp=(\S+) first_env=(\S+) cwd_len=(\d+)", row.log)
        assert match, row.log
        seen.append(match.groups())
    (uid_a, tmp_a, env_a, _), (uid_b, tmp_b, env_b, _) = seen
    assert tmp_a == "/fromsource/build/tmp" and tmp_b == "/fromsource/build/tmp-1"
    assert env_a != env_b  # the environment in another order
    if uid_a != "65534":  # root: one unprivileged uid each
        assert uid_a != uid_b
    rows = _rows(ctx, "agree-telltale")
    started = sorted((r.started_at, r.finished_at) for r in rows)
    assert started[1][0] < started[0][1], "with --jobs 2 the two builds overlap"


def test_the_differences_of_two_wheels_text_and_binary(tmp_path: Path) -> None:
    def wheel(name: str, members: dict[str, bytes]) -> Path:
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as archive:
            for member, data in members.items():
                archive.writestr(member, data)
        return path

    same = {"pkg/__init__.py": b"x = 1\n"}
    a = wheel("a.whl", {**same, "pkg/gen.py": b"one\ntwo\nthree\n", "pkg/lib.so": b"\0" * 100})
    b = wheel(
        "b.whl",
        {
            **same,
            "pkg/gen.py": b"one\nTWO\nthree\n",
            "pkg/lib.so": b"\0" * 50 + b"\1" * 51,
            "pkg/new.txt": b"",
        },
    )
    found = describe_differences(a, b, labels=("first", "second"))
    assert found.differing == ("pkg/gen.py", "pkg/lib.so")
    assert found.only_second == ("pkg/new.txt",) and found.only_first == ()
    text = "\n".join(found.lines)
    assert "--- first/pkg/gen.py\n+++ second/pkg/gen.py" in text
    assert "-two\n+TWO" in text
    assert "pkg/lib.so: binary, 100 and 101 bytes; first differing offsets: 0x32, 0x33" in text
    assert "only in second: pkg/new.txt" in text
    many = wheel("c.whl", {f"m{i}.txt": b"%d\n" % i for i in range(20)})
    other = wheel("d.whl", {f"m{i}.txt": b"%d!\n" % i for i in range(20)})
    cut = describe_differences(many, other, members=3, diff_lines=4)
    assert len(cut.differing) == 20 and cut.lines[-1].startswith("[... 17 more differing members")
    assert sum(1 for line in cut.lines if line.startswith("[... diff cut")) == 3
