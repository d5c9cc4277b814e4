"""pip.conf and requirements edits: text in, text out."""

from __future__ import annotations

import configparser

from fromsource.setup.pipconf import set_pip_conf, set_requirements_index

URL = "http://h/python-all/simple/"


def _read(text: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    return parser


def test_new_file_gets_global_section() -> None:
    text = set_pip_conf("", {"index-url": [URL], "extra-index-url": []})
    assert text == f"[global]\nindex-url = {URL}\n"
    assert set_pip_conf(text, {"index-url": [URL], "extra-index-url": []}) == text


def test_existing_keys_replaced_comments_and_other_keys_kept() -> None:
    before = (
        "# my settings\n[global]\ntimeout = 60\nindex_url = http://old/simple/\n"
        "extra-index-url =\n    http://a/\n    http://b/\n\n[install]\nindex-url = http://shadow/\n"
        "no-compile = true\n"
    )
    after = set_pip_conf(before, {"index-url": [URL], "extra-index-url": ["http://h/python/simple/"]})
    parsed = _read(after)
    assert parsed.get("global", "index-url") == URL
    assert parsed.get("global", "extra-index-url") == "http://h/python/simple/"
    assert not parsed.has_option("global", "index_url")
    assert not parsed.has_option("install", "index-url")
    assert parsed.get("install", "no-compile") == "true"
    assert after.startswith("# my settings\n[global]\ntimeout = 60\n")
    assert set_pip_conf(after, {"index-url": [URL], "extra-index-url": ["http://h/python/simple/"]}) == after


def test_empty_value_removes_key_and_multi_values_continue() -> None:
    before = "[global]\nindex-url = http://x/\nextra-index-url = http://y/\n"
    after = set_pip_conf(before, {"index-url": [URL], "extra-index-url": []})
    assert "extra-index-url" not in after
    multi = set_pip_conf("", {"index-url": [URL], "extra-index-url": ["http://a/", "http://b/"]})
    assert _read(multi).get("global", "extra-index-url").split() == ["http://a/", "http://b/"]


def test_key_added_inside_existing_global_section_before_next_section() -> None:
    before = "[global]\ntimeout = 5\n\n[list]\nformat = columns\n"
    after = set_pip_conf(before, {"index-url": [URL]})
    assert after == f"[global]\ntimeout = 5\nindex-url = {URL}\n\n[list]\nformat = columns\n"


def test_requirements_lines_replaced_in_place() -> None:
    before = "# deps\n-i http://old/simple\nflask==2.0\n--extra-index-url=http://x/\nrequests\n"
    after = set_requirements_index(before, URL)
    assert after == f"# deps\n--index-url {URL}\nflask==2.0\nrequests\n"
    assert set_requirements_index(after, URL) == after


def test_requirements_new_and_without_trailing_newline() -> None:
    assert set_requirements_index("", URL, ["http://e/"]) == f"--index-url {URL}\n--extra-index-url http://e/\n"
    assert set_requirements_index("flask", URL) == f"--index-url {URL}\nflask\n"
