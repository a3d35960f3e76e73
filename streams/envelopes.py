"""Stored domain events -> the published EventEnvelope (CloudEvents) form.

The mapping is generic over aggregates: `Call.Answered` with class_version 1
becomes type `dialtone.call.answered.v1`; its public attributes become `data`.
The event id is derived from (aggregate id, version), so republishing the same
stored event always yields the same id and consumers can deduplicate on it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import Enum
from functools import singledispatch
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from projections.envelope import EventEnvelope

EVENT_ID_NAMESPACE = uuid5(NAMESPACE_URL, "urn:dialtone:event")
_ENVELOPE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic",
                    "occurred_at"}
_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


def event_type(event: object) -> str:
    cls = type(event)
    aggregate, _, name = cls.__qualname__.partition(".")
    version = getattr(cls, "class_version", 1)
    return f"dialtone.{aggregate.lower()}.{_CAMEL_BOUNDARY.sub('_', name).lower()}.v{version}"


def event_id(aggregate_id: UUID, version: int) -> UUID:
    return uuid5(EVENT_ID_NAMESPACE, f"{aggregate_id}:{version}")


def to_envelope(event: Any, position: int) -> EventEnvelope:
    aggregate_id: UUID = event.originator_id
    version: int = event.originator_version
    occurred_at: datetime = getattr(event, "occurred_at", None) or event.timestamp
    data = {k: _jsonable(v) for k, v in vars(event).items() if k not in _ENVELOPE_FIELDS}
    return EventEnvelope(
        id=event_id(aggregate_id, version),
        type=event_type(event),
        subject=aggregate_id,
        version=version,
        position=position,
        occurred_at=occurred_at,
        data=data,
    )


def decode(app: Application[Any], notifications: Sequence[Notification]) -> list[EventEnvelope]:
    return [to_envelope(app.mapper.to_domain_event(n), n.id) for n in notifications]


_PLAIN = (str, int, float, bool, type(None))


def _jsonable(value: Any) -> Any:
    # Most event attributes are plain already: skip the dispatch for them.
    return value if type(value) in _PLAIN else _convert(value)


@singledispatch
def _convert(value: Any) -> Any:
    return value


@_convert.register
def _(value: Enum) -> Any:
    return value.value


@_convert.register
def _(value: datetime) -> str:
    return value.isoformat()


@_convert.register
def _(value: timedelta) -> float:
    return value.total_seconds()


@_convert.register
def _(value: UUID) -> str:
    return str(value)


@_convert.register(list)
@_convert.register(tuple)
def _(value: Sequence[Any]) -> list[Any]:
    return [_jsonable(v) for v in value]


@_convert.register
def _(value: dict) -> dict[str, Any]:  # type: ignore[type-arg]
    return {str(k): _jsonable(v) for k, v in value.items()}
