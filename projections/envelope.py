"""The event envelope every projection consumes, and its CloudEvents 1.0 form.

Projections never see domain objects: they read this envelope, which is exactly
what integrators read from Kafka (the CloudEvents JSON on `dialtone.<kind>s.v1`
topics), so the in-process runner and the Faust workers feed them identically.

Stored domain events map to it generically over aggregates (``to_envelope``,
``decode``): `Call.Answered` with class_version 1 becomes type
`dialtone.call.answered.v1`; its public attributes become `data`. The event id is
derived from (aggregate id, version), so republishing the same stored event always
yields the same id and consumers can deduplicate on it. ``jsonb`` is how an
envelope's data is written to the projections' jsonb columns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from functools import cache, lru_cache, singledispatch
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from psycopg.types.json import Jsonb

from domain.addressing import DEFAULT_TENANT

SPEC_VERSION = "1.0"
SOURCE = "urn:dialtone"
# The CloudEvents Kafka protocol binding, structured content mode: the whole
# event is the message value, and this `content-type` header says so.
CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
CONTENT_TYPE_HEADER = "content-type"
# The sequence extension is a string compared lexicographically, so the store
# position is zero-padded to a fixed width: 20 digits hold any bigint position.
SEQUENCE_WIDTH = 20


class InvalidEnvelope(ValueError):  # noqa: N818 - reads as what the message is
    """A message that is not a decodable dialtone CloudEvent."""


@lru_cache(maxsize=256)  # a few dozen types; bounded: a Kafka message names its own
def kind_and_name(type_: str) -> dict[str, str]:
    """The kind and name a CloudEvents type names: ``dialtone.agent.paused.v1`` ->
    ``agent``, ``paused``."""
    parts = type_.split(".")  # a malformed type is refused by its reader, not here
    return {"kind": parts[1] if len(parts) > 1 else "", "name": parts[2] if len(parts) > 2 else ""}


def format_sequence(position: int) -> str:
    """The CloudEvents `sequence` of a store position: ``1874`` -> ``00000000000000001874``."""
    return f"{position:0{SEQUENCE_WIDTH}d}"


def parse_sequence(value: object) -> int:
    """The store position of a `sequence`: the 20-digit string, or (messages
    published before it was padded) a plain decimal string or a JSON integer."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidEnvelope(f"sequence must be a string of digits, not {value!r}")
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise InvalidEnvelope(f"sequence must be a string of digits, not {value!r}")
    return int(value)


@dataclass(frozen=True)
class EventEnvelope:
    id: UUID
    type: str  # dialtone.<kind>.<event>.v<N>, e.g. dialtone.call.answered.v1
    subject: UUID  # the aggregate id
    version: int  # the aggregate's version after this event (1 = created)
    position: int  # the event store's notification id (global order)
    occurred_at: datetime  # when the protocol fact happened
    data: Mapping[str, Any] = field(default_factory=dict)
    # From the type, once, when the envelope is made: the appliers ask each envelope
    # its kind several times, a million times a month. Not cached on first use: a
    # rebuild's shards read a history they share with their parent by fork, and a
    # cache written into each envelope copied every page of it into each shard.
    kind: str = field(init=False, repr=False, compare=False)
    name: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.__dict__.update(kind_and_name(self.type))  # frozen: set as its __init__ does

    def to_cloudevent(self) -> dict[str, Any]:
        return {
            "specversion": SPEC_VERSION,
            "id": str(self.id),
            "source": f"{SOURCE}:{self.kind}",
            "type": self.type,
            "subject": str(self.subject),
            "time": self.occurred_at.isoformat(),
            "datacontenttype": "application/json",
            # CloudEvents' sequence extension: a string that sorts; ours is the
            # event store position (global order across every source of one
            # store), zero-padded. `aggregateversion` orders events within a subject.
            "sequence": format_sequence(self.position),
            "aggregateversion": self.version,
            "data": dict(self.data),
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_cloudevent(), separators=(",", ":")).encode()

    @classmethod
    def from_cloudevent(cls, event: Mapping[str, Any]) -> EventEnvelope:
        try:
            if event["specversion"] != SPEC_VERSION:
                raise InvalidEnvelope(f"unsupported specversion {event['specversion']!r}")
            envelope = cls(
                id=UUID(event["id"]),
                type=str(event["type"]),
                subject=UUID(event["subject"]),
                version=int(event["aggregateversion"]),
                position=parse_sequence(event["sequence"]),
                occurred_at=datetime.fromisoformat(event["time"]),
                data=dict(event.get("data") or {}),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidEnvelope(f"not a dialtone CloudEvent: {error!r}") from error
        if envelope.type.count(".") != 3 or not envelope.type.startswith("dialtone."):
            raise InvalidEnvelope(f"unexpected event type {envelope.type!r}")
        return envelope

    @classmethod
    def from_json(cls, raw: bytes | str) -> EventEnvelope:
        try:
            decoded = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidEnvelope(f"not JSON: {error}") from error
        if not isinstance(decoded, dict):
            raise InvalidEnvelope("not a JSON object")
        return cls.from_cloudevent(decoded)


def tenant_of(data: Mapping[str, Any]) -> str:
    """The tenant a created event names; ``default`` for events stored before
    tenants existed (they have no such field)."""
    return str(data.get("tenant") or DEFAULT_TENANT)


def uuid_of(value: object) -> UUID:
    """An id an event's data holds (as text), as a UUID. A call's id comes in each of
    its events, queue's and agent's: parsed once, not in every one (parsing is 1.3 us, a
    cache hit 0.1; about three ids an event in a rebuild's call-centre fold)."""
    return _parsed(str(value))


def uuid_or_none(value: object) -> UUID | None:
    return None if value is None else uuid_of(value)


@lru_cache(maxsize=65_536)  # a call's events are minutes apart: tens of thousands of ids
def _parsed(text: str) -> UUID:
    return UUID(text)


# --- stored domain events -> envelopes -------------------------------------------------

EVENT_ID_NAMESPACE = uuid5(NAMESPACE_URL, "urn:dialtone:event")
_ENVELOPE_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic",
                    "occurred_at"}
_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


def event_type(event: object) -> str:
    return class_type(type(event))


def class_type(event_class: type) -> str:
    """The CloudEvents type of an event class's events (``event_type`` of one of them)."""
    return _type_of(event_class.__qualname__, getattr(event_class, "class_version", 1))


@cache  # a few dozen event classes; every stored event is decoded through here
def _type_of(qualname: str, version: int) -> str:
    aggregate, _, name = qualname.partition(".")
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


Refused = tuple[Notification, Exception]  # a stored event this code cannot decode, and why


def decode_each(app: Application[Any], notifications: Sequence[Notification]
                ) -> tuple[list[EventEnvelope], list[Refused]]:
    """``decode``, event by event: those this code cannot decode (a class it does not
    know: the store written by a newer release, read after a rollback) are returned
    apart rather than failing the page."""
    decoded: list[EventEnvelope] = []
    refused: list[Refused] = []
    for notification in notifications:
        try:
            decoded.append(to_envelope(app.mapper.to_domain_event(notification),
                                       notification.id))
        except Exception as error:  # decoding is pure: whatever fails, the event is why
            refused.append((notification, error))
    return decoded, refused


_PLAIN = (str, int, float, bool, type(None))
# Each type's converter, as _convert dispatches it, looked up once per type: the
# dispatch's own wrapper and cache were a tenth of decoding a stored event.
_CONVERTERS: dict[type, Callable[[Any], Any]] = {}


def _jsonable(value: Any) -> Any:
    # Most event attributes are plain already: skip the dispatch for them.
    kind = type(value)
    if kind in _PLAIN:
        return value
    convert = _CONVERTERS.get(kind)
    if convert is None:
        convert = _CONVERTERS[kind] = _convert.dispatch(kind)
    return convert(value)


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


# --- an envelope's data in a jsonb column (call_events, callcentre_events) ---------------
# A rebuild's first pass writes every stored event's data once. json.dumps was about 5 % of
# a rebuild shard's time (py-spy over bench.reports' two days, 2026-12-05); orjson does the
# same dicts in a sixth of the time. The column is jsonb, so PostgreSQL stores the same
# value whichever encoder's spacing it was given. (The Kafka value, ``to_bytes``, stays
# json.dumps': its bytes are what integrators have been reading.)

def _mapping(value: object) -> dict[Any, Any]:
    """orjson's fallback: a read-only mapping (a frozen envelope's) as a dict; any other
    type it cannot serialise is an error, as with ``json.dumps``."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dumps(value: object) -> bytes:
    return orjson.dumps(value, default=_mapping)


def jsonb(data: Mapping[str, Any]) -> Jsonb:
    """``data`` as a ``jsonb`` parameter or COPY value."""
    return Jsonb(data, dumps=_dumps)
