"""Hypothesis fuzzing of the parsers fromsource owns.

Each property says what a parser may do with any input: return a value that
keeps its invariants, or raise the project's own error for that input; never
anything else (an IndexError or TypeError reaching a request handler is a 500).
Where an independent reference exists (the kernel for symlinks, html.parser
and json for rendered pages, a strict regex for ranges) the result is
compared with it.
"""

from __future__ import annotations

import json
import os
import posixpath
import string
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest
import tomlkit
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from packaging.markers import Marker
from packaging.version import InvalidVersion, Version

from fromsource.build.archive_rules import Member, check_tree, split_name, symlink_escapes
from fromsource.dist.names import ProjectName, Sha256, fs_revision, normalize, remediated_version
from fromsource.dist.record import RecordEntry, parse_record, render_record
from fromsource.errors import (
    InvalidDistributionError,
    LockError,
    ProvenanceError,
    RefusedMemberError,
)
from fromsource.index.auth import parse_basic, parse_bearer
from fromsource.index.negotiate import choose
from fromsource.index.pages import (
    HTML_TYPE,
    JSON_TYPE,
    project_page,
    render_project_html,
    render_project_json,
)
from fromsource.index.ranges import Unsatisfiable, parse_range
from fromsource.index.ui_session import read_cookie
from fromsource.lockfiles.model import IndexFile, Release
from fromsource.lockfiles.read import FORMATS, parse_lock
from fromsource.lockfiles.reqfile import parse_requirements
from fromsource.lockfiles.update import update_text
from fromsource.provenance.dsse import parse_envelope
from fromsource.provenance.pep740 import to_pep740
from fromsource.store.catalog import FileInfo
from fromsource.store.tokens import canonical_identity

# The default run is derandomized (the same inputs every time, so the suite stays
# green until the code changes); FROMSOURCE_FUZZ_RANDOM=1 explores new inputs.
RANDOM = os.environ.get("FROMSOURCE_FUZZ_RANDOM") == "1"
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=not RANDOM)
QUICK = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck),
                 derandomize=not RANDOM)

# -- archive member checks --------------------------------------------------------------

NAME_PARTS = st.sampled_from(["a", "b", "..", ".", "", "/", "\\", "\x00", "C:", "~", "é", "x" * 256])


@FUZZ
@given(st.one_of(st.text(max_size=60), st.lists(NAME_PARTS, max_size=8).map("".join)))
def test_split_name_never_yields_a_path_that_leaves_the_root(name: str) -> None:
    try:
        parts = split_name(name)
    except RefusedMemberError as refused:
        assert refused.member == name and refused.reason
        return
    assert all(p not in ("", ".", "..") and "/" not in p and "\\" not in p for p in parts)
    assert not any(ord(c) < 32 for p in parts for c in p)
    joined = posixpath.normpath(posixpath.join("/tree", *parts))
    assert joined == "/tree" or joined.startswith("/tree/")


SEGMENT = st.sampled_from(["a", "b", "c"])
REL_PATH = st.lists(SEGMENT, min_size=1, max_size=3).map(tuple)
TARGET = st.lists(st.sampled_from(["a", "b", "c", "..", "."]), min_size=1, max_size=5).map("/".join)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=not RANDOM)
@given(links=st.dictionaries(REL_PATH, TARGET, min_size=1, max_size=4))
def test_symlinks_the_rules_accept_stay_inside_on_a_real_filesystem(
    links: dict[tuple[str, ...], str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The kernel is the reference: materialize the accepted tree and resolve every link."""
    # A link cannot also be a directory other members live under (check_tree refuses it).
    assume(not any(other[: len(p)] == p for p in links for other in links if other != p))
    members = [Member("/".join(p), p, "symlink", target=t) for p, t in links.items()]
    try:
        check_tree(members)
    except RefusedMemberError:
        return
    for path in links:
        assert symlink_escapes(path, links) == ""
    root = tmp_path_factory.mktemp("tree")
    for path, target in links.items():
        (root.joinpath(*path[:-1])).mkdir(parents=True, exist_ok=True)
        os.symlink(target, root.joinpath(*path))
    real_root = os.path.realpath(root)
    for path in links:
        resolved = os.path.realpath(root.joinpath(*path))
        assert resolved == real_root or resolved.startswith(real_root + os.sep), (links, path, resolved)


KINDS = st.sampled_from(["file", "dir", "symlink", "hardlink"])


@FUZZ
@given(st.lists(st.tuples(st.lists(SEGMENT, max_size=3).map(tuple), KINDS, TARGET), max_size=8))
def test_check_tree_refuses_or_maps_hardlinks_to_files(
    entries: list[tuple[tuple[str, ...], str, str]],
) -> None:
    members = [
        Member("/".join(p) or ".", p, kind, target=t if kind in ("symlink", "hardlink") else "")  # type: ignore[arg-type]
        for p, kind, t in entries
    ]
    try:
        hardlinks = check_tree(members)
    except RefusedMemberError:
        return
    for source, target in hardlinks.items():
        assert target.kind == "file" and source in {m.parts for m in members}


# -- PEP 691 / PEP 503 rendering -----------------------------------------------------------

FILENAME = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=40
)
VERSION = st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){0,2}(\+fs\.[0-9]{1,2})?", fullmatch=True)
REASON = st.one_of(st.none(), st.text(alphabet=st.characters(codec="utf-8"), max_size=30))
DIGEST = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map(Sha256)


@st.composite
def file_infos(draw: st.DrawFn) -> FileInfo:
    yanked = draw(st.booleans())
    return FileInfo(
        id=draw(st.integers(1, 10**6)),
        repo="python",
        project=ProjectName("demo-pkg"),
        version=draw(VERSION),
        filename=draw(FILENAME),
        kind="wheel",
        sha256=draw(DIGEST),
        size=draw(st.integers(0, 2**53)),
        requires_python=draw(REASON),
        yanked=yanked,
        yanked_reason=draw(REASON) if yanked else None,
        metadata_sha256=draw(st.one_of(st.none(), DIGEST)),
        provenance_sha256=draw(st.one_of(st.none(), DIGEST)),
        sbom_sha256=None,
        build_id=None,
        upload_time=draw(st.datetimes(timezones=st.just(UTC), min_value=datetime(1980, 1, 2))),
    )


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[tuple[dict[str, str | None], str]] = []
        self._attrs: dict[str, str | None] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._attrs, self._text = dict(attrs), ""

    def handle_data(self, data: str) -> None:
        if self._attrs is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._attrs is not None:
            self.anchors.append((self._attrs, self._text))
            self._attrs = None


def _unique(files: list[FileInfo]) -> list[FileInfo]:
    seen: dict[str, FileInfo] = {}
    for f in files:
        seen.setdefault(f.filename, f)
    return list(seen.values())


@FUZZ
@given(st.lists(file_infos(), max_size=5).map(_unique))
def test_pep691_json_round_trips(files: list[FileInfo]) -> None:
    page = project_page("demo-pkg", files)
    document = json.loads(render_project_json(page))
    assert document["name"] == "demo-pkg" and document["meta"]["api-version"]
    by_name = {f.filename: f for f in files}
    assert sorted(e["filename"] for e in document["files"]) == sorted(by_name)
    for entry in document["files"]:
        info = by_name[entry["filename"]]
        assert entry["hashes"] == {"sha256": info.sha256}
        assert entry["size"] == info.size
        assert entry["requires-python"] == info.requires_python
        assert entry["yanked"] == ((info.yanked_reason or True) if info.yanked else False)
        assert entry["url"].endswith("/" + _quoted(info.filename))
        assert datetime.strptime(entry["upload-time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=UTC
        ) == info.upload_time
        if info.metadata_sha256:
            assert entry["core-metadata"] == {"sha256": info.metadata_sha256}
    assert document["versions"] == list(dict.fromkeys(f.version for f in _sorted(files)))


def _quoted(filename: str) -> str:
    from urllib.parse import quote

    return quote(filename)


def _sorted(files: list[FileInfo]) -> list[FileInfo]:
    by_name = {f.filename: f for f in files}
    return [by_name[p.filename] for p in project_page("demo-pkg", files).files]


@FUZZ
@given(st.lists(file_infos(), max_size=5).map(_unique))
def test_pep503_html_round_trips_through_html_parser(files: list[FileInfo]) -> None:
    page = project_page("demo-pkg", files)
    parser = _Anchors()
    parser.feed(render_project_html(page).decode())
    parser.close()
    assert len(parser.anchors) == len(page.files)
    for (attrs, text), expected in zip(parser.anchors, page.files, strict=True):
        assert _normalize_newlines(text) == _normalize_newlines(expected.filename)
        assert attrs["href"] == f"{expected.url}#sha256={expected.sha256}"
        assert attrs.get("data-requires-python") == expected.requires_python or (
            expected.requires_python == "" and "data-requires-python" not in attrs
        )
        if expected.yanked:
            assert attrs["data-yanked"] == (expected.yanked_reason or "")
        else:
            assert "data-yanked" not in attrs


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# -- Range ------------------------------------------------------------------------------------

RANGE_HEADER = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda unit, a, b: f"{unit}={a}-{b}",
        st.sampled_from(["bytes", "BYTES", " bytes ", "items"]),
        st.one_of(st.just(""), st.integers(0, 10**25).map(str), st.text("0123456789+-_ ", max_size=4)),
        st.one_of(st.just(""), st.integers(0, 10**25).map(str), st.text("0123456789+-_ ", max_size=4)),
    ),
)


def _reference_range(header: str, size: int) -> tuple[int, int] | None | str:
    """RFC 9110 §14.1.2 for one byte range, written independently: "416" when unsatisfiable."""
    import re

    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        return None
    match = re.fullmatch(r"([0-9]*)-([0-9]*)", spec.strip())
    if not match or match.group(0) == "-":
        return None
    first, last = match.groups()
    if first == "":
        if int(last) == 0 or size == 0:
            return "416"
        return max(size - int(last), 0), size - 1
    if last and int(last) < int(first):
        return None
    if int(first) >= size:
        return "416"
    return int(first), min(int(last), size - 1) if last else size - 1


@FUZZ
@given(RANGE_HEADER, st.integers(0, 10**12))
@example("bytes=-5", 0)
@example("bytes=0-0", 0)
@example("bytes=1_0-2_0", 100)
@example("bytes=+1-+2", 100)
def test_range_parsing_matches_rfc_9110(header: str, size: int) -> None:
    parsed = parse_range(header, size)
    got = "416" if isinstance(parsed, Unsatisfiable) else parsed
    if isinstance(parsed, Unsatisfiable):
        assert parsed.size == size
    assert got == _reference_range(header, size)
    if isinstance(got, tuple):
        start, end = got
        assert 0 <= start <= end < size


# -- Accept -----------------------------------------------------------------------------------

MEDIA = st.sampled_from(
    [JSON_TYPE, HTML_TYPE, "text/html", "*/*", "application/*", "text/*", "application/json",
     "application/vnd.pypi.simple.latest+json", "image/png", "", "garbage"]
)
Q = st.one_of(st.just(""), st.sampled_from([";q=0", ";q=1", ";q=0.5", ";q=nan", ";q=-1", ";q=2", ";q=x"]))


@FUZZ
@given(st.one_of(st.text(max_size=50), st.lists(st.tuples(MEDIA, Q).map("".join), max_size=5).map(", ".join)))
def test_accept_negotiation_always_decides(header: str) -> None:
    chosen = choose(header)
    assert chosen in (JSON_TYPE, HTML_TYPE, "text/html", None)
    if chosen is None:
        # 406 only when the client named something and none of ours is acceptable.
        assert header.strip(" ,;")


# -- versions and local labels -------------------------------------------------------------------

PUBLIC_VERSION = st.from_regex(
    r"([1-9]![0-9])?[0-9]{1,4}(\.[0-9]{1,4}){0,3}((a|b|rc)[0-9]{1,2})?(\.post[0-9])?(\.dev[0-9])?",
    fullmatch=True,
)


@FUZZ
@given(PUBLIC_VERSION, st.integers(0, 10**6))
def test_remediated_versions_round_trip(base: str, revision: int) -> None:
    version = remediated_version(base, revision)
    assert fs_revision(version) == revision
    assert version.public == Version(base).public
    assert version > Version(base)
    with pytest.raises(InvalidDistributionError):
        remediated_version(version, revision + 1)


@FUZZ
@given(st.text(alphabet=string.ascii_letters + string.digits + ".+-_!", max_size=25))
def test_fs_revision_never_raises(text: str) -> None:
    try:
        version = Version(text)
    except InvalidVersion:
        return
    revision = fs_revision(version)
    if revision is not None:
        assert version.local == f"fs.{revision}"


# -- RECORD ---------------------------------------------------------------------------------------

RECORD_PATH = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=30)


@FUZZ
@given(
    st.lists(
        st.tuples(RECORD_PATH, st.one_of(st.none(), DIGEST), st.one_of(st.none(), st.integers(0, 2**40))),
        max_size=6,
        unique_by=lambda e: e[0],
    )
)
def test_record_render_then_parse_round_trips(rows: list[tuple[str, str | None, int | None]]) -> None:
    entries = [RecordEntry(p, d, s) for p, d, s in rows if p != "demo-1.0.dist-info/RECORD"]
    text = render_record(entries, record_path="demo-1.0.dist-info/RECORD")
    parsed = parse_record(text)
    assert parsed[:-1] == [e for e in entries if not _is_record(e.path)]
    assert parsed[-1] == RecordEntry("demo-1.0.dist-info/RECORD", None, None)


def _is_record(path: str) -> bool:
    from fromsource.dist.record import is_record_path

    return is_record_path(path)


@FUZZ
@given(st.text(max_size=200))
def test_parse_record_raises_only_its_own_error(text: str) -> None:
    try:
        entries = parse_record(text)
    except InvalidDistributionError:
        return
    for entry in entries:
        assert entry.path and (entry.sha256 is None or len(entry.sha256) == 64)
        assert entry.size is None or entry.size >= 0


# -- credentials parsers ---------------------------------------------------------------------------


@FUZZ
@given(st.one_of(st.none(), st.text(max_size=80), st.binary(max_size=60).map(lambda b: "Basic " + b.hex())))
def test_credential_parsers_never_raise(header: str | None) -> None:
    creds = parse_basic(header)
    assert creds is None or (isinstance(creds[0], str) and isinstance(creds[1], str))
    assert parse_bearer(header) is None or header is not None
    canonical_identity(header or "")


@QUICK
@given(st.one_of(st.none(), st.text(max_size=120), st.from_regex(r"[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,40}")))
def test_session_cookies_never_raise(value: str | None) -> None:
    assert read_cookie(b"k" * 32, value, lambda _id: None, datetime.now(UTC)) is None


# -- DSSE envelopes (stored provenance is served as PEP 740) -------------------------------------

ENVELOPE_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.just("e30=")),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(
        st.sampled_from(["keyid", "sig", "payload", "payloadType", "signatures"]), inner, max_size=3)),
    max_leaves=8,
)


@FUZZ
@given(st.fixed_dictionaries({}, optional={
    "payloadType": ENVELOPE_VALUE, "payload": ENVELOPE_VALUE, "signatures": ENVELOPE_VALUE}))
@example({"payloadType": "x", "payload": "", "signatures": ["x"]})  # was: AttributeError
@example({"payloadType": "x", "payload": "e30=", "signatures": []})  # was: IndexError in PEP 740
@example({"payloadType": "x", "payload": "e30=", "signatures": [{"sig": ""}]})  # was: KeyError
def test_envelopes_parse_or_raise_provenance_errors_and_render_as_pep740(doc: dict[str, object]) -> None:
    try:
        envelope = parse_envelope(json.dumps(doc))
    except ProvenanceError:
        return
    rendered = to_pep740(envelope, "urn:test")
    assert rendered["attestation_bundles"][0]["attestations"][0]["envelope"]["statement"] == doc["payload"]


# -- lock files -------------------------------------------------------------------------------------

KEYS = st.sampled_from(
    ["name", "version", "source", "sdist", "wheels", "hash", "hashes", "sha256", "url", "path",
     "editable", "virtual", "directory", "vcs", "archive", "registry", "packages", "package",
     "files", "file", "dependencies", "metadata", "content-hash", "lock-version", "lock_version",
     "default", "develop", "_meta", "requires", "upload-time", "size", "groups", "index"]
)
SCALAR = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["sha256:" + "a" * 64, "a" * 64, "demo", "1.0", "demo-1.0-py3-none-any.whl"]),
    st.integers(-5, 5),
    st.booleans(),
)
TOML_VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)
DOCUMENT = st.dictionaries(KEYS, TOML_VALUE, max_size=5)
ENTRY_LIST = st.lists(st.dictionaries(KEYS, TOML_VALUE, max_size=3), max_size=2)
PACKAGE = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(["demo", "Demo_Pkg"]), SCALAR),
        "version": st.one_of(st.just("1.0"), TOML_VALUE),
    },
    optional={
        key: st.one_of(SCALAR, ENTRY_LIST, st.dictionaries(KEYS, TOML_VALUE, max_size=3))
        for key in ("source", "sdist", "wheels", "directory", "vcs", "archive", "files",
                    "dependencies", "hashes", "editable", "virtual", "index", "marker")
    },
)
LOCK_DOCUMENT = st.one_of(
    st.fixed_dictionaries({"packages": st.lists(PACKAGE, min_size=1, max_size=3),
                           "lock-version": st.one_of(st.just("1.0"), SCALAR)}),
    st.fixed_dictionaries({"package": st.lists(PACKAGE, min_size=1, max_size=3),
                           "version": st.one_of(st.just(1), SCALAR)},
                          optional={"metadata": TOML_VALUE, "lock_version": SCALAR}),
    st.fixed_dictionaries({"default": st.dictionaries(st.sampled_from(["demo", "x"]), st.one_of(
        TOML_VALUE, st.dictionaries(KEYS, TOML_VALUE, max_size=3)), max_size=2)},
        optional={"_meta": TOML_VALUE, "develop": TOML_VALUE}),
    DOCUMENT,
)


def _toml(document: dict[str, object]) -> str:
    return tomlkit.dumps(document)


@FUZZ
@given(LOCK_DOCUMENT)
@example({"packages": [{"name": "a", "wheels": 5}]})  # was: TypeError
@example({"packages": [{"name": "a", "sdist": {"hashes": [1]}}]})  # was: AttributeError
@example({"packages": [{"name": "a", "wheels": [{"hashes": "x"}]}]})  # was: AttributeError
@example({"package": [{"name": "a", "wheels": 5}]})  # was: TypeError (uv.lock)
@example({"package": [{"name": "a", "source": {"registry": "x"}, "markers": {"main": 1}}]})
def test_lock_readers_raise_only_lock_errors(document: dict[str, object]) -> None:
    for fmt in FORMATS:
        text = json.dumps(document) if fmt == "Pipfile.lock" else _toml(document)
        try:
            found = parse_lock(fmt, text, "lock")
        except LockError as exc:
            assert exc.message.startswith("lock")  # names the file
            continue
        for pin in found:
            assert pin.name is None or pin.name == normalize(pin.name)
            assert isinstance(pin.label, str) and pin.origin == "lock"
            assert all(len(h) == 64 and h == h.lower() for h in pin.hashes)
            assert pin.marker is None or isinstance(pin.marker, Marker)
            assert all(isinstance(f.filename, str) and f.filename for f in pin.files)


@FUZZ
@given(st.lists(st.one_of(
    st.text(max_size=40),
    st.sampled_from(["demo==1.0 --hash=sha256:" + "a" * 64, "-r other.txt", "-e .", "\\",
                     "demo @ https://files.example.invalid/demo-1.0-py3-none-any.whl", "--hash=md5:00", "demo===1.0",
                     "demo==1.* --hash=sha256:" + "b" * 64, "# comment", "-c c.txt",
                     "-e git+https://g.example.invalid/r.git#egg=demo", "./x.whl", "--index",
                     "x ; os_name == 'posix' --hash=sha256:" + "c" * 64]),
), max_size=6).map("\n".join))
def test_requirements_reader_raises_only_lock_errors(text: str) -> None:
    try:
        parsed = parse_requirements(text, "requirements.txt")
    except LockError as exc:
        assert exc.message.startswith("requirements.txt:")  # names the file and line
        return
    assert all(isinstance(i.target, str) for i in parsed.includes)
    assert all(p.line is not None and p.line >= 1 for p in parsed.packages)


def _release(name: ProjectName, version: str) -> Release:
    """Every project is on the index, with one wheel (so the editors reach their edits)."""
    filename = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    url = "http://index.example.invalid/python/files/" + filename
    wheel = IndexFile(filename, url, Sha256("a" * 64), "wheel", 10, None)
    return Release(name, version, "http://index.example.invalid/python/simple/", (wheel,))


LOCK_CRASHES = [  # each was a TypeError (or tomlkit's ParseError) out of the editor
    ("poetry.lock", {"package": [{"name": "demo", "version": "1.0", "files": "1.0"}]}),
    ("uv.lock", {"version": 1, "package": [{"name": "demo", "version": "1.0", "wheels": 5}]}),
    ("poetry.lock", {"package": [{"name": "demo", "version": "1.0", "files": 5}]}),
    ("pdm.lock", {"package": [{"name": "demo", "version": "1.0", "files": 5}]}),
    ("pylock.toml", {"lock-version": "1.0", "packages": [{"name": "demo", "version": "1.0", "wheels": 5}]}),
    ("Pipfile.lock", {"default": {"demo": {"version": "==1.0", "hashes": 5}}}),
]


@pytest.mark.parametrize(("fmt", "document"), LOCK_CRASHES)
def test_lock_editors_refuse_wrong_types_with_a_lock_error(fmt: str, document: dict[str, object]) -> None:
    text = json.dumps(document) if fmt == "Pipfile.lock" else _toml(document)
    with pytest.raises(LockError, match="not a well-formed"):
        update_text(fmt, text, _release)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=not RANDOM)
@given(st.sampled_from(FORMATS), st.one_of(LOCK_DOCUMENT.map(_toml), LOCK_DOCUMENT.map(json.dumps), st.text(max_size=80)))
def test_lock_editors_raise_only_lock_errors(fmt: str, text: str) -> None:
    try:
        update_text(fmt, text, _release)
    except LockError:
        pass
