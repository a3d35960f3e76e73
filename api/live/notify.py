"""One LISTEN connection per API process: how it learns that projections moved.

Migration 0012 makes every write to projection_positions `NOTIFY
dialtone_projections` at commit, whichever process projected (the embedded
runner, a Faust worker, a rebuild). Each API process holds one asyncpg
connection that LISTENs on that channel and wakes its subscribers; the
trigger's notification carries nothing, so a merged or lost one costs nothing
but a wake-up. A runner may send another in the same transaction, on a channel
of its own, saying what it touched (projections/touched.py): the listener
listens on both, and each subscriber gets each payload.
While the connection is down (database restart) the listener wakes
its subscribers every `poll_s` anyway and keeps reconnecting: a subscriber
re-reads what it needs and never depends on having seen every notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

from api.db import UNREACHABLE, asyncpg_dsn
from projections import touched

log = logging.getLogger(__name__)

CHANNEL = "dialtone_projections"


class ProjectionListener:
    """Calls every registered callback (on the event loop) with the payload after
    each commit that moved a projection position, and at least every `poll_s`
    (with an empty payload) while disconnected."""

    def __init__(self, database_url: str, *, retry_s: float = 1.0, poll_s: float = 5.0) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._retry_s = retry_s
        self._poll_s = poll_s
        self._callbacks: list[Callable[[str], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()  # tests wait on it before they commit

    def subscribe(self, callback: Callable[[str], None]) -> None:
        self._callbacks.append(callback)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="live-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _wake(self, *notification: Any) -> None:
        """asyncpg calls it with (connection, pid, channel, payload); we with nothing."""
        payload = str(notification[3]) if len(notification) > 3 else ""
        for callback in self._callbacks:
            callback(payload)

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except (*UNREACHABLE, asyncpg.InterfaceError) as error:
                log.warning("live listener lost the database (%s); retrying", error)
            self.connected.clear()
            self._wake()  # what changed while we were away is read on the next pass
            await asyncio.sleep(self._retry_s)

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self._dsn, timeout=self._retry_s * 5)
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _: lost.set())
        try:
            await conn.add_listener(CHANNEL, self._wake)
            await conn.add_listener(touched.CHANNEL, self._wake)
            self.connected.set()
            self._wake()  # anything committed before LISTEN took effect
            while not lost.is_set():
                # An idle connection a firewall dropped shows up only when used.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._poll_s)
                if not lost.is_set():
                    await conn.execute("SELECT 1")
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)
