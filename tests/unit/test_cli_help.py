"""Every command and option of the ``dialtone`` console script says what it is for:
``--help`` is the operator's manual, so an option without help text is a gap."""

from __future__ import annotations

from collections.abc import Iterator

import click

from dialtone.cli import cli
from dialtone.commands import COMMANDS


def walk(group: click.Group, ctx: click.Context,
         path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command under `group` (loading the lazy ones through get_command), with
    its path from the root."""
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, (*path, name)
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from walk(command, click.Context(command, parent=ctx, info_name=name),
                            (*path, name))


def every_command() -> list[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(cli, info_name="dialtone")
    return [((), cli), *walk(cli, ctx)]


def test_the_walk_reaches_every_lazy_command_and_their_subcommands() -> None:
    paths = {path for path, _ in every_command()}
    assert {(name,) for name in COMMANDS} <= paths
    assert {("users", "add"), ("keys", "create"), ("grafana", "push"),
            ("export", "cdr")} <= paths


def test_every_command_has_help() -> None:
    missing = [" ".join(path) or "dialtone" for path, command in every_command()
               if not (command.help or command.short_help or "").strip()]
    assert not missing, f"commands without help: {missing}"


def test_every_option_has_help() -> None:
    missing = [
        f"{' '.join(path) or 'dialtone'} {param.opts[0]}"
        for path, command in every_command()
        for param in command.params
        if isinstance(param, click.Option) and param.name != "help"
        and not (param.help or "").strip()]
    assert not missing, f"options without help: {missing}"
