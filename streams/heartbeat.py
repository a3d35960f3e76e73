"""Heartbeats for the Faust worker (see application.heartbeats).

A Faust timer ticks the heartbeat on the worker's event loop, so a worker whose
loop is blocked or gone stops beating; the row is written on the heartbeat's
own thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from application.heartbeats import Heartbeat, host_instance

WORKER_SERVICE = "worker"


def attach_to_faust(app: faust.App, database_url: str, instance: str | None = None) -> Heartbeat:
    """Beat while ``app`` runs; mark stopped when it shuts down cleanly.

    ``instance`` defaults to ``<app id>@<host>`` (``host_instance``): a worker
    restarted on the same host takes over its row, and one replaced by a worker on
    another host (a new pod) leaves a replica's row that health lets the running
    workers cover. Several workers of one app on one host should each be given
    their own instance name (a stale one would otherwise be hidden).
    """
    heartbeat = Heartbeat(database_url, WORKER_SERVICE, instance or host_instance(app.conf.id))

    async def start() -> None:
        heartbeat.start()

    async def tick() -> None:
        heartbeat.tick()

    async def stop(_app: Any, /, *_args: Any, signal: object, **_kwargs: Any) -> None:  # noqa: ARG001
        await asyncio.to_thread(heartbeat.stop)

    app.task(start)
    app.timer(heartbeat.interval_s / 2, name="dialtone-heartbeat")(tick)
    app.on_before_shutdown.connect(stop)
    return heartbeat
