"""Subcommands of the ``dialtone`` console script, one module each.

The console script loads only the module of the command it runs (``LazyGroup``
in dialtone/cli.py, click's documented lazy-loading pattern): importing every
subcommand pulls FastAPI, pjsua2, Faust, Kafka, grafana-client and more, about
2.5 s of CPU per process start, and the platform (and its tests) start many
single-purpose processes (relay, worker, router, b2bua, ...).
"""

from __future__ import annotations

import importlib

import click

# Command name -> the module exposing it as ``command`` (a click command or group).
COMMANDS: dict[str, str] = {
    "up": "dialtone.commands.up",
    "migrate": "dialtone.commands.migrate",
    "api": "dialtone.commands.api",
    "dev": "dialtone.commands.dev",
    "relay": "dialtone.commands.relay",
    "worker": "dialtone.commands.worker",
    "router": "dialtone.commands.router",
    "rebuild": "dialtone.commands.rebuild",
    "replay": "dialtone.commands.replay",
    "b2bua": "dialtone.commands.b2bua",
    "demo": "dialtone.commands.demo",
    "users": "dialtone.commands.users",
    "keys": "dialtone.commands.keys",
    "tenants": "dialtone.commands.tenants",
    "backup": "dialtone.commands.backup",
    "restore": "dialtone.commands.restore",
    "grafana": "dialtone.commands.grafana",
    "schemas": "dialtone.commands.schemas",
    "webhooks": "dialtone.commands.webhooks",
    "export": "dialtone.commands.export",
    "recordings": "dialtone.commands.recordings",
    "registrations": "dialtone.commands.registrations",
}
COMMAND_MODULES = tuple(COMMANDS.values())


def load(name: str) -> click.Command:
    """Import the module of command ``name`` and return its command."""
    command = importlib.import_module(COMMANDS[name]).command
    if not isinstance(command, click.Command) or command.name != name:
        raise RuntimeError(f"{COMMANDS[name]}.command is not the {name!r} command")
    return command


def register(group: click.Group) -> None:
    """Add every subcommand to ``group`` now (tests that walk all commands)."""
    for name in COMMANDS:
        group.add_command(load(name))


class LazyGroup(click.Group):
    """A group whose subcommands are imported when they are looked up: running
    ``dialtone relay`` imports dialtone.commands.relay only. ``dialtone --help``
    still lists every command (with its short help), loading them all."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in COMMANDS:
            command = load(cmd_name)
            self.add_command(command)
        return command
