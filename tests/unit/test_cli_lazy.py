"""The console script imports only the subcommand it runs (dialtone.commands.LazyGroup),
and its help still lists every command."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from dialtone.cli import cli
from dialtone.commands import COMMANDS, load

# What a command's process imports, checked in a fresh interpreter: `dialtone <name>
# --help` runs the group callback (logs, settings, tracing) and loads the command.
PROBE = """
import json, sys
from dialtone.cli import cli
try:
    cli([sys.argv[1], "--help"], prog_name="dialtone")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""
# What only some processes need (the import-linter contract in pyproject.toml keeps
# the API out of every process that does not serve it; this checks it at run time).
HEAVY_ELSEWHERE = ("fastapi", "api", "dialtone.bootstrap", "faust", "pjsua2", "grafana_client")


def imported_by(command: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE, command], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    return set(json.loads(out.splitlines()[-1]))


def roots(modules: set[str]) -> set[str]:
    return modules | {m.split(".", 1)[0] for m in modules}


@pytest.mark.parametrize("command", ["relay", "worker", "b2bua", "webhooks"])
def test_a_process_imports_its_command_only_and_not_the_api(command: str) -> None:
    modules = imported_by(command)
    assert COMMANDS[command] in modules
    assert not {m for m in COMMANDS.values() if m != COMMANDS[command]} & modules
    needs = {"worker": {"faust"}, "b2bua": {"pjsua2"}}.get(command, set())
    assert set(HEAVY_ELSEWHERE) & roots(modules) == needs


def test_help_lists_every_command_with_its_short_help() -> None:
    result = CliRunner().invoke(cli, ["--help"], prog_name="dialtone")
    assert result.exit_code == 0, result.output
    listed = result.output.split("Commands:", 1)[1]
    for name in COMMANDS:
        short = load(name).get_short_help_str(limit=45).removesuffix("...")
        line = next(line for line in listed.splitlines() if line.split()[:1] == [name])
        assert short[:30] in " ".join(line.split()), (name, line)


def test_every_module_exposes_the_command_it_is_listed_as() -> None:
    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        assert command.name == name
    assert cli.get_command(ctx, "no-such-command") is None
