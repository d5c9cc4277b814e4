"""The upstream fallback: ``python-upstream`` and following new upstream releases (issue 15).

:mod:`.offers` is pure (which upstream files pass policy, which the index's
own files shadow, which releases ``follow`` and build-on-demand queue); :mod:`.source`
fetches and caches upstream pages and files (blobs, ``files`` rows of the
``python-upstream`` repository); :mod:`.follow` queues builds of new
releases.  docs/policy.md describes the behaviour.
"""

from fromsource.proxy.offers import (
    Demand,
    Offer,
    Release,
    decide_file,
    new_releases,
    offers,
    on_demand,
    releases,
    shadowed,
)

__all__ = [
    "Demand",
    "Offer",
    "Release",
    "decide_file",
    "new_releases",
    "offers",
    "on_demand",
    "releases",
    "shadowed",
]
