"""Content negotiation for the simple API (PEP 691), with q-values.

Pure: ``choose(accept_header)`` returns the media type to serve, or None
when the client accepts nothing we can send (the route answers 406).
"""

from __future__ import annotations

from fromsource.index.pages import HTML_TYPE, JSON_TYPE

_OFFERS = (JSON_TYPE, HTML_TYPE, "text/html")
# When the client rates several of ours equally, the server's preference
# (the order above) decides, as PEP 691 recommends.


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
                quality = min(max(quality, 0.0), 1.0)
        ranges.append((media, quality))
    return ranges


def _quality(offer: str, ranges: list[tuple[str, float]]) -> float:
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
    return best[1]


def choose(accept: str | None) -> str | None:
    """The media type to answer with for this ``Accept`` header, or None (406).

    A missing or empty header means ``text/html`` (PEP 691: legacy clients).
    """
    if not accept or not accept.strip():
        return "text/html"
    ranges = _parse(accept)
    best, best_q = None, 0.0
    for offer in _OFFERS:
        quality = _quality(offer, ranges)
        if quality > best_q:
            best, best_q = offer, quality
    return best
