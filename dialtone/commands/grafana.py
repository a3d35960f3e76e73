"""``dialtone grafana``: the dashboards as code (dialtone/grafana).

- ``write`` regenerates infra/grafana/dashboards/*.json (what the compose stack's
  Grafana provisions); ``--check`` exits 1 while the committed files are stale.
- ``push`` sends them to an existing Grafana with grafana-client: it creates the
  folder if missing and saves each dashboard with ``overwrite`` (same uid, new
  version), so running it again changes nothing but the version. It warns when
  the Grafana lacks a datasource uid the panels read.
- ``reader`` creates (or updates) the database role Grafana's PostgreSQL
  datasource logs in as, which reads the dashboards' tables only
  (dialtone/grafana/reader.py); its password from DIALTONE_GRAFANA_DB_PASSWORD.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import psycopg
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from dialtone.database import resolve_dsn
from dialtone.grafana import files
from dialtone.grafana.dashboards import POSTGRES, PROMETHEUS, render
from dialtone.grafana.reader import DASHBOARD_TABLES, DEFAULT_ROLE, TENANT_COLUMNS, grant_reader
from dialtone.settings import Settings

DEFAULT_FOLDER_UID = "dialtone"


@click.group("grafana")
def command() -> None:
    """Grafana dashboards: write the provisioned files or push them to a Grafana."""


@command.command("write")
@click.option("--check", is_flag=True, help="Only check the committed files are up to date.")
@click.option("--directory", type=click.Path(file_okay=False, path_type=Path),
              default=files.DASHBOARDS_DIR, show_default=True,
              help="Directory of the dashboard JSON files to write (or, with --check, to "
              "compare); JSON files the code no longer makes are removed from it.")
def write(check: bool, directory: Path) -> None:
    """Generate infra/grafana/dashboards/*.json from dialtone/grafana."""
    if check:
        stale = files.stale(directory)
        if stale:
            raise click.ClickException(
                "stale, run `dialtone grafana write`: " + ", ".join(p.name for p in stale))
        click.echo("dashboards up to date")
        return
    for path in files.write(directory):
        click.echo(f"wrote {path}")


def _credential(token: str | None, user: str | None,
                password: str | None) -> str | tuple[str, str]:
    if token and (user or password):
        raise click.UsageError("give --token or --user/--password, not both")
    if token:
        return token
    if user and password:
        return (user, password)
    raise click.UsageError("give --token, or --user and --password")


def ensure_folder(api: GrafanaApi, uid: str, title: str) -> bool:
    """Create the folder unless it exists; True when it was created."""
    try:
        api.folder.get_folder(uid)
        return False
    except GrafanaClientError as error:
        if error.status_code != 404:
            raise
    api.folder.create_folder(title, uid=uid)
    return True


def missing_datasources(api: GrafanaApi) -> list[str]:
    """The datasource uids the dashboards read that this Grafana does not have."""
    missing = []
    for ref in (PROMETHEUS, POSTGRES):
        try:
            api.datasource.get_datasource_by_uid(ref.uid)
        except GrafanaClientError as error:
            if error.status_code != 404:
                raise
            missing.append(f"{ref.uid} ({ref.type_val})")
    return missing


def push_dashboards(api: GrafanaApi, folder_uid: str, folder_title: str) -> list[dict[str, Any]]:
    """Save every dashboard into the folder; Grafana's answers, in order."""
    ensure_folder(api, folder_uid, folder_title)
    return [api.dashboard.update_dashboard({
        "dashboard": model, "folderUid": folder_uid, "overwrite": True,
        "message": "dialtone grafana push"}) for model in render().values()]


@command.command("push")
@click.option("--url", required=True, envvar="GRAFANA_URL",
              help="Grafana's base URL, e.g. http://127.0.0.1:3000 (GRAFANA_URL).")
@click.option("--token", envvar="GRAFANA_TOKEN", default=None,
              help="A service account token (GRAFANA_TOKEN; prefer the variable).")
@click.option("--user", envvar="GRAFANA_USER", default=None, help="Basic auth user.")
@click.option("--password", envvar="GRAFANA_PASSWORD", default=None,
              help="Basic auth password (GRAFANA_PASSWORD; prefer the variable).")
@click.option("--folder-uid", default=DEFAULT_FOLDER_UID, show_default=True,
              help="Uid of the Grafana folder the dashboards go into; made if missing.")
@click.option("--folder-title", default="dialtone", show_default=True,
              help="Title given to the folder when it is made (an existing folder keeps "
              "its title).")
@click.option("--timeout", type=float, default=10.0, show_default=True,
              help="Seconds to wait for each HTTP answer.")
def push(url: str, token: str | None, user: str | None, password: str | None,
         folder_uid: str, folder_title: str, timeout: float) -> None:
    """Create the folder and every dashboard in an existing Grafana (idempotent)."""
    api = GrafanaApi.from_url(url, credential=_credential(token, user, password),
                              timeout=timeout)
    missing = missing_datasources(api)
    if missing:  # saved all the same: the panels work once the datasources exist
        click.echo("warning: no datasource with uid " + ", ".join(missing) + " in this "
                   "Grafana; create them (docs/observability.md) for the panels to show data",
                   err=True)
    for answer in push_dashboards(api, folder_uid, folder_title):
        click.echo(f"{answer.get('uid')}\tversion {answer.get('version')}\t{answer.get('url')}")


@command.command("reader")
@click.option("--role", default=DEFAULT_ROLE, show_default=True,
              help="The login role Grafana's PostgreSQL datasource uses.")
@click.option("--password", envvar="DIALTONE_GRAFANA_DB_PASSWORD", default=None,
              help="Its password (DIALTONE_GRAFANA_DB_PASSWORD; prefer the variable: an "
                   "argument shows in the process list).")
@click.pass_context
def reader(ctx: click.Context, role: str, password: str | None) -> None:
    """Create or update the read-only role for Grafana (run after `dialtone migrate`):
    SELECT on the tables the dashboards read, nothing else (idempotent)."""
    if not password:
        raise click.UsageError("set DIALTONE_GRAFANA_DB_PASSWORD to the role's password")
    settings = ctx.obj if isinstance(ctx.obj, Settings) else Settings()
    with psycopg.connect(resolve_dsn(settings), autocommit=False) as conn:
        grant_reader(conn, role, password)
    click.echo(f"role {role} reads {', '.join(DASHBOARD_TABLES)} and "
               f"tenants ({', '.join(TENANT_COLUMNS)}), nothing else")
