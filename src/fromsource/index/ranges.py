"""HTTP Range header parsing (RFC 9110 §14), pure.

Only single byte ranges are honoured; a multi-range request is answered with
the whole file (which RFC 9110 allows), so nobody can make the server build
a large multipart body out of thousands of tiny ranges.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]+")  # RFC 9110: 1*DIGIT
_MAX_DIGITS = 4000  # int() refuses more than 4300 digits; longer is past any file anyway


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= _MAX_DIGITS else 10 ** (_MAX_DIGITS + 1)


class Unsatisfiable(Exception):
    """The range lies wholly outside the file: answer 416."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` inclusive for a satisfiable single range, None for "send it all".

    Raises Unsatisfiable when the one range given starts beyond the end.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    # Only plain ASCII digits (int() would also take "+1", "1_0", " 1" and
    # other scripts' digits); anything else is an invalid range: ignore it.
    if not dash or not (_DIGITS.fullmatch(first) or first == ""):
        return None
    if not (_DIGITS.fullmatch(last) or (last == "" and first != "")):
        return None
    if first == "":
        suffix = _number(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(size - suffix, 0), size - 1
    start = _number(first)
    if last and _number(last) < start:  # last-pos before first-pos: an invalid range
        return None
    if start >= size:
        raise Unsatisfiable
    return start, min(_number(last), size - 1) if last else size - 1
