"""The build matrix: each release for every target, once per distinct wheel, as manylinux wheels.

Two interpreters (CPython 3.10 and 3.12, from pyenv or ``PATH``; skipped
when missing) build tiny packages the tests write, offline, in the real
sandbox (the session's ``matrix`` fixture, tests/build/conftest.py): a pure
package is built once, a C extension once per interpreter, an ``abi3``
extension once; every extension wheel is repaired to a manylinux tag and
rebuilds bit for bit per target.  Real pip and uv installing them from a
running index (``fromsource verify`` says 100 %), a client whose target is
not built, and a wheel auditwheel cannot repair: test_matrix_clients.py.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from fromsource.build.batch import build_many
from fromsource.build.history import get_build
from fromsource.build.matrix import build_release
from fromsource.build.outcome import BuildOutcome
from fromsource.build.rebuild import rebuild_matrix
from fromsource.build.sandbox import tool_available
from fromsource.provenance.statement import verify_attestation
from fromsource.store.catalog import project_files
from tests.build.conftest import MANYLINUX, Matrix
from tests.packages import make_sdist

pytest.importorskip(
    "auditwheel", reason="manylinux repair needs auditwheel (requirements/dev.lock)"
)
pytestmark = pytest.mark.skipif(
    not tool_available("bwrap") or shutil.which("gcc") is None,
    reason="needs bubblewrap and a C compiler",
)

def _ok(outcomes: tuple[BuildOutcome, ...]) -> list[BuildOutcome]:
    assert all(o.status == "succeeded" for o in outcomes), [o.message for o in outcomes]
    return list(outcomes)


def test_a_pure_package_is_built_once_whatever_the_number_of_targets(matrix: Matrix) -> None:
    (outcome,) = _ok(matrix.built["demo-mx-pure"])
    assert outcome.wheel == "demo_mx_pure-1.0-py3-none-any.whl"
    assert outcome.target == matrix.old.tag  # the oldest interpreter builds it
    (again,) = build_release(matrix.ctx, "demo-mx-pure==1.0")
    assert again.status == "skipped" and "already published" in again.message


def test_a_c_extension_is_built_once_per_target_as_a_manylinux_wheel(matrix: Matrix) -> None:
    outcomes = _ok(matrix.built["demo-mx-ext"])
    assert [o.target for o in outcomes] == [matrix.old.tag, matrix.new.tag]
    assert len({o.build_id for o in outcomes}) == 2 and len({o.key for o in outcomes}) == 2
    for outcome, python in zip(outcomes, ("cp310", "cp312"), strict=True):
        assert outcome.wheel is not None
        assert re.fullmatch(rf"demo_mx_ext-1\.0-{python}-{python}-{MANYLINUX}\.whl", outcome.wheel)
        record = get_build(matrix.ctx.db, outcome.build_id or 0)
        assert record is not None
        assert record.details["target"]["python_tag"] == python
        assert record.details["repair"]["repaired"] is True
        assert "repair" in record.details["steps"]
    # (test_matrix_clients.py adds a wheel for another interpreter to the session's store)
    tags = (f"-{matrix.old.python_tag}-", f"-{matrix.new.python_tag}-")
    files = [
        f
        for f in project_files(matrix.ctx.db, "python", "demo-mx-ext")
        if f.kind == "wheel" and any(t in f.filename for t in tags)
    ]
    assert sorted(f.filename for f in files) == sorted(o.wheel or "" for o in outcomes)
    key = matrix.ctx.signing_key
    for info in files:
        assert info.provenance_sha256 is not None
        attestation, _ = verify_attestation(
            matrix.ctx.blobs.read_bytes(info.provenance_sha256), {key.keyid: key.public}
        )
        assert attestation.subject_name == info.filename
        target = attestation.raw["predicate"]["buildDefinition"]["internalParameters"]["target"]
        assert target["tag"] in info.filename.replace(
            info.filename.rsplit("-", 1)[1].removesuffix(".whl"), "linux_x86_64"
        )


def test_an_abi3_extension_is_built_once_with_the_oldest_interpreter(matrix: Matrix) -> None:
    (outcome,) = _ok(matrix.built["demo-mx-abi3"])
    assert outcome.target == matrix.old.tag
    assert outcome.wheel is not None
    assert re.fullmatch(rf"demo_mx_abi3-1\.0-cp310-abi3-{MANYLINUX}\.whl", outcome.wheel)


def test_requires_python_excludes_the_targets_a_release_does_not_support(
    matrix: Matrix, tmp_path: Path
) -> None:
    newer = make_sdist(tmp_path, "demo-mx-newer", "1.0", "flit-core")
    future = make_sdist(tmp_path, "demo-mx-future", "1.0", "flit-core")
    matrix.index.requires_python[newer.name] = ">=3.11"
    matrix.index.requires_python[future.name] = ">=3.99"
    matrix.index.add(newer, future)
    (outcome,) = _ok(build_release(matrix.ctx, "demo-mx-newer==1.0"))
    assert outcome.target == matrix.new.tag
    (skipped,) = build_release(matrix.ctx, "demo-mx-future==1.0")
    assert skipped.status == "skipped" and skipped.build_id is None
    assert "admits none of the build targets (3.10, 3.12)" in skipped.message


def test_with_deps_evaluates_markers_and_requires_python_per_target(
    matrix: Matrix, tmp_path: Path
) -> None:
    old_lib = make_sdist(tmp_path, "demo-mx-lib", "1.0", "flit-core")
    new_lib = make_sdist(tmp_path, "demo-mx-lib", "2.0", "flit-core")
    matrix.index.requires_python[new_lib.name] = ">=3.11"
    matrix.index.add(
        old_lib,
        new_lib,
        make_sdist(tmp_path, "demo-mx-backport", "1.0", "flit-core"),
        make_sdist(
            tmp_path,
            "demo-mx-app",
            "1.0",
            "flit-core",
            dependencies=["demo-mx-lib", "demo-mx-backport; python_version < '3.11'"],
        ),
    )
    outcomes = build_many(matrix.ctx, ["demo-mx-app==1.0"], with_deps=True, jobs=2)
    built = sorted((o.project, o.version, o.target, o.status) for o in outcomes)
    old, new = matrix.old.tag, matrix.new.tag
    assert built == [
        ("demo-mx-app", "1.0", old, "succeeded"),
        ("demo-mx-backport", "1.0", old, "succeeded"),  # only 3.10's marker selects it
        ("demo-mx-lib", "1.0", old, "succeeded"),  # the newest that supports 3.10
        ("demo-mx-lib", "2.0", new, "succeeded"),  # the newest, for 3.12
    ]


def test_rebuild_check_per_target_is_bit_for_bit(matrix: Matrix) -> None:
    reports = rebuild_matrix(matrix.ctx, "demo-mx-ext==1.0")
    assert [r.target for r in reports] == [matrix.old.tag, matrix.new.tag]
    assert all(r.identical for r in reports), [r.to_json() for r in reports]
    assert all(r.reference.startswith("published") for r in reports)
    # A pure wheel is checked once, with the interpreter that built it, whichever
    # target asks for it.
    (pure,) = rebuild_matrix(matrix.ctx, "demo-mx-pure==1.0", pythons=["3.12"])
    assert pure.identical and pure.target == matrix.old.tag
    assert pure.wheel == "demo_mx_pure-1.0-py3-none-any.whl"


def test_a_grafted_library_is_in_the_sbom_and_the_provenance(matrix: Matrix) -> None:
    if "demo-mx-ffi" not in matrix.built:
        pytest.skip("needs the libffi headers (Debian package libffi-dev)")
    (outcome,) = _ok(matrix.built["demo-mx-ffi"])
    record = get_build(matrix.ctx.db, outcome.build_id or 0)
    assert record is not None
    (info,) = [
        f for f in project_files(matrix.ctx.db, "python", "demo-mx-ffi") if f.kind == "wheel"
    ]
    assert re.fullmatch(rf"demo_mx_ffi-1\.0-cp310-cp310-{MANYLINUX}\.whl", info.filename), (
        record.details["repair"]
    )
    wheel = matrix.ctx.blobs.local_path(info.sha256)
    assert wheel is not None
    with zipfile.ZipFile(wheel) as archive:
        (member,) = [n for n in archive.namelist() if n.startswith("demo_mx_ffi.libs/libffi")]
    assert info.sbom_sha256 is not None and info.provenance_sha256 is not None
    sbom = json.loads(matrix.ctx.blobs.read_bytes(info.sbom_sha256))
    (component,) = [
        c for c in sbom["components"] if any(p["value"] == member for p in c.get("properties", []))
    ]
    assert component["scope"] == "required" and component["hashes"][0]["alg"] == "SHA-256"
    key = matrix.ctx.signing_key
    attestation, _ = verify_attestation(
        matrix.ctx.blobs.read_bytes(info.provenance_sha256), {key.keyid: key.public}
    )
    (grafted,) = attestation.grafted
    assert grafted.member == member and member in attestation.byproducts
    assert attestation.byproducts[member] == grafted.sha256
    if shutil.which("dpkg"):  # a Debian system knows which package the library came from
        assert grafted.package and grafted.package.startswith("libffi")
        assert grafted.purl and grafted.purl.startswith("pkg:deb/")
        assert component["purl"] == grafted.purl
