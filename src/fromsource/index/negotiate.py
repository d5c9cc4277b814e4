"""Content negotiation for the simple API (PEP 691), with q-values.

Pure: ``choose(accept_header)`` returns the media type to serve, or None
when the client accepts nothing we can send (the route answers 406).
"""

from __future__ import annotations

import math

from fromsource.index.pages import HTML_TYPE, JSON_TYPE

_OFFERS = (JSON_TYPE, HTML_TYPE, "text/html")
# Ties go to the server's preference (PEP 691): among types the client named,
# JSON first; among types reached only through a wildcard, text/html first,
# because legacy clients (requests-based tools such as poetry) send */* and
# parse whatever comes back as HTML.


# PEP 691: the meta version ``latest`` names the newest version the server has,
# and the answer carries that version's real content type.
_LATEST = {
    "application/vnd.pypi.simple.latest+json": JSON_TYPE,
    "application/vnd.pypi.simple.latest+html": HTML_TYPE,
}


def _parse(header: str) -> list[tuple[str, float]]:
    ranges: list[tuple[str, float]] = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if not media:
            continue
        quality = 1.0
        for param in pieces[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
                if math.isnan(quality):  # ``q=nan`` is no quality at all
                    quality = 0.0
                quality = min(max(quality, 0.0), 1.0)
        ranges.append((_LATEST.get(media, media), quality))
    return ranges


def _quality(offer: str, ranges: list[tuple[str, float]]) -> tuple[float, int]:
    best: tuple[int, float] = (-1, 0.0)
    kind = offer.split("/")[0]
    for media, quality in ranges:
        if media == offer:
            specificity = 2
        elif media == f"{kind}/*":
            specificity = 1
        elif media == "*/*":
            specificity = 0
        else:
            continue
        if specificity > best[0]:
            best = (specificity, quality)
    return best[1], best[0]


def choose(accept: str | None) -> str | None:
    """The media type to answer with for this ``Accept`` header, or None (406).

    A missing or empty header (or one naming no media range) means
    ``text/html`` (PEP 691: legacy clients).  ``latest`` stands for ``v1``.
    """
    ranges = _parse(accept) if accept else []
    if not ranges:  # no header, or one that names no media range at all (", ,")
        return "text/html"
    best, best_key = None, (0.0, -1, -1)
    for index, offer in enumerate(_OFFERS):
        quality, specificity = _quality(offer, ranges)
        if quality <= 0:
            continue
        preference = -index if specificity == 2 else index
        key = (quality, specificity, preference)
        if key > best_key:
            best, best_key = offer, key
    return best
