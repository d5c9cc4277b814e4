"""HTTP Range header parsing (RFC 9110 §14), pure.

Only single byte ranges are honoured; a multi-range request is answered with
the whole file (which RFC 9110 allows), so nobody can make the server build
a large multipart body out of thousands of tiny ranges.
"""

from __future__ import annotations


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
    if not dash:
        return None
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                raise Unsatisfiable
            return max(size - suffix, 0), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        raise Unsatisfiable
    if start < 0 or end < start:
        return None
    return start, min(end, size - 1)
