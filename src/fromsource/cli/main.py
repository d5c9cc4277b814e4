"""The ``fromsource`` command: the root group and the registration of every command."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fromsource import __version__
from fromsource.cli.common import EXIT_CODES_HELP
from fromsource.config import Settings


@click.group(
    help="fromsource: a Python package index whose every wheel was built from source.\n\n"
    + EXIT_CODES_HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="fromsource")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar="FROMSOURCE_DATA_DIR",
    help="Folder for the embedded database, blobs and keys "
    "[env FROMSOURCE_DATA_DIR; default ~/.local/share/fromsource].",
)
@click.option(
    "--database-url",
    envvar="FROMSOURCE_DATABASE_URL",
    help="SQLAlchemy URL (default: SQLite in the data dir) [env FROMSOURCE_DATABASE_URL].",
)
@click.option(
    "--blob-url",
    envvar="FROMSOURCE_BLOB_URL",
    help="Blob store: file:///path or s3://bucket/prefix (default: the data dir) "
    "[env FROMSOURCE_BLOB_URL].",
)
@click.option(
    "--broker-url",
    envvar="FROMSOURCE_BROKER_URL",
    help="Celery broker, redis://host:6379/0: serve sends builds to `fromsource worker` "
    "(default: build in-process) [env FROMSOURCE_BROKER_URL].",
)
@click.pass_context
def cli(
    ctx: click.Context,
    data_dir: Path | None,
    database_url: str | None,
    blob_url: str | None,
    broker_url: str | None,
) -> None:
    overrides: dict[str, object] = {}
    if broker_url:
        overrides["broker_url"] = broker_url
    if data_dir is not None:
        overrides["data_dir"] = data_dir.resolve()
    if database_url:
        overrides["database_url"] = database_url
    if blob_url:
        overrides["blob_url"] = blob_url
    ctx.obj = Settings(**overrides)  # type: ignore[arg-type]


def _register() -> None:
    # Registration block: one line per command module.
    from fromsource.cli import db, publish, serve, tokens

    cli.add_command(serve.serve)
    cli.add_command(tokens.token)
    cli.add_command(publish.publish)
    cli.add_command(publish.yank)
    cli.add_command(db.db)
    for module, names in (
        ("fromsource.cli.build", ("build", "rebuild", "builds")),
        ("fromsource.cli.verify", ("verify",)),
        ("fromsource.cli.remediate", ("advisories", "remediate")),
        ("fromsource.cli.setup", ("setup",)),
        ("fromsource.cli.lock", ("lock",)),
        ("fromsource.cli.demo", ("demo",)),
        ("fromsource.cli.worker", ("worker",)),
        ("fromsource.cli.workers", ("workers",)),
        ("fromsource.cli.fsck", ("fsck",)),
        ("fromsource.cli.keys", ("keys",)),
        ("fromsource.cli.targets", ("targets",)),
        ("fromsource.cli.policy", ("policy",)),
        ("fromsource.cli.follow", ("follow",)),
        ("fromsource.cli.adopt", ("adopt",)),
    ):
        _optional(module, names)


def _optional(module: str, names: tuple[str, ...]) -> None:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return
    for name in names:
        command = getattr(mod, name, None)
        if isinstance(command, click.Command):
            cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with *argv* in-process; returns the exit code."""
    try:
        # With standalone_mode=False, click returns ctx.exit(n)'s code as the result.
        result = cli.main(args=argv, prog_name="fromsource", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return 2
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 2
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
