"""``fromsource worker``: consume builds from the Celery broker (Redis) and publish them."""

from __future__ import annotations

import logging
import sys

import click

from fromsource.cli.build_options import SandboxOptions, sandbox_options
from fromsource.cli.common import (
    EXIT_CODES_HELP,
    EXIT_ERROR,
    handle_errors,
    recover_lost_builds,
    settings_from,
)
from fromsource.config import agree_level

__all__ = ["worker"]


@click.command(
    help="Run a build worker: take build requests from the Celery broker (Redis), build them "
    "in the sandbox and publish them into the shared database and blob store. Run one or "
    "more per build machine; a release is built by one worker at a time, and the build of a "
    "worker that dies is retried by another after --lease seconds. The worker builds for the "
    "interpreters it has (FROMSOURCE_PYTHONS, FROMSOURCE_BUILD_PYTHONS: see `fromsource "
    "targets`), advertises them in the database (`fromsource workers` lists them) and takes "
    "the builds of those targets only: a release's other targets go to the workers that have "
    "them.\n\n" + EXIT_CODES_HELP
)
@click.option(
    "--broker-url",
    envvar="FROMSOURCE_BROKER_URL",
    help="Redis URL, redis://host:6379/0 [env FROMSOURCE_BROKER_URL; or the global option].",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Builds this worker runs at the same time.",
)
@click.option(
    "--lease",
    type=click.FloatRange(0.5, 3600),
    default=60.0,
    show_default=True,
    help="Seconds a build's claim lives without a heartbeat (renewed every third).",
)
@click.option(
    "--visibility-timeout",
    type=click.FloatRange(1, 86400 * 7),
    default=3600.0,
    show_default=True,
    help="Seconds before Redis hands out an unacknowledged message again.",
)
@click.option(
    "--agree",
    type=click.IntRange(1, 2),
    default=None,
    help="Independent builds (by different workers) that must make the same wheel before it "
    "is published [default: FROMSOURCE_AGREE, else 2].",
)
@click.option("--log-level", default="info", show_default=True)
@sandbox_options
@click.pass_context
@handle_errors
def worker(
    ctx: click.Context,
    broker_url: str | None,
    concurrency: int,
    lease: float,
    visibility_timeout: float,
    agree: int | None,
    log_level: str,
    sandbox: SandboxOptions,
) -> None:
    settings = settings_from(ctx)
    url = broker_url or settings.broker_url
    if not url:
        click.echo(
            "error: no broker: pass --broker-url redis://host:6379/0 or set FROMSOURCE_BROKER_URL",
            err=True,
        )
        sys.exit(EXIT_ERROR)
    from fromsource.workers.celery_app import make_app, start_worker

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    make_app(url)  # reject a non-Redis URL before opening anything else
    build_ctx = sandbox.context(settings, agree=agree or agree_level(settings, fleet=True))
    build_ctx.tool()  # refuse early, with the message, when there is no sandbox
    recover_lost_builds(build_ctx.db, settings, "worker")
    names = ", ".join(f"{t.name} ({t.tag})" for t in build_ctx.build_targets())
    click.echo(
        f"fromsource worker: {concurrency} build(s) at a time from the broker; "
        f"{build_ctx.agree} independent build(s) must agree; build targets: {names}",
        err=True,
    )
    try:
        code = start_worker(
            build_ctx,
            url,
            concurrency=concurrency,
            lease_seconds=lease,
            visibility_timeout=visibility_timeout,
            loglevel=log_level.upper(),
            build_pythons=settings.build_pythons,
        )
    finally:
        build_ctx.close()
    sys.exit(code)
