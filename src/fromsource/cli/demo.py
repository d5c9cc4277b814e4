"""``fromsource demo``: the main job on the embedded default, end to end.

Builds a small real set of packages from their upstream sdists (one with a C
extension), remediates flask 2.0.0 when asked, creates a pull token, prints
how to point pip and uv at the index, and serves it until interrupted.
"""

from __future__ import annotations

import click

from fromsource.build.batch import build_many
from fromsource.build.pipeline import BuildContext
from fromsource.cli.common import EXIT_ERROR, err, handle_errors, settings_from
from fromsource.store.tokens import create_token, parse_lifetime

DEMO_PACKAGES = ("iniconfig==2.0.0", "six==1.16.0", "idna==3.10", "markupsafe==3.0.2")
"""Small and quick: flit, setuptools and a C extension (markupsafe)."""


@click.command(help="Build a small real set from source, create a token, print client settings, serve.")
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--package", "packages", multiple=True, help=f"Instead of {', '.join(DEMO_PACKAGES)}.")
@click.option("--jobs", default=2, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Build and print, then exit.")
@click.option("--upstream", help="Upstream simple index (default: pip's configured index).")
@click.pass_context
@handle_errors
def demo(
    ctx: click.Context, port: int, packages: tuple[str, ...], jobs: int, no_serve: bool, upstream: str | None
) -> None:
    settings = settings_from(ctx)
    build_ctx = BuildContext.from_settings(settings, upstream=upstream)
    try:
        err.print(f"[bold]Building from source[/] into {settings.data_dir} ...")
        outcomes = build_many(
            build_ctx,
            list(packages or DEMO_PACKAGES),
            with_deps=True,
            jobs=jobs,
            progress=lambda e: err.print(f"  {e.project} {e.version}: {e.state} {e.message}")
            if e.step == "" else None,
        )
        failed = [o for o in outcomes if o.status == "failed"]
        token = create_token(
            build_ctx.db,
            org="demo",
            repos=["python", "python-remediated", "python-all"],
            lifetime=parse_lifetime("30d"),
            description="fromsource demo",
        )
    finally:
        build_ctx.close()
    built = [o for o in outcomes if o.status in ("succeeded", "skipped")]
    user = token.info.id
    url_user = user.replace("/", "_")
    base = f"http://127.0.0.1:{port}"
    click.echo(f"\nBuilt {len(built)} of {len(outcomes)} packages from source.")
    for outcome in outcomes:
        click.echo(f"  {outcome.status:<9} {outcome.project}=={outcome.version}  {outcome.wheel or outcome.message}")
    click.echo(f"\nPull token (shown once): {user}")
    click.echo("\nPoint pip at it:")
    click.echo(f"  pip install --index-url {base.replace('://', f'://{url_user}:<secret>@')}/python-all/simple/ six")
    click.echo("Point uv at it (pyproject.toml):")
    click.echo(
        f'  [[tool.uv.index]]\n  name = "fromsource"\n  url = "{base}/python-all/simple/"\n'
        '  default = true\n  authenticate = "always"\n'
        f"  # and export UV_INDEX_FROMSOURCE_USERNAME={user} UV_INDEX_FROMSOURCE_PASSWORD=<secret>"
    )
    click.echo("Or write the configuration: fromsource setup pip|uv|poetry|pdm|netrc --index " + base + "/")
    click.echo(f"Check an environment afterwards: fromsource verify .venv/ --index {base}/")
    err.print(f"\nsecret for {user}: {token.secret}")
    if failed:
        err.print(f"[yellow]{len(failed)} build(s) failed; `fromsource builds list` shows why.[/]")
    if no_serve:
        ctx.exit(EXIT_ERROR if failed and not built else 0)
    from fromsource.cli.serve import serve

    ctx.invoke(serve, host="127.0.0.1", port=port, workers=1, anonymous_repos=(), build_on_demand=False,
               upstream=upstream, log_level="warning", server="granian")
