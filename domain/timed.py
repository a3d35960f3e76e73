"""Base class of the call-centre aggregates whose events carry ``occurred_at``.

``occurred_at`` is the business time of the fact (when the agent pressed
pause, when the caller hung up), always UTC; eventsourcing's own ``timestamp``
is only when the event was recorded. Projections and reports use
``occurred_at``.

Subclasses nest their events as ``class Paused(TimedAggregate.Event)``;
eventsourcing re-parents them under the subclass's own ``Event`` class, and
their topics stay ``module:Aggregate.EventName``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from domain.values import utc_instant

__all__ = ["TimedAggregate"]


class TimedAggregate(Aggregate):
    class Event(Aggregate.Event):
        occurred_at: datetime  # when the fact happened (UTC), not store time

    def _trigger(
        self, event_class: type[TimedAggregate.Event], occurred_at: datetime, **facts: Any
    ) -> None:
        self.trigger_event(event_class, occurred_at=utc_instant(occurred_at), **facts)
