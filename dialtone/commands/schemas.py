"""``dialtone schemas``: the integrator contract, generated from the event classes.

Rewrites docs/schemas/*.schema.json, docs/asyncapi.yaml and the generated
blocks of docs/events.md (streams/schemas.py); ``--check`` exits 1 while a
file is stale. Either way it refuses a breaking change to an event type whose
class_version did not go up (docs/events.md, "Versioning").
"""

from __future__ import annotations

from pathlib import Path

import click

from streams.schemas import DOCS, ContractBroken, generate, stale


@click.command("schemas")
@click.option("--check", is_flag=True, help="Only check the committed files are current.")
@click.option("--docs", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=DOCS, show_default=True, help="The docs directory to write.")
def command(check: bool, docs: Path) -> None:
    """Generate the topics' JSON Schemas, AsyncAPI document and event docs."""
    try:
        outdated = list(stale(docs))
        if check:
            if outdated:
                raise click.ClickException(
                    "not current (run `dialtone schemas`): " + ", ".join(map(str, outdated)))
            return
        for path, text in generate(docs).items():
            if path in outdated:
                path.write_text(text)
                click.echo(f"wrote {path}")
    except ContractBroken as error:
        raise click.ClickException(str(error)) from error
