"""The one way to talk to a simple index (PEP 503 HTML, PEP 691 JSON).

:class:`IndexClient` does the HTTP (or ``file:``) access: credentials bound
to the index's origin, retries with backoff, timeouts, byte caps and the
link rules of :mod:`~fromsource.indexclient.links`.  :mod:`.pages` parses
project pages into :class:`ProjectPage` values; :mod:`.credentials` finds
the credentials a client command uses.  This package depends only on
:mod:`fromsource.dist.names` and :mod:`fromsource.errors`, so ``verify`` and
``lock`` run without the builder.
"""

from fromsource.indexclient.client import (
    TRANSIENT,
    Answer,
    ClientOptions,
    IndexClient,
    OriginAuth,
    refusal,
)
from fromsource.indexclient.credentials import (
    CREDENTIALS_HINT,
    Credentials,
    IndexURL,
    default_netrc,
    resolve_credentials,
    split_index_url,
)
from fromsource.indexclient.links import link_allowed, redact, refused_link
from fromsource.indexclient.pages import (
    ACCEPT,
    HTML_TYPE,
    JSON_TYPE,
    ProjectFile,
    ProjectPage,
    parse_html_page,
    parse_json_page,
    parse_page,
)
from fromsource.indexclient.transfer import MAX_DOWNLOAD_BYTES, MAX_PAGE_BYTES

__all__ = [
    "ACCEPT",
    "CREDENTIALS_HINT",
    "HTML_TYPE",
    "JSON_TYPE",
    "MAX_DOWNLOAD_BYTES",
    "MAX_PAGE_BYTES",
    "TRANSIENT",
    "Answer",
    "ClientOptions",
    "Credentials",
    "IndexClient",
    "IndexURL",
    "OriginAuth",
    "ProjectFile",
    "ProjectPage",
    "default_netrc",
    "link_allowed",
    "parse_html_page",
    "parse_json_page",
    "parse_page",
    "redact",
    "refusal",
    "refused_link",
    "resolve_credentials",
    "split_index_url",
]
