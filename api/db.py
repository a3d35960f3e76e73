"""The asyncpg pool of the API and the dependencies that hand out connections.

The pool starts empty (min_size=0) so the API starts and keeps serving while
the database is down: every request then answers 503, and the first request
after the database returns opens a fresh connection. asyncpg drops pooled
connections the server closed, so nothing has to be reset by hand.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import asyncpg
from fastapi import Depends, Request
from psycopg.conninfo import conninfo_to_dict

from api.problems import DatabaseUnavailable

CONNECT_TIMEOUT_S = 5.0
ACQUIRE_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 60.0

# Errors that mean the connection or the server went away mid-request (class 08
# connection exceptions, class 57 operator intervention such as an admin
# shutdown or "the database system is starting up", class 53 too many
# connections): the request may succeed later, so they answer 503.
CONNECTION_LOST: tuple[type[Exception], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
)
# Errors while getting a connection that mean the server cannot be reached.
UNREACHABLE: tuple[type[Exception], ...] = (OSError, TimeoutError, *CONNECTION_LOST)


def asyncpg_dsn(database_url: str) -> str:
    """A URL asyncpg accepts, from a PostgreSQL URL or a libpq `key=value` string
    (dialtone's settings and fixtures produce both; asyncpg parses URLs only)."""
    params: dict[str, Any] = conninfo_to_dict(database_url)
    user = quote(str(params.pop("user", "")), safe="")
    password = params.pop("password", None)
    credentials = f"{user}:{quote(str(password), safe='')}@" if password else f"{user}@"
    host = params.pop("host", "127.0.0.1")
    port = params.pop("port", "5432")
    dbname = quote(str(params.pop("dbname", "")), safe="")
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql://{credentials}{host}:{port}/{dbname}{query}"


async def _init_connection(conn: asyncpg.Connection) -> None:
    # json/jsonb arrive as Python values, not strings.
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(type_name, encoder=json.dumps, decoder=json.loads,
                                  schema="pg_catalog")


@asynccontextmanager
async def open_pool(database_url: str, max_size: int) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(
        asyncpg_dsn(database_url),
        min_size=0,
        max_size=max_size,
        timeout=CONNECT_TIMEOUT_S,
        command_timeout=COMMAND_TIMEOUT_S,
        init=_init_connection,
    )
    try:
        yield pool
    finally:
        await pool.close()


async def get_pool(request: Request) -> asyncpg.Pool:
    # async although it awaits nothing, as every dependency here: FastAPI runs a plain
    # `def` dependency in the threadpool (a thread hop per request; tests/unit/
    # test_api_on_the_loop.py)
    return request.app.state.pool


@asynccontextmanager
async def acquire(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection; failing to get one raises DatabaseUnavailable."""
    try:
        conn = await pool.acquire(timeout=ACQUIRE_TIMEOUT_S)
    except UNREACHABLE as exc:
        raise DatabaseUnavailable(str(exc)) from exc
    try:
        yield conn
    finally:
        await pool.release(conn)


# Routes take the pool and acquire in their body (`async with acquire(pool) as db`),
# not a connection dependency: FastAPI solves dependencies before it validates
# query parameters, so a connection dependency would answer an invalid request
# with 503 while the database is down, and hold a connection for a 422.
Pool = Annotated[asyncpg.Pool, Depends(get_pool)]
