"""A runner hands every page to every projection group. A page with none of a group's
kinds moves that group's position on and nothing else, without entering the group's
apply: a plain call's page never runs the call-centre group's fold."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from projections import callcentre, positions
from projections.envelope import EventEnvelope
from projections.positions import apply_or_park, count_parked
from projections.registry import ProjectionGroup

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

SOURCE = "store:test"
AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _recording(group: ProjectionGroup, seen: list[int]) -> ProjectionGroup:
    """``group`` whose apply notes the size of each batch it is given, and does nothing."""
    def apply(conn: psycopg.Connection[Any], envelopes: Sequence[EventEnvelope],
              source: str) -> int:
        seen.append(len(envelopes))
        return 0
    return ProjectionGroup(group.names, group.kinds, apply)


def _event(kind: str, position: int) -> EventEnvelope:
    return EventEnvelope(id=uuid4(), type=f"dialtone.{kind}.created.v1", subject=uuid4(),
                         version=1, position=position, occurred_at=AT, data={})


def test_a_page_without_the_group_s_kinds_records_every_position_of_the_group(
        database_url: str) -> None:
    page = [_event("call", 7), _event("call", 9)]
    with psycopg.connect(database_url, autocommit=True) as conn:
        seen: list[int] = []
        assert apply_or_park(conn, _recording(callcentre.GROUP, seen), page, SOURCE) == 0
        recorded = {name: positions.read(conn, name, SOURCE) for name in callcentre.NAMES}
        parked = count_parked(conn)
    assert seen == []
    assert recorded == dict.fromkeys(callcentre.NAMES, 9)
    assert parked == {}


def test_a_page_with_one_of_the_group_s_kinds_is_applied_whole(database_url: str) -> None:
    page = [_event("call", 7), _event("queue", 8)]
    with psycopg.connect(database_url, autocommit=True) as conn:
        seen: list[int] = []
        apply_or_park(conn, _recording(callcentre.GROUP, seen), page, SOURCE)
    assert seen == [2]
