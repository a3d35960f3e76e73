"""``dialtone export cdr|events|reports --from --to --format csv|parquet [--output FILE]``.

The same queries and encoders as `GET /v1/exports/...` (api/exports.py): rows
come from a server-side cursor and are written batch by batch, so memory holds
one batch whatever the range; a progress bar counts the rows (on stderr, so
the file may go to stdout). Reports come from the interval reports' own read
(api/routes/reports.py), computed whole within its bounded range.

A date or date-time without an offset is UTC for CDRs and events, and the
tenant's local time for reports (whose hours and days are the tenant's): a
report ``--from 2026-03-01`` starts at the tenant's midnight. A file named by
``--output`` is written beside it first (``FILE.tmp``) and renamed once whole.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal
from zoneinfo import ZoneInfo

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
# Counts the rows to write, on the export's connection, given the tenant's time zone.
Total = Callable[[asyncpg.Connection, str], Awaitable[int]]


def in_zone(moment: datetime, zone: str) -> datetime:
    """`moment` as given when it has an offset, else read in `zone` (an IANA name)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(zone))


class DateOrInstant(click.ParamType):
    """An ISO 8601 date or date-time, left without a zone when it names none: the
    command says which zone that is (UTC, or the tenant's for reports)."""

    name = "instant"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or date-time", param, ctx)


Decorator = Callable[[Callable[..., None]], Callable[..., None]]


def _options(no_offset: str) -> Decorator:
    """The options every export takes; `no_offset` says how a time without one is read."""
    options: tuple[Decorator, ...] = (
        click.option("--from", "start", type=DateOrInstant(), required=True,
                     help="Start of the range (inclusive), e.g. 2026-03-01 or "
                     f"2026-03-01T00:00:00+01:00 ({no_offset})."),
        click.option("--to", "end", type=DateOrInstant(), required=True,
                     help="End of the range (exclusive); at most 366 days after --from."),
        click.option("--format", "fmt", type=click.Choice([f.value for f in Format]),
                     default=Format.CSV.value, show_default=True,
                     help="File format: csv (a header row, then one row per record) or "
                     "parquet (Apache Parquet, columnar)."),
        click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
                     help="The file to write (default: standard output); written as "
                     "FILE.tmp, renamed once complete."),
        click.option("--tenant", default=DEFAULT_TENANT, show_default=True,
                     help="Whose CDRs, events or reports (a tenant that exists)."),
    )

    def decorate(func: Callable[..., None]) -> Callable[..., None]:
        for option in reversed(options):
            func = option(func)
        return func
    return decorate


@click.group("export")
def command() -> None:
    """Export CDRs or the event history as CSV or Parquet files."""


@command.command("cdr")
@_options("UTC if no offset")
@click.pass_obj
def cdr(settings: Settings, start: datetime, end: datetime, fmt: str, output: Path | None,
        tenant: str) -> None:
    """Final CDRs whose start is in [--from, --to), by start time."""
    start, end = in_zone(start, "UTC"), in_zone(end, "UTC")
    _check(start, end)
    wanted = cdr_queries.CdrFilter(tenant=tenant, start=start, end=end)

    async def total(db: asyncpg.Connection, _zone: str) -> int:
        query, args = cdr_queries.select(wanted)
        return int(await db.fetchval(f"SELECT count(*) FROM ({query}) q", *args))  # noqa: S608

    _run(settings, tenant, total, lambda db: cdr_queries.stream(db, wanted), CDR_COLUMNS,
         Format(fmt), output)


@command.command("events")
@_options("UTC if no offset")
@click.option("--log", type=click.Choice([log.value for log in EventLog]),
              help="One notification log only (default: calls, then callcentre).")
@click.pass_obj
def events(settings: Settings, start: datetime, end: datetime, fmt: str, output: Path | None,
           tenant: str, log: str | None) -> None:
    """Events that occurred in [--from, --to), each log in store order."""
    start, end = in_zone(start, "UTC"), in_zone(end, "UTC")
    _check(start, end)
    logs = (EventLog(log),) if log else tuple(EventLog)

    async def total(db: asyncpg.Connection, _zone: str) -> int:
        counts = [await event_queries.count(db, event_queries.EventFilter(
            tenant=tenant, log=each, start=start, end=end)) for each in logs]
        return sum(counts)

    _run(settings, tenant, total,
         lambda db: event_queries.stream_logs(db, tenant, start, end,
                                              EventLog(log) if log else None),
         EVENT_COLUMNS, Format(fmt), output)


REPORTS: dict[str, tuple[str, type[BaseModel]]] = {
    "queues": ("queue", QueueReportRow), "agents": ("agent", AgentReportRow)}


@command.command("reports")
@_options("without an offset, the tenant's local time: 2026-03-01 is its midnight")
@click.option("--of", "of", type=click.Choice(sorted(REPORTS)), default="queues",
              show_default=True, help="Per queue or per agent.")
@click.option("--interval", type=click.Choice(["15m", "1h", "1d"]), default="15m",
              show_default=True, help="Bucket size (hours and days in the tenant's zone).")
@click.pass_obj
def reports(settings: Settings, start: datetime, end: datetime, fmt: str, output: Path | None,
            tenant: str, of: str, interval: Literal["15m", "1h", "1d"]) -> None:
    """Interval reports over [--from, --to), as GET /v1/reports/queues|agents computes them.

    A time without an offset is the tenant's local time, as its hours and days are: a
    bare date is the tenant's midnight. A report is computed whole (the API's query,
    bounded by its range: 7 days of 15-minute buckets, 31 of hours, 366 of days), then
    written."""
    longest = interval_reports.MAX_RANGE[interval]
    if (start.tzinfo is None) == (end.tzinfo is None):  # comparable before the zone is known
        _check(start, end, longest)
    kind, model = REPORTS[of]
    found: list[Mapping[str, Any]] = []

    async def total(db: asyncpg.Connection, zone: str) -> int:
        since, until = in_zone(start, zone), in_zone(end, zone)
        _check(since, until, longest)
        try:
            _, rows = await read_report(db, tenant, kind, interval, since, until, None)
        except RequestValidationError as refused:  # the API's bound on one report's rows
            raise click.BadParameter(refused.errors()[0]["msg"], param_hint="--to") from None
        found.extend(model(**row).model_dump() for row in rows)
        return len(found)

    async def chunks(_db: asyncpg.Connection) -> Chunks:
        yield found

    _run(settings, tenant, total, chunks, columns_of(model), Format(fmt), output)


def _check(start: datetime, end: datetime, longest: timedelta = MAX_RANGE) -> None:
    if start > end:
        raise click.BadParameter("must not be after --to", param_hint="--from")
    if end - start > longest:
        raise click.BadParameter(f"the range must not exceed {longest.days} days",
                                 param_hint="--to")


def _run(settings: Settings, tenant: str, total: Total,
         chunks: Callable[[asyncpg.Connection], Chunks], columns: Columns, fmt: Format,
         output: Path | None) -> None:
    database_url = resolve_dsn(settings)

    async def counted(db: asyncpg.Connection) -> int:
        zone = await db.fetchval("SELECT time_zone FROM tenants WHERE id = $1", tenant)
        if zone is None and tenant == DEFAULT_TENANT:
            zone = "UTC"  # the default tenant's calls exist before anyone made its row
        if zone is None:  # a mistyped tenant would be an empty file, as if it had no calls
            raise click.ClickException(f"no tenant {tenant}")
        return await total(db, zone)

    def write(out: IO[bytes]) -> int:
        return asyncio.run(export(database_url, counted, chunks, columns, fmt, out))

    if output is None:
        write(sys.stdout.buffer)
        return
    rows = write_whole(output, write)
    click.echo(f"{rows} rows written to {output}", err=True)


def write_whole(output: Path, write: Callable[[IO[bytes]], int]) -> int:
    """`write` into OUTPUT.tmp beside OUTPUT, renamed over it once complete: a failed
    export leaves no partial file behind, and an earlier OUTPUT as it was."""
    partial = output.with_name(f"{output.name}.tmp")
    done = False
    try:
        with _file_errors(output):
            out = partial.open("wb")
        with out:
            written = write(out)
            with _file_errors(output):
                out.flush()
        with _file_errors(output):
            partial.replace(output)
        done = True
    finally:
        if not done:
            partial.unlink(missing_ok=True)
    return written


@contextmanager
def _file_errors(output: Path | str) -> Iterator[None]:
    """The file system's refusals as one line (no such directory, no space...). Only
    around file operations: asyncpg's connection errors are OSErrors too."""
    try:
        yield
    except OSError as error:
        raise click.ClickException(f"cannot write {output}: {error.strerror or error}") from None


async def export(database_url: str, total: Callable[[asyncpg.Connection], Awaitable[int]],
                 chunks: Callable[[asyncpg.Connection], Chunks], columns: Columns,
                 fmt: Format, out: IO[bytes]) -> int:
    """Write the file to `out` batch by batch; the number of rows written."""
    written = 0
    async with open_pool(database_url, max_size=1) as pool, pool.acquire() as db:
        with tqdm(total=await total(db), unit="rows", file=sys.stderr,
                  desc=f"export {fmt.value}") as bar:
            async for data, rows in encode(chunks(db), fmt, columns):
                with _file_errors(getattr(out, "name", "the output")):
                    out.write(data)
                bar.update(rows)
                written += rows
    return written
