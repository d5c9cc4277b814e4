"""HTTP Range header parsing (RFC 9110 §14), pure.

Only single byte ranges are honoured; a multi-range request is answered with
the whole file (which RFC 9110 allows), so nobody can make the server build
a large multipart body out of thousands of tiny ranges.

A range wholly outside the file is an answer, not a failure: it comes back
as an :class:`Unsatisfiable` value, so the three outcomes (the whole file, a
slice, 416) are one return type the caller must handle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DIGITS = re.compile(r"[0-9]+")  # RFC 9110: 1*DIGIT
_MAX_DIGITS = 4000  # int() refuses more than 4300 digits; longer is past any file anyway


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= _MAX_DIGITS else 10 ** (_MAX_DIGITS + 1)


@dataclass(frozen=True)
class Unsatisfiable:
    """The one range asked for lies wholly outside the file of *size* bytes: answer 416."""

    size: int


def parse_range(header: str | None, size: int) -> tuple[int, int] | Unsatisfiable | None:
    """``(start, end)`` inclusive for a satisfiable single range, None for "send it all".

    :class:`Unsatisfiable` when the one range given starts beyond the end
    (or asks for the last 0 bytes, or any bytes of an empty file).
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
            return Unsatisfiable(size)
        return max(size - suffix, 0), size - 1
    start = _number(first)
    if last and _number(last) < start:  # last-pos before first-pos: an invalid range
        return None
    if start >= size:
        return Unsatisfiable(size)
    return start, min(_number(last), size - 1) if last else size - 1
