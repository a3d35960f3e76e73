"""`dialtone tenants zone` changes a tenant that exists, and makes one only when told."""

from __future__ import annotations

import psycopg
import pytest
from click.testing import CliRunner, Result

from dialtone.cli import cli
from dialtone.commands import register

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

register(cli)


def _zone(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["tenants", "zone", *args], env={"DATABASE_URL": database_url})


def _tenants(database_url: str) -> dict[str, str]:
    with psycopg.connect(database_url) as conn:
        return dict(conn.execute("SELECT id, time_zone FROM tenants").fetchall())


def test_a_mistyped_tenant_is_refused_not_made(database_url: str) -> None:
    assert _zone(database_url, "acme", "Europe/Brussels", "--create").exit_code == 0

    mistyped = _zone(database_url, "acmee", "Europe/Paris")

    assert mistyped.exit_code == 1
    assert "no tenant acmee" in mistyped.output
    assert _tenants(database_url) == {"acme": "Europe/Brussels"}
    moved = _zone(database_url, "acme", "Europe/Paris")
    assert moved.exit_code == 0, moved.output
    assert _tenants(database_url) == {"acme": "Europe/Paris"}


def test_an_id_no_tenant_could_have_is_an_error_not_a_traceback(database_url: str) -> None:
    for args in (("Bad Id", "UTC"), ("Bad Id", "UTC", "--create")):
        refused = _zone(database_url, *args)
        assert refused.exit_code == 1, refused.output
        assert isinstance(refused.exception, SystemExit)  # a ClickException, not InvalidName
        assert "a tenant is a lowercase slug" in refused.output
    assert _tenants(database_url) == {}
