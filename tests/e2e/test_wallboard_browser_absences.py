"""The wallboard in a real browser (Debian's Chromium through chromium-driver, the
fixtures of test_wallboard_browser.py) when something goes away: a figure that
became null (a JSON Merge Patch removes its key, so the page finds it absent),
and the database while the page streams (the API answers 503; the page keeps
its session and reconnects once the database is back, it does not sign out).
The API is the real one, on a real PostgreSQL; no SIP here: the waiting call is
enqueued with the call-centre service itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from fastapi import FastAPI
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import pages
from api.app import create_app
from api.auth import session
from api.auth.permissions import P
from api.live.snapshot import live_snapshot
from api.live.touched import PARTS
from api.routes.live_stream import stream_router
from application.callcentre import CallCentreService
from application.identity.model import Role
from dialtone.database import ensure_database
from dialtone.migrations import apply_migrations
from dialtone.services.ports import free_port
from dialtone.services.postgres import EmbeddedPostgres
from tests.e2e.test_wallboard_browser import browser, site, text_of, until
from tests.fixtures.callcentre import centre, now, provision_queue
from tests.integration.auth_support import PASSWORD, add_user
from tests.integration.live_support import served

__all__ = ["browser", "centre", "site"]  # fixtures

STREAM = "/v1/live/stream"
NONE = "\N{EN DASH}"  # what the page shows for a figure it does not have
STREAM_S = 2.0  # each stream ends after this (5 minutes in production): the page reconnects


def sign_in(driver: WebDriver, site: str, username: str) -> None:
    """Opens the board, is sent to the sign-in page, signs in, and sees the board live."""
    driver.get(f"{site}/wallboard")
    until(driver, lambda d: d.current_url.endswith("/login"), "sent to the login page")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "sign-in").click()
    until(driver, lambda d: text_of(d, "#connection") == "live", "the wallboard is live")


def test_the_oldest_wait_reads_a_dash_once_the_last_waiting_call_leaves(
    site: str, browser: WebDriver, centre: CallCentreService, database_url: str,
) -> None:
    add_user(database_url, "sam", Role.SUPERVISOR)
    sign_in(browser, site, "sam")
    sales = provision_queue(centre, "sales", [])
    call = uuid4()
    centre.enqueue_call(sales, call, 0, now())
    until(browser, lambda d: text_of(d, '#queues [data-queue="sales"] .waiting') == "1",
          "the waiting call on the queue's row")
    until(browser, lambda d: "Waiting 1 · oldest 0:" in text_of(d, "#summary"),
          "the oldest wait in the summary")

    centre.abandon_call(sales, call, now())  # oldest_wait_s: null, removed by the patch
    until(browser, lambda d: text_of(d, '#queues [data-queue="sales"] .waiting') == "0",
          "the queue empty again")
    assert f"Waiting 0 · oldest {NONE} ·" in text_of(browser, "#summary")
    assert "NaN" not in text_of(browser, "body")


class StreamStatuses:
    """ASGI middleware: the status of every answer to the stream, in order."""

    def __init__(self, app: ASGIApp, statuses: list[int]) -> None:
        self.app, self.statuses = app, statuses

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != STREAM:
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.statuses.append(message["status"])
            await send(message)

        await self.app(scope, receive, sending)


@pytest.fixture
def own_database(pg_scratch_dir: Path) -> Iterator[tuple[EmbeddedPostgres, str]]:
    """A PostgreSQL server of this test's own (stopping it disturbs no other test) and
    a migrated database on it with the supervisor sam."""
    server = EmbeddedPostgres(pg_scratch_dir / "pg", free_port())
    server.start()
    try:
        dsn = server.dsn("wallboard")
        ensure_database(dsn)
        apply_migrations(dsn)
        add_user(dsn, "sam", Role.SUPERVISOR)
        yield server, dsn
    finally:
        server.destroy()


@pytest.fixture
def short_streams(own_database: tuple[EmbeddedPostgres, str]
                  ) -> Iterator[tuple[str, list[int]]]:
    """The pages, the cookie session and the live stream of `dialtone api`, but each
    stream ends after STREAM_S (the page reconnects sooner than in production); and
    the statuses the stream answered."""
    statuses: list[int] = []
    app: FastAPI = create_app(own_database[1], extra_routers=(
        pages.router, session.router,
        stream_router(live_snapshot, P.LIVE_READ, partial=PARTS, max_stream_s=STREAM_S)))
    app.add_middleware(StreamStatuses, statuses=statuses)
    with served(app) as url:
        yield url, statuses


def test_the_board_keeps_its_session_while_the_database_is_away_and_goes_live_again(
    own_database: tuple[EmbeddedPostgres, str], short_streams: tuple[str, list[int]],
    browser: WebDriver,
) -> None:
    server, _ = own_database
    url, statuses = short_streams
    sign_in(browser, url, "sam")

    server.stop()  # the stream ends; its reconnections are answered 503
    until(browser, lambda d: statuses.count(503) >= 2 or d.current_url.endswith("/login"),
          "the page asking again after a 503 (or sent to sign in)")
    assert browser.current_url.endswith("/wallboard")  # not signed out
    assert text_of(browser, "#connection") == "reconnecting…"

    server.start()
    until(browser, lambda d: text_of(d, "#connection") == "live", "the board live again")
    assert browser.current_url.endswith("/wallboard")
    assert statuses[-1] == 200
