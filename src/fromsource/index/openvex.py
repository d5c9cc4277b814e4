"""HTTP routes of the OpenVEX feed: what each remediated version fixes.

``/openvex/v1/all.json`` and ``/openvex/v1/pypi/<project>.openvex.json``.
The feed reveals what ``python-remediated`` holds, so it needs the same
entitlement as that repository (or that repository being anonymous).
Documents are built once per change of the store and served from memory.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import Response

from fromsource.dist.names import normalize
from fromsource.index.api import authorize
from fromsource.index.state import IndexState
from fromsource.remediate.feed import published_releases
from fromsource.remediate.openvex import openvex_document, remediation_statements
from fromsource.remediate.store import all_advisories

_MEDIA = "application/json"
_AUTHOR = "fromsource"


def install(api: FastAPI, state: IndexState) -> None:
    """Register the OpenVEX routes on *api*."""
    cache: dict[tuple[int, str | None], bytes] = {}

    def document(project: str | None) -> bytes:
        key = (state.generation, project)
        if key not in cache:
            if len(cache) > 1000:
                cache.clear()
            releases = published_releases(
                state.db, state.blobs, project=project, series_root=state.settings.series_root
            )
            statements = remediation_statements(releases, all_advisories(state.db))
            doc = openvex_document(
                statements,
                now=datetime.now(UTC),
                author=_AUTHOR,
                version=max(state.generation, 1),
                project=project,
            )
            cache[key] = json.dumps(doc, indent=1).encode()
        return cache[key]

    def check(request: Request) -> None:
        authorize(
            state,
            request,
            lambda header: state.auth.check_repo(header, "python-remediated"),
            challenge="send a pull token for python-remediated with HTTP Basic auth",
            forbidden="this token has no access to python-remediated",
        )

    @api.get("/openvex/v1/all.json", summary="OpenVEX: every vulnerability our remediated versions fix")
    def openvex_all(request: Request) -> Response:
        check(request)
        return Response(document(None), media_type=_MEDIA)

    @api.get(
        "/openvex/v1/pypi/{filename}",
        summary="OpenVEX for one project (<project>.openvex.json)",
    )
    def openvex_project(request: Request, filename: str) -> Response:
        check(request)
        if not filename.endswith(".openvex.json"):
            raise HTTPException(404, "use /openvex/v1/pypi/<project>.openvex.json")
        project = normalize(filename[: -len(".openvex.json")])
        return Response(document(project), media_type=_MEDIA)
