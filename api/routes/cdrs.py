"""CDRs: finished calls in a time range, as JSON pages or CSV.

Callers with `history:read` read every CDR of their tenant; an agent user only
those of the calls their agent handled (`own_calls_or`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.auth.ownership import Scope, own_calls_or
from api.auth.permissions import P
from api.csv_export import CSV_MEDIA_TYPE, render, wants_csv
from api.db import Pool, acquire
from api.paging import InvalidCursor, Keyset
from api.problems import invalid, problem_responses
from api.queries import cdrs as queries
from api.schemas.cdrs import CDR_COLUMNS, CdrPublic, CdrsPublic
from api.schemas.text import Instant, minus, text_query
from domain.values import Direction, Disposition

TAG = {"name": "cdrs", "description": "Call detail records: one row per finished call."}
router = APIRouter(prefix="/v1/cdrs", tags=["cdrs"])

DEFAULT_RANGE = timedelta(hours=24)
MAX_RANGE = timedelta(days=31)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


async def cdr_filter(
    *,
    scope: Scope,
    from_: Annotated[Instant | None, Query(
        alias="from", description="Start of the range on `started_at` (inclusive), ISO 8601 "
        "with a zone, e.g. `2025-03-01T00:00:00Z`. Default: 24 hours before `to`.")] = None,
    to: Annotated[Instant | None, Query(
        description="End of the range on `started_at` (exclusive). Default: now. "
        "The range may span at most 31 days.")] = None,
    caller: Annotated[str | None, text_query(description="Exact calling number.")] = None,
    callee: Annotated[str | None, text_query(description="Exact number dialled.")] = None,
    disposition: Annotated[Disposition | None, Query(description="How the call ended.")] = None,
    direction: Annotated[Direction | None, Query()] = None,
    queue: Annotated[str | None, text_query(description="Queue the call went through.")] = None,
    agent: Annotated[str | None, text_query(description="An agent who handled the call.")] = None,
    cursor: Annotated[str | None, text_query(
        description="`next_cursor` of the previous page (keep the same filters).")] = None,
) -> queries.CdrFilter:
    end = to or datetime.now(UTC)
    start = from_ or minus(end, DEFAULT_RANGE)
    if start > end:
        raise invalid("from", "must not be after `to`")
    if end - start > MAX_RANGE:
        raise invalid("to", f"the range from `from` to `to` must not exceed {MAX_RANGE.days} days")
    try:
        after = Keyset.decode(cursor) if cursor is not None else None
    except InvalidCursor as exc:
        raise invalid("cursor", str(exc)) from exc
    return queries.CdrFilter(tenant=scope.tenant, only_agent=scope.only_agent, start=start,
                             end=end, caller=caller, callee=callee, disposition=disposition,
                             direction=direction, queue=queue, agent=agent, after=after)


CdrFilterDep = Annotated[queries.CdrFilter, Depends(cdr_filter)]
Limit = Annotated[int | None, Query(
    ge=1, le=MAX_LIMIT, description=f"Page size, 1..{MAX_LIMIT}; default {DEFAULT_LIMIT}. "
    "For CSV, no limit means the whole range in one streamed file.")]
Accept = Annotated[str | None, Header(
    description="`text/csv` for CSV (header row, same filters); JSON otherwise.")]

_CSV_RESPONSE = {
    "description": "A page of CDRs (JSON), or CSV when `Accept: text/csv`.",
    "content": {CSV_MEDIA_TYPE: {"schema": {"type": "string"}}},
}


@router.get(
    "",
    dependencies=[own_calls_or(P.HISTORY_READ)],
    summary="List finished calls (CDRs), as JSON or CSV",
    description="Final CDRs whose `started_at` is in [from, to), ordered by "
    "(started_at, call_id). Page with `next_cursor` or follow the `Link: rel=\"next\"` "
    "header, which also pins the resolved `from`/`to`. An agent user sees only the calls "
    "their agent handled.",
    response_model=CdrsPublic,
    responses={200: _CSV_RESPONSE, **problem_responses(422)},
)
async def list_cdrs(
    *,
    request: Request, response: Response, pool: Pool, wanted: CdrFilterDep,
    limit: Limit = None, accept: Accept = None,
) -> CdrsPublic | Response:
    if wants_csv(accept):
        return await _csv(request, pool, wanted, limit)
    async with acquire(pool) as db:
        rows, after = await queries.page(db, wanted, limit or DEFAULT_LIMIT)
    if after is not None:
        response.headers["Link"] = _next_link(request, wanted, after)
    data = [CdrPublic.model_validate(dict(row)) for row in rows]
    return CdrsPublic(data=data, count=len(data),
                      next_cursor=after.encode() if after is not None else None)


def _next_link(request: Request, wanted: queries.CdrFilter, after: Keyset) -> str:
    # The defaulted range moves with the clock: pin it so every page sees the same one.
    url = request.url.include_query_params(
        cursor=after.encode(), **{"from": wanted.start.isoformat(), "to": wanted.end.isoformat()}
    )
    return f'<{url}>; rel="next"'


async def _csv(
    request: Request, pool: asyncpg.Pool, wanted: queries.CdrFilter, limit: int | None
) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{_filename(wanted)}"'}
    if limit is not None:
        async with acquire(pool) as db:
            rows, after = await queries.page(db, wanted, limit)
        if after is not None:
            headers["Link"] = _next_link(request, wanted, after)
        return Response(render(CDR_COLUMNS, rows, header=True), media_type=CSV_MEDIA_TYPE,
                        headers=headers)
    chunks = _csv_chunks(pool, wanted)
    # Connect and run the query before the status line goes out, so that a
    # failure there is still answered with a problem.
    first = await anext(chunks)
    return StreamingResponse(_prepend(first, chunks), media_type=CSV_MEDIA_TYPE, headers=headers)


async def _csv_chunks(pool: asyncpg.Pool, wanted: queries.CdrFilter) -> AsyncIterator[str]:
    """The CSV text, one chunk per batch of rows; holds one connection while it runs."""
    header = True
    async with acquire(pool) as db:
        async for rows in queries.stream(db, wanted):
            yield render(CDR_COLUMNS, rows, header=header)
            header = False
    if header:
        yield render(CDR_COLUMNS, [], header=True)


async def _prepend(first: str, rest: AsyncIterator[str]) -> AsyncIterator[str]:
    yield first
    async for chunk in rest:
        yield chunk


def _filename(wanted: queries.CdrFilter) -> str:
    stamp = "%Y%m%dT%H%M%SZ"
    return f"cdrs-{wanted.start.astimezone(UTC):{stamp}}-{wanted.end.astimezone(UTC):{stamp}}.csv"
