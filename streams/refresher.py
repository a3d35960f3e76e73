"""The refresher: the work projection groups leave out of their apply transaction.

The call-centre group's apply only marks the 15-minute interval buckets its
events fall in dirty (projections/interval_buckets.py); recomputing them there
halved the group's throughput and made up most of the live stream's delivery
latency. This loop recomputes them beside the runner, on its own connection and
in its own transactions (``ProjectionGroup.settle``), in whichever process runs
the projections: the embedded in-process runner starts one, the Faust worker
attaches one (``attach_to_faust``).

It LISTENs on ``dialtone_projections`` (every projection commit notifies it,
migration 0012), so it wakes when a batch committed, and at least every
``tick_s`` otherwise; after a refresh it lets ``gap_s`` pass, so that under load
one refresh serves many batches instead of one each. Everything it does is
resumable from what is stored (the dirty marks): stopped or killed half-way, it
leaves the marks, and the next refresher (or the next start) does the work.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from application.follow import NotifiedLoop
from application.heartbeats import host_instance
from projections.registry import ProjectionGroup, Settle

if TYPE_CHECKING:  # the embedded runner imports this module: no Faust there
    import faust

CHANNEL = "dialtone_projections"  # migration 0012's trigger on projection_positions


def settles(groups: Sequence[ProjectionGroup]) -> list[Settle]:
    """The groups' deferred work (most groups have none)."""
    return [g.settle for g in groups if g.settle is not None]


class ProjectionRefresher(NotifiedLoop):
    HEARTBEAT_SERVICE = "refresher"

    def __init__(self, database_url: str, work: Sequence[Settle], name: str, *,
                 tick_s: float = 2.0, gap_s: float = 0.5) -> None:
        super().__init__(database_url, CHANNEL, name, tick_s=tick_s)
        self.work = tuple(work)
        self.gap_s = gap_s
        self._stopping = threading.Event()  # ends a gap at once

    def step(self, conn: psycopg.Connection[Any]) -> bool:
        # A settle does a bounded amount (the interval buckets: a batch per tenant), so a
        # backlog (an upgrade's, migration 0023) is worked off step by step: heartbeats,
        # stop and the other tenants get their turn between steps.
        done = sum(settle(conn) for settle in self.work)
        if done:
            # Let batches gather: the next refresh serves all that commit meanwhile.
            self._stopping.wait(self.gap_s)
        return done > 0  # something done: look again at once; else wait for a commit

    def start(self) -> None:
        self._stopping.clear()
        super().start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        super().stop(timeout)

    def refresh_now(self) -> int:
        """Everything dirty now, waiting for any other refresher (catch-ups, tests)."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return sum(settle(conn, wait=True) for settle in self.work)


def attach_to_faust(app: faust.App, database_url: str,
                    groups: Sequence[ProjectionGroup]) -> ProjectionRefresher | None:
    """A refresher running while the Faust worker ``app`` runs (None if no group defers
    work). Several workers each run one; they share the tenants (a tenant being
    refreshed by one is passed over by the others)."""
    work = settles(groups)
    if not work:
        return None
    refresher = ProjectionRefresher(database_url, work, host_instance(f"refresher-{app.conf.id}"))

    async def start() -> None:
        refresher.start()

    async def stop(_app: Any, /, *_args: Any, signal: object, **_kwargs: Any) -> None:  # noqa: ARG001
        await asyncio.to_thread(refresher.stop)

    app.task(start)
    app.on_before_shutdown.connect(stop)
    return refresher
