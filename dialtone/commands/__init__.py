"""Subcommands of the ``dialtone`` console script, one module each."""

from __future__ import annotations

import importlib

import click

# Each module exposes ``command`` (a click command or group).
COMMAND_MODULES = (
    "dialtone.commands.up",
    "dialtone.commands.migrate",
    "dialtone.commands.api",
    "dialtone.commands.dev",
    "dialtone.commands.relay",
    "dialtone.commands.worker",
    "dialtone.commands.router",
    "dialtone.commands.rebuild",
    "dialtone.commands.b2bua",
    "dialtone.commands.demo",
    "dialtone.commands.users",
    "dialtone.commands.keys",
    "dialtone.commands.tenants",
    "dialtone.commands.backup",
    "dialtone.commands.restore",
    "dialtone.commands.grafana",
    "dialtone.commands.schemas",
    "dialtone.commands.webhooks",
)


def register(group: click.Group) -> None:
    for name in COMMAND_MODULES:
        group.add_command(importlib.import_module(name).command)
