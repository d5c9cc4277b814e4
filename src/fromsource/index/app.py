"""Assembling the server: state, the hot-path simple app, the API, public routes.

``create_app(settings)`` is what ``fromsource serve`` and the tests run;
``create_app_from_env()`` is the factory server workers import (settings
come from ``FROMSOURCE_*`` variables set by ``serve``).
"""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp

from fromsource import __version__
from fromsource.config import Settings
from fromsource.index.api import make_api
from fromsource.index.lifeline import bind_to_supervisor
from fromsource.index.simple import SimpleApp
from fromsource.index.state import IndexState
from fromsource.provenance.keys import keys_document
from fromsource.provenance.keystore import load_or_create_signing_key, published_keys
from fromsource.store.blobs import open_blob_store
from fromsource.store.db import open_database

public = APIRouter()


def _index(request: Request) -> IndexState:
    state: IndexState = request.app.state.index
    return state


@public.get("/healthz", summary="Liveness and database reachability")
def healthz(request: Request) -> JSONResponse:
    state = _index(request)
    try:
        generation = state.db.generation()
    except Exception as exc:  # noqa: BLE001 - report any database failure as unhealthy
        return JSONResponse({"status": "error", "database": type(exc).__name__}, status_code=503)
    return JSONResponse({"status": "ok", "version": __version__, "generation": generation})


@public.get("/metrics", summary="Prometheus text metrics (this process)")
def metrics(request: Request) -> PlainTextResponse:
    state = _index(request)
    lines = [
        "# HELP fromsource_requests_total Simple-API requests by area and status.",
        "# TYPE fromsource_requests_total counter",
    ]
    for (area, status), count in sorted(state.metrics.requests.items()):
        lines.append(f'fromsource_requests_total{{area="{area}",status="{status}"}} {count}')
    lines += [
        "# HELP fromsource_generation Change counter this process serves.",
        "# TYPE fromsource_generation gauge",
        f"fromsource_generation {state.generation}",
        "# HELP fromsource_uptime_seconds Seconds since this process started.",
        "# TYPE fromsource_uptime_seconds gauge",
        f"fromsource_uptime_seconds {time.time() - state.metrics.started:.0f}",
    ]
    for source in state.metrics.sources:
        lines += source()
    lines.append("")
    return PlainTextResponse("\n".join(lines), media_type="text/plain; version=0.0.4")


@public.get("/.well-known/fromsource/keys.json", summary="Public keys that sign attestations")
def keys(request: Request) -> Response:
    state = _index(request)
    current = state.signing_key.keyid if state.signing_key else None
    body = json.dumps(keys_document(published_keys(state.settings.key_dir), current), indent=1)
    return Response(body, media_type="application/json", headers={"cache-control": "max-age=300"})


def create_app(settings: Settings) -> ASGIApp:
    """The whole ASGI application for *settings* (migrates the database first)."""
    settings.check_repos()
    db = open_database(settings.resolved_database_url)
    blobs = open_blob_store(settings.resolved_blob_url)
    signing_key = load_or_create_signing_key(settings.key_dir)
    state = IndexState(settings, db, blobs, signing_key, poll_interval=settings.poll_interval)
    api = make_api(state)
    api.include_router(public)
    _extend(api, state)
    app = SimpleApp(state, api)
    app.state = state
    return app


def _extend(api: object, state: IndexState) -> None:
    """Attach optional parts (web UI, OpenVEX, build-on-demand) when present."""
    import importlib

    for module in (
        "fromsource.index.ui",
        "fromsource.index.openvex",
        "fromsource.index.ondemand",
        "fromsource.index.policy_api",
        "fromsource.index.follow",
    ):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        mod.install(api, state)


def create_app_from_env() -> ASGIApp:
    """Factory for server workers (granian, uvicorn): settings from the environment.

    A worker started by ``fromsource serve`` first binds its life to the
    serve process (:mod:`fromsource.index.lifeline`).
    """
    bind_to_supervisor()
    return create_app(Settings())
