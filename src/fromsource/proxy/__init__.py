"""The upstream fallback: ``python-upstream`` and following new upstream releases (issue 15).

:mod:`.offers` is pure (which upstream files pass policy, which the index's
own files shadow, which new releases ``follow`` queues); :mod:`.source`
fetches and caches upstream pages and files (blobs, ``files`` rows of the
``python-upstream`` repository); :mod:`.follow` queues builds of new
releases.  docs/policy.md describes the behaviour.
"""

from fromsource.proxy.offers import Offer, Release, decide_file, new_releases, offers, shadowed

__all__ = ["Offer", "Release", "decide_file", "new_releases", "offers", "shadowed"]
