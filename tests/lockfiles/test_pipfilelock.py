"""The Pipfile.lock editor: hashes appended (sorted) or swapped; layout of the JSON kept."""

from __future__ import annotations

import json

import pytest

from fromsource.errors import LockError
from fromsource.lockfiles.pipfilelock import update_pipfilelock
from tests.lockfiles.samples import digest, lookup, release, wheel

DOC = {
    "_meta": {"hash": {"sha256": "0" * 64}, "pipfile-spec": 6, "requires": {},
              "sources": [{"name": "pypi", "url": "https://upstream.example/simple",
                           "verify_ssl": True}]},
    "default": {
        "demo-pkg": {"hashes": [f"sha256:{digest('e')}"], "index": "pypi", "version": "==1.0"},
        "gone": {"hashes": [f"sha256:{digest('9')}"], "version": "==2.0"},
        "local": {"editable": True, "path": "."},
    },
    "develop": {"dep-pkg": {"index": "pypi", "version": "==0.1"}},
}
TEXT = json.dumps(DOC, indent=4, sort_keys=True) + "\n"
DEMO = release("demo-pkg", "1.0", wheel("demo-pkg", "1.0", "a"), wheel("demo-pkg", "1.0", "f", tag="py2-none-any"))
DEP = release("dep-pkg", "0.1", wheel("dep-pkg", "0.1", "d"))


def test_appends_sorted_and_keeps_pipenv_layout() -> None:
    update = update_pipfilelock(TEXT, lookup(DEMO, DEP))
    doc = json.loads(update.text)
    assert doc["default"]["demo-pkg"]["hashes"] == [
        f"sha256:{digest('a')}", f"sha256:{digest('e')}", f"sha256:{digest('f')}"]
    assert list(doc["develop"]["dep-pkg"]) == ["hashes", "index", "version"]
    expected = json.loads(TEXT)
    expected["default"]["demo-pkg"]["hashes"] = doc["default"]["demo-pkg"]["hashes"]
    expected["develop"]["dep-pkg"]["hashes"] = [f"sha256:{digest('d')}"]
    assert update.text == json.dumps(expected, indent=4, sort_keys=True) + "\n"
    assert [(p.name, p.status) for p in update.packages] == [
        ("demo-pkg", "updated"), ("gone", "missing"), ("local", "skipped"), ("dep-pkg", "updated")]
    assert update.notes == ()


def test_replace_remediated_and_missing_only_is_byte_identical() -> None:
    fixed = release("demo-pkg", "1.0+fs.1", wheel("demo-pkg", "1.0+fs.1", "b"))
    doc = json.loads(update_pipfilelock(TEXT, lookup(pins={("demo-pkg", "1.0"): fixed}),
                                        replace=True).text)
    assert doc["default"]["demo-pkg"]["hashes"] == [f"sha256:{digest('b')}"]
    assert doc["default"]["demo-pkg"]["version"] == "==1.0+fs.1"
    compact = json.dumps(DOC, indent=2)
    assert update_pipfilelock(compact, lookup()).text == compact


def test_not_json() -> None:
    with pytest.raises(LockError, match="not valid JSON"):
        update_pipfilelock("{", lookup())
