"""``dialtone export cdr|events|reports --from --to --format csv|parquet [--output FILE]``.

The same queries and encoders as `GET /v1/exports/...` (api/exports.py): rows
come from a server-side cursor and are written batch by batch, so memory holds
one batch whatever the range; a progress bar counts the rows (on stderr, so
the file may go to stdout). Reports come from the interval reports' own read
(api/routes/reports.py), computed whole within its bounded range.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal

import asyncpg
import click
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from tqdm import tqdm

from api.db import open_pool
from api.exports import CDR_COLUMNS, EVENT_COLUMNS, MAX_RANGE, Columns, Format, columns_of, encode
from api.queries import cdrs as cdr_queries
from api.queries import events as event_queries
from api.queries.events import EventLog
from api.routes.reports import read_report
from api.schemas.reports import AgentReportRow, QueueReportRow
from application.identity.model import DEFAULT_TENANT
from dialtone.database import resolve_dsn
from dialtone.settings import Settings
from projections import interval_reports

Chunks = AsyncIterator[Sequence[Mapping[str, Any]]]


def _instant(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class DateOrInstant(click.ParamType):
    name = "instant"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return _instant(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or date-time (UTC if no offset)",
                      param, ctx)


def _options(func: Callable[..., None]) -> Callable[..., None]:
    for option in reversed((
        click.option("--from", "start", type=DateOrInstant(), required=True,
                     help="Start of the range (inclusive), e.g. 2026-03-01 or "
                     "2026-03-01T00:00:00+01:00 (UTC if no offset)."),
        click.option("--to", "end", type=DateOrInstant(), required=True,
                     help="End of the range (exclusive); at most 366 days after --from."),
        click.option("--format", "fmt", type=click.Choice([f.value for f in Format]),
                     default=Format.CSV.value, show_default=True,
                     help="File format: csv (a header row, then one row per record) or "
                     "parquet (Apache Parquet, columnar)."),
        click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
                     help="The file to write (default: standard output)."),
        click.option("--tenant", default=DEFAULT_TENANT, show_default=True,
                     help="Whose CDRs or events."),
    )):
        func = option(func)
    return func


@click.group("export")
def command() -> None:
    """Export CDRs or the event history as CSV or Parquet files."""


@command.command("cdr")
@_options
@click.pass_obj
def cdr(settings: Settings, start: datetime, end: datetime, fmt: str, output: Path | None,
        tenant: str) -> None:
    """Final CDRs whose start is in [--from, --to), by start time."""
    _check(start, end)
    wanted = cdr_queries.CdrFilter(tenant=tenant, start=start, end=end)

    async def total(db: asyncpg.Connection) -> int:
        query, args = cdr_queries.select(wanted)
        return int(await db.fetchval(f"SELECT count(*) FROM ({query}) q", *args))  # noqa: S608

    _run(settings, total, lambda db: cdr_queries.stream(db, wanted), CDR_COLUMNS, Format(fmt),
         output)


@command.command("events")
@_options
@click.option("--log", type=click.Choice([log.value for log in EventLog]),
              help="One notification log only (default: calls, then callcentre).")
@click.pass_obj
def events(settings: Settings, start: datetime, end: datetime, fmt: str, output: Path | None,
           tenant: str, log: str | None) -> None:
    """Events that occurred in [--from, --to), each log in store order."""
    _check(start, end)
    logs = (EventLog(log),) if log else tuple(EventLog)

    async def total(db: asyncpg.Connection) -> int:
        counts = [await event_queries.count(db, event_queries.EventFilter(
            tenant=tenant, log=each, start=start, end=end)) for each in logs]
        return sum(counts)

    _run(settings, total,
         lambda db: event_queries.stream_logs(db, tenant, start, end,
                                              EventLog(log) if log else None),
         EVENT_COLUMNS, Format(fmt), output)


REPORTS: dict[str, tuple[str, type[BaseModel]]] = {
    "queues": ("queue", QueueReportRow), "agents": ("agent", AgentReportRow)}


@command.command("reports")
@_options
@click.option("--of", "of", type=click.Choice(sorted(REPORTS)), default="queues",
              show_default=True, help="Per queue or per agent.")
@click.option("--interval", type=click.Choice(["15m", "1h", "1d"]), default="15m",
              show_default=True, help="Bucket size (hours and days in the tenant's zone).")
@click.pass_obj
def reports(settings: Settings, start: datetime, end: datetime, fmt: str, output: Path | None,
            tenant: str, of: str, interval: Literal["15m", "1h", "1d"]) -> None:
    """Interval reports over [--from, --to), as GET /v1/reports/queues|agents computes them.

    A report is computed whole (the API's query, bounded by its range: 7 days of 15-minute
    buckets, 31 of hours, 366 of days), then written."""
    _check(start, end, interval_reports.MAX_RANGE[interval])
    kind, model = REPORTS[of]
    found: list[Mapping[str, Any]] = []

    async def total(db: asyncpg.Connection) -> int:
        try:
            _, rows = await read_report(db, tenant, kind, interval, start, end, None)
        except RequestValidationError as refused:  # the API's bound on one report's rows
            raise click.BadParameter(refused.errors()[0]["msg"], param_hint="--to") from None
        found.extend(model(**row).model_dump() for row in rows)
        return len(found)

    async def chunks(_db: asyncpg.Connection) -> Chunks:
        yield found

    _run(settings, total, chunks, columns_of(model), Format(fmt), output)


def _check(start: datetime, end: datetime, longest: timedelta = MAX_RANGE) -> None:
    if start > end:
        raise click.BadParameter("must not be after --to", param_hint="--from")
    if end - start > longest:
        raise click.BadParameter(f"the range must not exceed {longest.days} days",
                                 param_hint="--to")


def _run(settings: Settings, total: Callable[[asyncpg.Connection], Awaitable[int]],
         chunks: Callable[[asyncpg.Connection], Chunks], columns: Columns, fmt: Format,
         output: Path | None) -> None:
    database_url = resolve_dsn(settings)
    target: AbstractContextManager[IO[bytes]] = (
        output.open("wb") if output is not None else nullcontext(sys.stdout.buffer))
    with target as out:
        rows = asyncio.run(export(database_url, total, chunks, columns, fmt, out))
    if output is not None:
        click.echo(f"{rows} rows written to {output}", err=True)


async def export(database_url: str, total: Callable[[asyncpg.Connection], Awaitable[int]],
                 chunks: Callable[[asyncpg.Connection], Chunks], columns: Columns,
                 fmt: Format, out: IO[bytes]) -> int:
    """Write the file to `out` batch by batch; the number of rows written."""
    written = 0
    async with open_pool(database_url, max_size=1) as pool, pool.acquire() as db:
        with tqdm(total=await total(db), unit="rows", file=sys.stderr,
                  desc=f"export {fmt.value}") as bar:
            async for data, rows in encode(chunks(db), fmt, columns):
                out.write(data)
                bar.update(rows)
                written += rows
    return written
