"""The uv.lock editor: registry, sdist, wheels and version replaced in place, in uv's layout."""

from __future__ import annotations

from fromsource.lockfiles.uvlock import update_uvlock
from tests.lockfiles.samples import INDEX, REMEDIATED, digest, lookup, release, sdist, wheel

UP = "https://upstream.example/simple/"
FILES = "https://files.upstream.example/"

LOCK = f"""\
version = 1
revision = 3
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1"
source = {{ virtual = "." }}
dependencies = [
    {{ name = "demo-pkg" }},
    {{ name = "dep-pkg", version = "0.1", source = {{ registry = "{UP}" }} }},
]

[package.metadata]
requires-dist = [{{ name = "demo-pkg", specifier = "==1.0" }}]

[[package]]
name = "demo-pkg"
version = "1.0"
source = {{ registry = "{UP}" }}
dependencies = [
    {{ name = "dep-pkg" }},
]
sdist = {{ url = "{FILES}demo_pkg-1.0.tar.gz", hash = "sha256:{digest('1')}", size = 10, upload-time = "2024-01-01T00:00:00.000Z" }}
wheels = [
    {{ url = "{FILES}demo_pkg-1.0-py3-none-any.whl", hash = "sha256:{digest('2')}", size = 11, upload-time = "2024-01-01T00:00:00.000Z" }},
]

[[package]]
name = "dep-pkg"
version = "0.1"
source = {{ registry = "{UP}" }}
wheels = [
    {{ url = "{FILES}dep_pkg-0.1-py3-none-any.whl", hash = "sha256:{digest('3')}", size = 12, upload-time = "2024-01-01T00:00:00.000Z" }},
]

[[package]]
name = "gone"
version = "2.0"
source = {{ registry = "{UP}" }}
wheels = [
    {{ url = "{FILES}gone-2.0-py3-none-any.whl", hash = "sha256:{digest('4')}" }},
]

[[package]]
name = "vcs-pkg"
version = "0.3"
source = {{ git = "https://git.example/vcs-pkg?rev=abc#abc" }}
"""

DEMO = release("demo-pkg", "1.0", wheel("demo-pkg", "1.0", "a"), sdist("demo-pkg", "1.0", "c"))
DEP = release("dep-pkg", "0.1", wheel("dep-pkg", "0.1", "d"))


def _block(text: str, name: str) -> str:
    return next(b for b in text.split("\n\n") if f'name = "{name}"\n' in b)


def test_replaces_files_and_registry_in_place() -> None:
    update = update_uvlock(LOCK, lookup(DEMO, DEP))
    w, s = wheel("demo-pkg", "1.0", "a"), sdist("demo-pkg", "1.0", "c")
    assert _block(update.text, "demo-pkg") == f"""\
[[package]]
name = "demo-pkg"
version = "1.0"
source = {{ registry = "{INDEX}" }}
dependencies = [
    {{ name = "dep-pkg" }},
]
sdist = {{ url = "{s.url}", hash = "sha256:{s.sha256}", size = 99, upload-time = "2025-01-02T03:04:05.678Z" }}
wheels = [
    {{ url = "{w.url}", hash = "sha256:{w.sha256}", size = 1234, upload-time = "2025-01-02T03:04:05.678Z" }},
]"""
    assert f'{{ name = "dep-pkg", version = "0.1", source = {{ registry = "{INDEX}" }} }}' \
        in update.text
    for name in ("gone", "vcs-pkg"):
        assert _block(update.text, name) == _block(LOCK, name)
    assert [(p.name, p.status) for p in update.packages] == [
        ("app", "skipped"), ("demo-pkg", "updated"), ("dep-pkg", "updated"),
        ("gone", "missing"), ("vcs-pkg", "skipped")]
    assert update_uvlock(update.text, lookup(DEMO, DEP)).text == update.text


def test_remediated_version_follows_into_references() -> None:
    fixed = release("dep-pkg", "0.1+fs.1", wheel("dep-pkg", "0.1+fs.1", "f", index=REMEDIATED),
                    index=REMEDIATED)
    update = update_uvlock(LOCK, lookup(pins={("dep-pkg", "0.1"): fixed}))
    assert (f'{{ name = "dep-pkg", version = "0.1+fs.1", source = {{ registry = "{REMEDIATED}" }} }}'
            in update.text)
    assert 'name = "dep-pkg"\nversion = "0.1+fs.1"\n' in update.text
    assert update.packages[2].new_version == "0.1+fs.1"


def test_sdist_removed_when_the_index_has_none_and_added_before_wheels() -> None:
    wheel_only = release("demo-pkg", "1.0", wheel("demo-pkg", "1.0", "a"))
    update = update_uvlock(LOCK, lookup(wheel_only))
    assert "sdist" not in _block(update.text, "demo-pkg")
    assert update.notes == ("demo-pkg: sdist entry removed, the index serves none",)
    with_sdist = release("dep-pkg", "0.1", wheel("dep-pkg", "0.1", "d"), sdist("dep-pkg", "0.1", "e"))
    block = _block(update_uvlock(LOCK, lookup(with_sdist)).text, "dep-pkg")
    assert block.index("sdist = ") < block.index("wheels = [")


def test_old_revision_without_upload_times_gets_none() -> None:
    old = LOCK.replace("revision = 3\n", "").replace(
        ', upload-time = "2024-01-01T00:00:00.000Z"', "")
    assert "upload-time" not in update_uvlock(old, lookup(DEMO, DEP)).text
