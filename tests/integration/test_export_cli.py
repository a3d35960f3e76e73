"""`dialtone export` as an operator runs it: a report's bare dates are the tenant's own
days, a tenant that does not exist is refused, and `--output` is written whole or not
at all (on the morning of test_callcentre_projections, in a Brussels tenant)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dialtone.cli import cli
from dialtone.commands import register
from tests.integration.morning_support import morning_database

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: runs with the parallel ones

register(cli)


@pytest.fixture(scope="module")
def brussels(pg_admin_dsn: str) -> Iterator[str]:
    """The morning (2025-03-01, 09:00 UTC, 10:00 in Brussels) projected, tenant `default`
    in Europe/Brussels."""
    with morning_database(pg_admin_dsn, buckets=True, time_zone="Europe/Brussels") as url:
        yield url


def _dialtone(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"DATABASE_URL": database_url})


def _report(database_url: str, path: Path, since: str, until: str) -> list[dict[str, str]]:
    result = _dialtone(database_url, "export", "reports", "--interval", "1d", "--from", since,
                       "--to", until, "--output", str(path))
    assert result.exit_code == 0, result.output
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_a_reports_bare_dates_are_the_tenants_local_days(brussels: str,
                                                         tmp_path: Path) -> None:
    first_of_march = _report(brussels, tmp_path / "march.csv", "2025-03-01", "2025-03-02")
    assert first_of_march, "the morning's queues"
    assert {(datetime.fromisoformat(r["since"]), datetime.fromisoformat(r["until"]))
            for r in first_of_march} == {(datetime(2025, 2, 28, 23, tzinfo=UTC),
                                          datetime(2025, 3, 1, 23, tzinfo=UTC))}
    # Read as UTC, 28 February's end (00:00 UTC) would fall in Brussels' 1 March.
    assert _report(brussels, tmp_path / "february.csv", "2025-02-28", "2025-03-01") == []
    # An offset still names its own instant.
    utc = _report(brussels, tmp_path / "utc.csv", "2025-02-28T00:00:00Z", "2025-03-01T00:00Z")
    assert {r["since"] for r in utc} == {r["since"] for r in first_of_march}


def test_a_tenant_that_does_not_exist_is_refused(brussels: str, tmp_path: Path) -> None:
    for export in ("cdr", "events", "reports"):
        path = tmp_path / f"{export}.csv"
        result = _dialtone(brussels, "export", export, "--from", "2025-03-01", "--to",
                           "2025-03-02", "--tenant", "nosuch", "--output", str(path))
        assert result.exit_code == 1, result.output
        assert "no tenant nosuch" in result.output
        assert list(tmp_path.iterdir()) == []


def test_an_output_in_a_missing_directory_is_an_error_not_a_traceback(
        brussels: str, tmp_path: Path) -> None:
    result = _dialtone(brussels, "export", "cdr", "--from", "2025-03-01", "--to",
                       "2025-03-02", "--output", str(tmp_path / "no" / "such.csv"))
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert f"cannot write {tmp_path / 'no' / 'such.csv'}" in result.output
    assert "No such file or directory" in result.output


def test_a_failed_export_leaves_the_earlier_file_as_it_was(brussels: str,
                                                           tmp_path: Path) -> None:
    earlier = tmp_path / "cdrs.csv"
    earlier.write_text("yesterday's export\n")
    unreachable = "postgresql://postgres@127.0.0.1:1/dialtone"
    failed = _dialtone(unreachable, "export", "cdr", "--from", "2025-03-01", "--to",
                       "2025-03-02", "--output", str(earlier))
    assert isinstance(failed.exception, OSError)  # main() names it: test_cli_unreachable
    assert earlier.read_text() == "yesterday's export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cdrs.csv"]  # no cdrs.csv.tmp left
    refused = _dialtone(brussels, "export", "cdr", "--from", "2025-03-01", "--to",
                        "2025-03-02", "--output", str(earlier), "--tenant", "nosuch")
    assert refused.exit_code == 1
    assert earlier.read_text() == "yesterday's export\n"
    assert [p.name for p in tmp_path.iterdir()] == ["cdrs.csv"]

    written = _dialtone(brussels, "export", "cdr", "--from", "2025-03-01", "--to",
                        "2025-03-02", "--output", str(earlier))
    assert written.exit_code == 0, written.output
    assert earlier.read_text().startswith("call_id,started_at,")
    assert [p.name for p in tmp_path.iterdir()] == ["cdrs.csv"]
