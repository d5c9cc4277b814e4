import json
from datetime import UTC, datetime

from fromsource.dist.names import ProjectName, Sha256
from fromsource.index.pages import (
    project_page,
    render_project_html,
    render_project_json,
    render_root_html,
)
from fromsource.store.catalog import FileInfo


def _file(version: str, filename: str, **kw: object) -> FileInfo:
    base: dict[str, object] = {
        "id": 1, "repo": "python", "project": ProjectName("demo"), "version": version,
        "filename": filename, "kind": "wheel", "sha256": Sha256("a" * 64), "size": 10,
        "requires_python": ">=3.8", "yanked": False, "yanked_reason": None,
        "metadata_sha256": Sha256("b" * 64), "provenance_sha256": Sha256("c" * 64),
        "sbom_sha256": None, "build_id": None,
        "upload_time": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    base.update(kw)
    return FileInfo(**base)  # type: ignore[arg-type]


def test_versions_sorted_and_urls_relative() -> None:
    page = project_page("demo", [_file("1.10", "demo-1.10-py3-none-any.whl"), _file("1.9", "demo-1.9-py3-none-any.whl")])
    assert page.versions == ("1.9", "1.10")
    assert page.files[0].url == "../../files/demo/1.9/demo-1.9-py3-none-any.whl"


def test_json_has_pep691_700_714_740_fields() -> None:
    page = project_page("demo", [_file("1.0", "demo-1.0-py3-none-any.whl", yanked=True, yanked_reason="broken")])
    doc = json.loads(render_project_json(page))
    assert doc["meta"]["api-version"] == "1.1"
    assert doc["versions"] == ["1.0"]
    f = doc["files"][0]
    assert f["hashes"] == {"sha256": "a" * 64}
    assert f["core-metadata"] == {"sha256": "b" * 64} == f["dist-info-metadata"]
    assert f["requires-python"] == ">=3.8"
    assert f["yanked"] == "broken"
    assert f["size"] == 10
    assert f["upload-time"] == "2026-01-02T03:04:05.000000Z"
    assert f["provenance"].endswith("/integrity/demo/1.0/demo-1.0-py3-none-any.whl/provenance")


def test_html_escapes_and_carries_data_attributes() -> None:
    page = project_page("demo", [_file("1.0", "demo-1.0-py3-none-any.whl", requires_python=">=3.8,<4", yanked=True, yanked_reason="")])
    body = render_project_html(page).decode()
    assert 'data-requires-python="&gt;=3.8,&lt;4"' in body
    assert 'data-yanked=""' in body
    assert f'data-core-metadata="sha256={"b" * 64}"' in body
    assert f'#sha256={"a" * 64}"' in body


def test_root_html_lists_projects() -> None:
    body = render_root_html(["a-b", "c"]).decode()
    assert '<a href="a-b/">a-b</a>' in body


def test_extra_links_are_merged_in_version_order_and_marked() -> None:
    from fromsource.index.pages import PageFile

    upstream = PageFile(
        "demo-1.5.tar.gz", "../../../python-upstream/files/demo/1.5/demo-1.5.tar.gz",
        "d" * 64, None, None, None, False, None, None, None, origin="upstream", policy_generation=3,
    )
    page = project_page(
        "demo",
        [_file("1.10", "demo-1.10-py3-none-any.whl"), _file("1.9", "demo-1.9-py3-none-any.whl")],
        extra=[("1.5", upstream)],
    )
    assert page.versions == ("1.5", "1.9", "1.10")
    assert page.files[0].filename == "demo-1.5.tar.gz"
    doc = json.loads(render_project_json(page))
    first = doc["files"][0]
    assert first["_fromsource"] == {"origin": "upstream", "policy_generation": 3}
    assert "size" not in first and "upload-time" not in first  # the upstream gave neither
    assert all("_fromsource" not in f for f in doc["files"][1:])
    body = render_project_html(page).decode()
    assert body.count('data-fromsource-origin="upstream"') == 1
    assert 'data-fromsource-policy-generation="3"' in body
