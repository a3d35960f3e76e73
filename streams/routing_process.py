"""Runs the routing process, woken by the store's commits (application.follow.NotifiedLoop)."""

from __future__ import annotations

from typing import Any

import psycopg

from application.follow import NotifiedLoop
from application.heartbeats import host_instance
from application.router import RoutingProcess


class RoutingRunner(NotifiedLoop):
    def __init__(self, process: RoutingProcess, database_url: str, *,
                 tick_s: float = 0.1) -> None:
        # The PostgreSQL recorder's NOTIFY channel (the routing process needs PostgreSQL).
        channel: str = process.service.recorder.channel_name  # type: ignore[attr-defined]
        super().__init__(database_url, channel, "routing-process", tick_s=tick_s)
        self.process = process

    HEARTBEAT_SERVICE = "routing"

    def heartbeat_instance(self) -> str:
        return host_instance()  # one routing process per host at most; a replica (api.health)

    def step(self, conn: psycopg.Connection[Any]) -> bool:  # noqa: ARG002 - reads via its service
        # The process state is only a cache of the log: after a reconnect it
        # carries on from the same position.
        return self.process.step() >= self.process.page_size
