from fromsource.index.ranges import Unsatisfiable, parse_range


def test_forms() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=-1000", 100) == (0, 99)
    assert parse_range("bytes=50-5000", 100) == (50, 99)


def test_ignored_forms_send_everything() -> None:
    for header in ("bytes=0-1,5-6", "items=0-1", "bytes=abc", "bytes=9-3", "bytes=", "bytes=5"):
        assert parse_range(header, 100) is None, header


def test_unsatisfiable() -> None:
    assert parse_range("bytes=100-", 100) == Unsatisfiable(100)
    assert parse_range("bytes=-0", 100) == Unsatisfiable(100)
    assert parse_range("bytes=-5", 0) == Unsatisfiable(0)
