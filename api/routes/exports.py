"""Exports of CDRs and of the event history as CSV or Parquet files, streamed
for any range up to a year (api/exports.py encodes batch by batch)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from api.auth.dependencies import Tenant, require
from api.auth.permissions import P
from api.db import Pool, acquire
from api.exports import (
    CDR_COLUMNS,
    EVENT_COLUMNS,
    MAX_RANGE,
    PARQUET_MEDIA_TYPE,
    Columns,
    Format,
    encode,
    media_type,
    wanted_format,
)
from api.problems import invalid, problem_responses
from api.queries import cdrs as cdr_queries
from api.queries import events as event_queries
from api.queries.events import EventLog
from api.schemas.text import Instant

TAG = {"name": "exports", "description": "CDRs and the event history as CSV or Parquet files."}
router = APIRouter(prefix="/v1/exports", tags=["exports"])

Chunks = AsyncIterator[Sequence[Mapping[str, Any]]]

From = Annotated[Instant, Query(alias="from", description=(
    "Start of the range (inclusive), RFC 3339 with an offset, e.g. `2026-01-01T00:00:00Z`."))]
To = Annotated[Instant, Query(alias="to", description=(
    "End of the range (exclusive); at most 366 days after `from`. An empty range is an "
    "empty file (the header row; a Parquet file with no rows)."))]
FormatQuery = Annotated[Format | None, Query(alias="format", description=(
    "`csv` or `parquet`; default from the Accept header (`application/vnd.apache.parquet` "
    "for Parquet), else CSV."))]
Accept = Annotated[str | None, Header(description="`text/csv` or "
                                      f"`{PARQUET_MEDIA_TYPE}`, when `format` is not given.")]

_FILE_RESPONSE = {
    "description": "The file: CSV (a header row) or Parquet, by `format` or Accept.",
    "content": {"text/csv": {"schema": {"type": "string"}},
                PARQUET_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
}


def checked_range(start: datetime, end: datetime) -> None:
    if start > end:
        raise invalid("from", "must not be after `to`")
    if end - start > MAX_RANGE:
        raise invalid("to", f"the range must not exceed {MAX_RANGE.days} days")


@router.get("/cdrs", summary="Export finished calls (CDRs) as CSV or Parquet",
            description="Every final CDR of the tenant whose `started_at` is in [from, to), "
            "ordered by (started_at, call_id); the columns of `GET /v1/cdrs`.",
            dependencies=[require(P.HISTORY_READ)], response_class=StreamingResponse,
            responses={200: _FILE_RESPONSE, **problem_responses(422)})
async def export_cdrs(pool: Pool, tenant: Tenant, start: From, end: To,
                      fmt: FormatQuery = None, accept: Accept = None) -> StreamingResponse:
    checked_range(start, end)
    wanted = cdr_queries.CdrFilter(tenant=tenant, start=start, end=end)
    return await _file(pool, lambda db: cdr_queries.stream(db, wanted), CDR_COLUMNS,
                       wanted_format(fmt, accept), _name("cdrs", start, end))


@router.get("/events", summary="Export the event history as CSV or Parquet",
            description="The tenant's events that occurred in [from, to): those of `log`, or "
            "of both logs (calls first), each in store order; the fields of `GET /v1/events`.",
            dependencies=[require(P.HISTORY_READ)], response_class=StreamingResponse,
            responses={200: _FILE_RESPONSE, **problem_responses(422)})
async def export_events(
    pool: Pool, tenant: Tenant, start: From, end: To,
    log: Annotated[EventLog | None, Query(description="One log only; default: both.")] = None,
    fmt: FormatQuery = None, accept: Accept = None,
) -> StreamingResponse:
    checked_range(start, end)
    return await _file(pool, lambda db: event_queries.stream_logs(db, tenant, start, end, log),
                       EVENT_COLUMNS, wanted_format(fmt, accept), _name("events", start, end))


async def _file(pool: asyncpg.Pool, chunks: Callable[[asyncpg.Connection], Chunks],
                columns: Columns, fmt: Format, name: str) -> StreamingResponse:
    body = _body(pool, chunks, columns, fmt)
    # Connect and run the query before the status line goes out, so that a failure
    # there is still answered with a problem.
    first = await anext(body)
    suffix = "csv" if fmt is Format.CSV else "parquet"
    headers = {"Content-Disposition": f'attachment; filename="{name}.{suffix}"'}
    return StreamingResponse(_prepend(first, body), media_type=media_type(fmt), headers=headers)


async def _body(pool: asyncpg.Pool, chunks: Callable[[asyncpg.Connection], Chunks],
                columns: Columns, fmt: Format) -> AsyncIterator[bytes]:
    """The file's bytes batch by batch; holds one connection while it runs."""
    async with acquire(pool) as db:
        async for data, _rows in encode(chunks(db), fmt, columns):
            yield data


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


def _name(what: str, start: datetime, end: datetime) -> str:
    stamp = "%Y%m%dT%H%M%SZ"
    return f"{what}-{start.astimezone(UTC):{stamp}}-{end.astimezone(UTC):{stamp}}"
