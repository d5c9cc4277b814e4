"""``fromsource serve``: run the index.

The serve process supervises the server's worker processes; they stop when
it stops, however it stops (:mod:`fromsource.index.lifeline`).  At start it
closes builds left open by killed processes (:mod:`fromsource.build.lost`).
"""

from __future__ import annotations

import os

import click

from fromsource.cli.common import handle_errors, recover_lost_builds, settings_from


@click.command(help="Serve the index (simple API, files, management API, web UI).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port (0 picks a free one).")
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes.")
@click.option(
    "--anonymous-repo",
    "anonymous_repos",
    multiple=True,
    help="Allow reading this repository without a token (repeatable; off by default).",
)
@click.option("--build-on-demand", is_flag=True, help="Queue a build when a missing project is asked for.")
@click.option(
    "--upstream",
    help="Upstream simple index for builds and python-upstream (default: pip's configured index).",
)
@click.option(
    "--follow-interval",
    type=click.FloatRange(min=0),
    help="Run `follow` every this many seconds: queue builds of new upstream releases past "
    "their cooldown (0: off, the default; docs/policy.md).",
)
@click.option("--log-level", default="info", show_default=True)
@click.option(
    "--server",
    type=click.Choice(["granian", "uvicorn"]),
    default="granian",
    show_default=True,
    help="HTTP server (granian measured ~2.8x uvicorn on cached pages: bench/README.md).",
)
@click.pass_context
@handle_errors
def serve(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int,
    anonymous_repos: tuple[str, ...],
    build_on_demand: bool,
    upstream: str | None,
    follow_interval: float | None,
    log_level: str,
    server: str,
) -> None:
    settings = settings_from(ctx).model_copy(
        update={
            "anonymous_repos": list(anonymous_repos) or settings_from(ctx).anonymous_repos,
            "build_on_demand": build_on_demand or settings_from(ctx).build_on_demand,
            "upstream": upstream or settings_from(ctx).upstream,
            "follow_interval": settings_from(ctx).follow_interval
            if follow_interval is None
            else follow_interval,
        }
    )
    settings.check_repos()
    # Workers import the app factory, so hand the settings over as environment.
    os.environ["FROMSOURCE_DATA_DIR"] = str(settings.data_dir)
    for key, value in (
        ("FROMSOURCE_DATABASE_URL", settings.database_url),
        ("FROMSOURCE_BLOB_URL", settings.blob_url),
        ("FROMSOURCE_UPSTREAM", settings.upstream),
        ("FROMSOURCE_BROKER_URL", settings.broker_url),
    ):
        if value:
            os.environ[key] = value
    os.environ["FROMSOURCE_ANONYMOUS_REPOS"] = __import__("json").dumps(settings.anonymous_repos)
    os.environ["FROMSOURCE_BUILD_ON_DEMAND"] = "1" if settings.build_on_demand else "0"
    os.environ["FROMSOURCE_FOLLOW_INTERVAL"] = str(settings.follow_interval)
    from fromsource.index.app import create_app
    from fromsource.index.lifeline import mark_supervisor
    from fromsource.store.db import open_database

    create_app(settings)  # migrate and create the key once, before workers race for it
    db = open_database(settings.resolved_database_url, migrate=False)
    try:
        recover_lost_builds(db, settings, "serve")
    finally:
        db.dispose()
    mark_supervisor()  # its workers stop when this process dies, even by kill -9
    click.echo(f"fromsource serving {settings.data_dir} on http://{host}:{port}/", err=True)
    target = "fromsource.index.app:create_app_from_env"
    if server == "uvicorn":
        import uvicorn

        uvicorn.run(
            target, factory=True, host=host, port=port, workers=workers, log_level=log_level,
            loop="uvloop", http="httptools", access_log=False, server_header=False,
        )
        return
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    Granian(
        target, address=host, port=port, workers=workers, interface=Interfaces.ASGI,
        factory=True, log_level=LogLevels(log_level), respawn_failed_workers=True,
    ).serve()
