"""Pure decisions: version matching, candidate checks, verdicts from values."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import pytest

from fromsource.provenance.keys import SigningKey
from fromsource.provenance.statement import PatchInfo
from fromsource.verify.decide import (
    Checked,
    check_candidate,
    decide_installed,
    decide_locked,
    decide_wheel,
    same_version,
)
from fromsource.verify.model import (
    Candidate,
    InstalledDist,
    InstalledFile,
    LockedPackage,
    Status,
    WheelFile,
)
from tests.verify.conftest import MakeAttested

SOURCE = "test source"


@pytest.mark.parametrize(
    ("pinned", "found", "allow_local", "expected"),
    [
        ("1.0", "1.0", False, True),
        ("1.0", "1.0.0", False, True),
        ("1.0", "1.0+fs.1", False, False),
        ("1.0", "1.0+fs.1", True, True),
        ("1.0+fs.1", "1.0", True, False),
        ("1.1", "1.0", True, False),
    ],
)
def test_same_version(pinned: str, found: str, allow_local: bool, expected: bool) -> None:
    assert same_version(pinned, found, allow_local) is expected


@pytest.fixture
def attested(make_attested: MakeAttested, signing_key: SigningKey) -> tuple[Checked, dict[str, str]]:
    item = make_attested("pure-demo", "1.0",
                         files={"pure_demo/__init__.py": "A = 1\n", "pure_demo/x.py": "B = 2\n"})
    checked = check_candidate(Candidate(item.wheel.name, "t", item.envelope),
                              {signing_key.keyid: signing_key.public}, "pure-demo", "1.0")
    assert checked.attestation is not None, checked.problem
    return checked, dict(checked.attestation.byproducts)


def installed_from(byproducts: dict[str, str], *, disk: Mapping[str, str | None] | None = None,
                   record: Mapping[str, str] | None = None, extra: tuple[str, ...] = ()
                   ) -> InstalledDist:
    info = "pure_demo-1.0.dist-info"
    files = {}
    for path, digest in byproducts.items():
        actual = (disk or {}).get(path, digest)
        files[path] = InstalledFile(path, (record or {}).get(path, digest), actual)
    for path in (f"{info}/INSTALLER", f"{info}/RECORD", "pure_demo/__pycache__/x.cpython-311.pyc",
                 *extra):
        files[path] = InstalledFile(path, None, None)
    return InstalledDist("pure-demo", "1.0", info, info, MappingProxyType(files),
                         ("py3-none-any",))


def test_a_faithful_install_is_verified(attested: tuple[Checked, dict[str, str]]) -> None:
    checked, byproducts = attested
    result = decide_installed(installed_from(byproducts), [checked], SOURCE)
    assert result.status is Status.VERIFIED
    assert "repository python, build build-1, sdist sha256:" in result.details
    assert len(result.installer_files) == 3
    assert result.checked == result.matched == len(byproducts)


def test_an_edited_file_is_modified_after_install(attested: tuple[Checked, dict[str, str]]) -> None:
    checked, byproducts = attested
    dist = installed_from(byproducts, disk={"pure_demo/x.py": "0" * 64})
    result = decide_installed(dist, [checked], SOURCE)
    assert result.status is Status.MODIFIED
    assert result.files == ("pure_demo/x.py",)
    assert "pure_demo/x.py" in result.details
    assert result.coverage == pytest.approx(100 * (len(byproducts) - 1) / len(byproducts), 0.01)


def test_a_deleted_file_and_an_unattested_file_are_flagged(
    attested: tuple[Checked, dict[str, str]]
) -> None:
    checked, byproducts = attested
    dist = installed_from(byproducts, disk={"pure_demo/x.py": None}, extra=("pure_demo/evil.py",))
    result = decide_installed(dist, [checked], SOURCE)
    assert result.status is Status.MODIFIED
    assert result.files == ("pure_demo/x.py (missing)", "pure_demo/evil.py (not in the attested wheel)")


def test_another_build_of_the_same_version_is_not_built_by_us(
    attested: tuple[Checked, dict[str, str]]
) -> None:
    checked, byproducts = attested
    other = {"pure_demo/x.py": "1" * 64}
    dist = installed_from(byproducts, disk=other, record=other)
    result = decide_installed(dist, [checked], SOURCE)
    assert result.status is Status.NOT_BUILT
    assert "another build" in result.details and "pure_demo/x.py" in result.details


def test_no_candidate_and_invalid_candidates(
    attested: tuple[Checked, dict[str, str]], other_key: SigningKey
) -> None:
    checked, byproducts = attested
    dist = installed_from(byproducts)
    assert decide_installed(dist, [], SOURCE).status is Status.NOT_BUILT
    assert checked.candidate.envelope is not None
    wrong = check_candidate(checked.candidate, {other_key.keyid: other_key.public}, "pure-demo", "1.0")
    assert wrong.attestation is None and "signature invalid" in (wrong.problem or "")
    result = decide_installed(dist, [wrong], SOURCE)
    assert result.status is Status.INVALID
    # No trusted key at all: the signature is not "unchecked", it does not verify.
    untrusted = check_candidate(checked.candidate, {}, "pure-demo", "1.0")
    assert untrusted.attestation is None and "signature invalid" in (untrusted.problem or "")
    assert decide_installed(dist, [untrusted], SOURCE).status is Status.INVALID
    unlisted = Checked(Candidate("x.whl", "t", None, problem="x.whl is listed without provenance"),
                       problem="x.whl is listed without provenance")
    assert decide_installed(dist, [unlisted], SOURCE).status is Status.NOT_BUILT


def test_identity_checks(attested: tuple[Checked, dict[str, str]], signing_key: SigningKey) -> None:
    checked, _ = attested
    keys = {signing_key.keyid: signing_key.public}
    candidate = checked.candidate
    assert "project" in (check_candidate(candidate, keys, "other", "1.0").problem or "")
    assert "version" in (check_candidate(candidate, keys, "pure-demo", "2.0").problem or "")
    listed_wrong = Candidate(candidate.filename, "t", candidate.envelope, listed_sha256="0" * 64)
    assert "another sha256" in (check_candidate(listed_wrong, keys, "pure-demo", "1.0").problem or "")
    renamed = Candidate("pure_demo-1.0-py2-none-any.whl", "t", candidate.envelope)
    assert "not this file" in (check_candidate(renamed, keys, "pure-demo", "1.0").problem or "")
    garbage = Candidate(candidate.filename, "t", b"{not json")
    assert "malformed" in (check_candidate(garbage, keys, "pure-demo", "1.0").problem or "")


def test_remediated_builds_say_what_they_fix(
    make_attested: MakeAttested, signing_key: SigningKey
) -> None:
    patch = PatchInfo("0001-fix.patch", "a" * 64, ("PYSEC-2023-62", "CVE-2023-30861"))
    item = make_attested("fixed-demo", "1.0+fs.1", patches=[patch], repository="python-remediated")
    checked = check_candidate(Candidate(item.wheel.name, "t", item.envelope),
                              {signing_key.keyid: signing_key.public}, "fixed-demo", "1.0+fs.1")
    assert checked.attestation is not None
    wheel = WheelFile(item.wheel.name, "w", "fixed-demo", "1.0+fs.1", item.sha256,
                      MappingProxyType(dict(checked.attestation.byproducts)))
    result = decide_wheel(wheel, [checked], SOURCE)
    assert result.status is Status.VERIFIED_REMEDIATED
    assert result.provenance is not None
    assert result.provenance.fixes == ("PYSEC-2023-62", "CVE-2023-30861")
    assert "PYSEC-2023-62" in result.details


def test_wheel_decisions(attested: tuple[Checked, dict[str, str]]) -> None:
    checked, byproducts = attested
    att = checked.attestation
    assert att is not None
    good = WheelFile(att.subject_name, "w", "pure-demo", "1.0", att.subject_sha256,
                     MappingProxyType(byproducts))
    assert decide_wheel(good, [checked], SOURCE).status is Status.VERIFIED
    repacked = WheelFile(att.subject_name, "w", "pure-demo", "1.0", "f" * 64,
                         MappingProxyType(byproducts))
    result = decide_wheel(repacked, [checked], SOURCE)
    assert result.status is Status.MODIFIED and "repacked" in result.details
    tampered = WheelFile(att.subject_name, "w", "pure-demo", "1.0", "f" * 64,
                         MappingProxyType({**byproducts, "pure_demo/x.py": "2" * 64}))
    result = decide_wheel(tampered, [checked], SOURCE)
    assert result.status is Status.MODIFIED and result.files == ("pure_demo/x.py",)
    other = WheelFile("pure_demo-1.0-py2-none-any.whl", "w", "pure-demo", "1.0", "f" * 64,
                      MappingProxyType(byproducts))
    assert decide_wheel(other, [checked], SOURCE).status is Status.NOT_BUILT


def test_lock_decisions(attested: tuple[Checked, dict[str, str]], other_key: SigningKey) -> None:
    checked, _ = attested
    att = checked.attestation
    assert att is not None
    pinned = LockedPackage("pure-demo", "1.0", frozenset({att.subject_sha256, "e" * 64}), "l:1")
    result = decide_locked(pinned, [checked], SOURCE)
    assert result.status is Status.VERIFIED and "also allows 1 other" in result.details
    elsewhere = LockedPackage("pure-demo", "1.0", frozenset({"e" * 64}), "l:1")
    result = decide_locked(elsewhere, [checked], SOURCE)
    assert result.status is Status.NOT_BUILT and att.subject_name in result.details
    assert decide_locked(elsewhere, [], SOURCE).status is Status.NOT_BUILT
    wrong = check_candidate(checked.candidate, {other_key.keyid: other_key.public}, "pure-demo", "1.0")
    assert decide_locked(pinned, [wrong], SOURCE).status is Status.INVALID
    unpinned = LockedPackage("x", None, frozenset(), "l:2", unverifiable="not pinned")
    assert decide_locked(unpinned, [], SOURCE).details == "not pinned"


def test_a_scripts_folder_inside_a_package_is_not_a_data_script(
    make_attested: MakeAttested, signing_key: SigningKey
) -> None:
    item = make_attested("scr-demo", "1.0", files={"scr_demo/scripts/run.py": "print(1)\n"})
    checked = check_candidate(Candidate(item.wheel.name, "t", item.envelope),
                              {signing_key.keyid: signing_key.public}, "scr-demo", "1.0")
    assert checked.attestation is not None
    byproducts = dict(checked.attestation.byproducts)
    info = "scr_demo-1.0.dist-info"
    other = "9" * 64
    files = {p: InstalledFile(p, other if p.endswith("run.py") else d,
                              other if p.endswith("run.py") else d)
             for p, d in byproducts.items()}
    dist = InstalledDist("scr-demo", "1.0", info, info, MappingProxyType(files), ("py3-none-any",))
    result = decide_installed(dist, [checked], SOURCE)
    assert result.status is Status.NOT_BUILT and "scr_demo/scripts/run.py" in result.details


def test_an_upstream_file_the_index_served_is_recognised_by_its_bytes_and_hashes() -> None:
    from fromsource.verify.decide import upstream_installed, upstream_locked, upstream_wheel
    from fromsource.verify.model import Listed

    members = {"up_demo/__init__.py": "a" * 64, "up_demo-1.0.dist-info/METADATA": "b" * 64,
               "up_demo-1.0.dist-info/RECORD": "c" * 64}
    listed = Listed("up_demo-1.0-py3-none-any.whl", "page", "d" * 64, "python-upstream",
                    "file-url", served_from="upstream", policy_generation=4)
    info = "up_demo-1.0.dist-info"

    def dist(init: str) -> InstalledDist:
        files = {
            "up_demo/__init__.py": InstalledFile("up_demo/__init__.py", init, init),
            f"{info}/METADATA": InstalledFile(f"{info}/METADATA", "b" * 64, "b" * 64),
            f"{info}/RECORD": InstalledFile(f"{info}/RECORD", None, "e" * 64),
        }
        return InstalledDist("up-demo", "1.0", info, info, MappingProxyType(files),
                             ("py3-none-any",))

    found = upstream_installed(dist("a" * 64), [(listed, members)])
    assert found is not None and found.status is Status.UPSTREAM
    assert not found.status.is_verified and found.coverage == 0.0
    assert found.served is not None and found.served.policy_generation == 4
    assert "policy generation 4" in found.details
    assert upstream_installed(dist("f" * 64), [(listed, members)]) is None  # changed on disk
    wheel = WheelFile(listed.filename, "w", "up-demo", "1.0", "d" * 64, MappingProxyType(members))
    assert upstream_wheel(wheel, [listed]) is not None
    assert upstream_wheel(WheelFile(listed.filename, "w", "up-demo", "1.0", "0" * 64,
                                    MappingProxyType(members)), [listed]) is None
    pin = LockedPackage("up-demo", "1.0", frozenset({"d" * 64}), "req")
    assert upstream_locked(pin, [listed]) is not None
    assert upstream_locked(LockedPackage("up-demo", "1.0", frozenset({"0" * 64}), "req"),
                           [listed]) is None
