"""The event envelope every projection consumes, and its CloudEvents 1.0 form.

Projections never see domain objects: they read this envelope, which is exactly
what integrators read from Kafka (the CloudEvents JSON on `dialtone.<kind>s.v1`
topics), so the in-process runner and the Faust workers feed them identically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

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

    @property
    def kind(self) -> str:
        return self.type.split(".")[1]

    @property
    def name(self) -> str:
        return self.type.split(".")[2]

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
