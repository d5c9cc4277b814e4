"""The CLI root: help everywhere, exit codes carried through main()."""

from __future__ import annotations

import click
import pytest

from fromsource.cli.main import cli, main


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
    return found


@pytest.mark.parametrize("path", _commands(cli))
def test_every_command_has_help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*path, "--help"]) == 0
    assert "Usage:" in capsys.readouterr().out


def test_exit_code_of_ctx_exit_is_returned() -> None:
    @cli.command("_exit_probe", hidden=True)
    @click.pass_context
    def probe(ctx: click.Context) -> None:
        ctx.exit(1)

    try:
        assert main(["_exit_probe"]) == 1
    finally:
        del cli.commands["_exit_probe"]


def test_usage_error_is_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "create", "--expires"]) == 2
    assert main(["no-such-command"]) == 2
