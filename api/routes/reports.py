"""Interval reports: per queue or agent, 15-minute, hourly or daily figures, as JSON, CSV
or Parquet (the exports' Parquet writer, api/exports.py: same column types).

Read from the 15-minute bucket sums the call-centre projection group keeps
(api/queries/reports.py); every figure is projections/kpi.py's over the bucket.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Header, Query, Response

from api.auth.dependencies import Principal, require
from api.auth.permissions import P
from api.csv_export import CSV_MEDIA_TYPE, render, wants_csv
from api.db import Pool, acquire
from api.exports import PARQUET_MEDIA_TYPE, ParquetEncoder, columns_of
from api.problems import NotFoundProblem, invalid, problem_responses
from api.queries import reports as queries
from api.schemas.reports import (
    AGENT_COLUMNS,
    QUEUE_COLUMNS,
    AgentReport,
    AgentReportRow,
    IntervalName,
    QueueReport,
    QueueReportRow,
)
from api.schemas.text import HISTORY_FROM, HISTORY_TO, Instant, minus
from projections import interval_reports

TAG = {"name": "reports", "description": (
    "Interval reports: per queue or agent and 15-minute, hourly or daily bucket (hours "
    "and days in the tenant's zone), the figures of docs/metrics.md. See docs/reports.md.")}
router = APIRouter(prefix="/v1/reports", tags=["reports"])
Reader = Annotated[Principal, require(P.REPORTS_READ)]
DEFAULT_RANGE = timedelta(hours=24)
MAX_ROWS = 100_000  # report buckets x queues (agents): a bound on one answer

IntervalQuery = Annotated[IntervalName, Query(
    description="Bucket size: `15m` (UTC quarter hours), `1h` or `1d` (local hours and days "
    "of the tenant's zone).")]
From = Annotated[Instant | None, Query(
    alias="from", description="The first bucket is the one holding this instant (ISO 8601 "
    "with a zone). Default: 24 hours before `to`.")]
To = Annotated[Instant | None, Query(
    description="The last bucket is the one holding the instant before this one. Default: "
    "now. At most 7 days for 15m, 31 for 1h, 366 for 1d, and at most 100,000 rows "
    "(buckets x queues or agents). Buckets starting after now are left out.")]
Accept = Annotated[str | None, Header(
    description="`text/csv` for CSV (header row, one line per row), "
    f"`{PARQUET_MEDIA_TYPE}` for Parquet; JSON otherwise.")]
FormatQuery = Annotated[Literal["json", "csv", "parquet"] | None, Query(
    alias="format", description="`json`, `csv` or `parquet` (one row group; maps such as "
    "`time_by_state` as JSON text). Default: from the Accept header, else JSON.")]
_CSV = {"description": "The report: JSON, CSV or Parquet (by `format`, else Accept).",
        "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}},
                    PARQUET_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {200: _CSV, **problem_responses(404, 422)}


def _range(from_: datetime | None, to: datetime | None,
           interval: IntervalName) -> tuple[datetime, datetime]:
    end = to or datetime.now(UTC)
    start = from_ or minus(end, DEFAULT_RANGE)
    for name, instant in (("from", start), ("to", end)):
        if not HISTORY_FROM <= instant <= HISTORY_TO:
            raise invalid(name, f"must be between {HISTORY_FROM.year} and {HISTORY_TO.year}")
    if start > end:
        raise invalid("from", "must not be after `to`")
    longest = interval_reports.MAX_RANGE[interval]
    if end - start > longest:
        raise invalid("to", f"the range from `from` to `to` must not exceed {longest.days} "
                      f"days for interval {interval}")
    return start, end


@router.get("/queues", summary="Queue figures per 15-minute, hourly or daily bucket",
            description="One row per queue and bucket with anything in it, ordered by bucket "
            "then queue id. Filter with `queue` (ids or keys, repeatable).",
            response_model=QueueReport, responses=_RESPONSES)
async def queue_report(
    *, pool: Pool, principal: Reader, interval: IntervalQuery = "15m", from_: From = None,
    to: To = None, queue: Annotated[list[str] | None, Query(
        max_length=100, description="Queue ids or keys (repeat the parameter).")] = None,
    accept: Accept = None, fmt: FormatQuery = None,
) -> QueueReport | Response:
    since, until = _range(from_, to, interval)
    async with acquire(pool) as db:
        body, rows = await read_report(db, principal.tenant, "queue", interval, since, until, queue)
    data = [QueueReportRow(**r) for r in rows]
    if (chosen := _format(fmt, accept)) != "json":
        return _file(chosen, QueueReportRow, QUEUE_COLUMNS, data, "queues", body)
    return QueueReport(**body, data=data, count=len(data))


@router.get("/agents", summary="Agent figures per 15-minute, hourly or daily bucket",
            description="One row per agent and bucket with anything in it, ordered by bucket "
            "then agent id. Filter with `agent` (ids or keys, repeatable).",
            response_model=AgentReport, responses=_RESPONSES)
async def agent_report(
    *, pool: Pool, principal: Reader, interval: IntervalQuery = "15m", from_: From = None,
    to: To = None, agent: Annotated[list[str] | None, Query(
        max_length=100, description="Agent ids or keys (repeat the parameter).")] = None,
    accept: Accept = None, fmt: FormatQuery = None,
) -> AgentReport | Response:
    since, until = _range(from_, to, interval)
    async with acquire(pool) as db:
        body, rows = await read_report(db, principal.tenant, "agent", interval, since, until, agent)
    data = [AgentReportRow(**r) for r in rows]
    if (chosen := _format(fmt, accept)) != "json":
        return _file(chosen, AgentReportRow, AGENT_COLUMNS, data, "agents", body)
    return AgentReport(**body, data=data, count=len(data))


async def read_report(db: asyncpg.Connection, tenant: str, kind: str, interval: IntervalName,
                      since: datetime, until: datetime, wanted: list[str] | None
                      ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The report's envelope (interval, zone, bounds) and its rows, in one transaction;
    also what `dialtone export` writes, so a file holds what the API would answer."""
    async with queries.snapshot(db):
        now: datetime = await db.fetchval("SELECT now()")
        zone = await db.fetchval("SELECT time_zone FROM tenants WHERE id = $1", tenant) or "UTC"
        entities, unknown = await queries.resolve(db, tenant, kind, wanted or [])
        if unknown:
            raise NotFoundProblem(kind, unknown[0])
        ids = queries.ids_of(entities, wanted) if wanted else None
        buckets = interval_reports.buckets(since, until, interval, zone)
        if len(buckets) * len(ids or entities) > MAX_ROWS:
            raise invalid("to", f"the report could hold more than {MAX_ROWS} rows: shorten the "
                          f"range, use a longer interval or filter by {kind}")
        request = queries.ReportRequest(tenant, kind, interval, since, until, ids)
        found = await queries.report(db, request, zone, now)
    body = {"interval": interval, "time_zone": zone,
            "since": buckets[0].since if buckets else since,
            "until": buckets[-1].until if buckets else until}
    figures = (interval_reports.queue_figures if kind == "queue"
               else interval_reports.agent_figures)
    rows = []
    for window, entity, sums in found:
        known = entities.get(entity)
        rows.append({**figures(sums, window), f"{kind}_id": entity,
                     "key": known["key"] if known else None,
                     "name": known["name"] if known else None})
    return body, rows


def _format(fmt: str | None, accept: str | None) -> str:
    """``format`` if given, else CSV or Parquet when Accept names them, else JSON."""
    if fmt is not None:
        return fmt
    if wants_csv(accept):
        return "csv"
    named = {part.split(";")[0].strip().lower() for part in (accept or "").split(",")}
    return "parquet" if PARQUET_MEDIA_TYPE in named else "json"


def _file(fmt: str, model: type[QueueReportRow | AgentReportRow], columns: tuple[str, ...],
          data: list[Any], what: str, body: dict[str, Any]) -> Response:
    """The report as a CSV or Parquet attachment (a report is bounded: one body)."""
    stamp = "%Y%m%dT%H%M%SZ"
    name = (f"{what}-{body['interval']}-{body['since'].astimezone(UTC):{stamp}}-"
            f"{body['until'].astimezone(UTC):{stamp}}.{fmt}")
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "parquet":
        encoder = ParquetEncoder(columns_of(model))
        content = encoder.batch([row.model_dump() for row in data]) + encoder.finish()
        return Response(content, media_type=PARQUET_MEDIA_TYPE, headers=disposition)
    rows = [row.model_dump(mode="json") for row in data]
    return Response(render(columns, rows, header=True), media_type=CSV_MEDIA_TYPE,
                    headers=disposition)
