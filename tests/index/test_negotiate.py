from fromsource.index.negotiate import choose
from fromsource.index.pages import HTML_TYPE, JSON_TYPE


def test_no_accept_means_legacy_html() -> None:
    assert choose(None) == "text/html"
    assert choose("") == "text/html"


def test_json_preferred_when_equal() -> None:
    assert choose(f"{JSON_TYPE}, {HTML_TYPE}") == JSON_TYPE
    # Legacy clients send */* and expect HTML.
    assert choose("*/*") == "text/html"
    assert choose("text/*") == "text/html"


def test_q_values_are_honoured() -> None:
    assert choose(f"{JSON_TYPE};q=0.2, {HTML_TYPE};q=0.9") == HTML_TYPE
    assert choose(f"{JSON_TYPE}, text/html;q=0.01") == JSON_TYPE
    # pip's own header
    pip = f"{JSON_TYPE}, {HTML_TYPE}; q=0.1, text/html; q=0.01"
    assert choose(pip) == JSON_TYPE


def test_q_zero_excludes() -> None:
    assert choose(f"{JSON_TYPE};q=0, text/html") == "text/html"


def test_nothing_acceptable() -> None:
    assert choose("application/xml") is None
    assert choose(f"{JSON_TYPE};q=0") is None


def test_specific_range_beats_wildcard() -> None:
    assert choose(f"*/*;q=0.1, {HTML_TYPE}") == HTML_TYPE
