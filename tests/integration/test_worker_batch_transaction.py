"""The Faust worker commits a batch, whatever topics it spans, in one transaction
(issue 10): one `NOTIFY dialtone_projections` for the live feed, nothing of it
committed when it fails half-way, and the batch delivered again after such a
failure gives the rows of one clean pass."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from projections import callcentre, calls
from projections.envelope import EventEnvelope
from projections.registry import ProjectionGroup
from streams.worker import Piece, ProjectionSink
from tests.integration.test_call_projections_order import lifecycle_envelopes
from tests.integration.test_callcentre_projections import SNAPSHOTS as CENTRE_SNAPSHOTS
from tests.integration.test_callcentre_projections import history

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

SNAPSHOTS = (*CENTRE_SNAPSHOTS,
             "SELECT call_id, status, disposition, talk_s, last_version FROM cdr ORDER BY 1",
             "SELECT call_id, version, position FROM call_events ORDER BY 1, 2",
             "SELECT projection, source, position FROM projection_positions ORDER BY 1, 2")
CALLS_TOPIC, QUEUES_TOPIC = "dialtone.calls.v1", "dialtone.queues.v1"


class Crash(psycopg.OperationalError):
    """The connection lost after the group's rows were written, before the commit."""


def crashing(group: ProjectionGroup) -> ProjectionGroup:
    def apply(conn: psycopg.Connection[Any], envelopes: Sequence[EventEnvelope],
              source: str) -> int:
        group.apply(conn, envelopes, source)
        raise Crash("server closed the connection unexpectedly")
    return ProjectionGroup(group.names, group.kinds, apply)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


def batch(centre: ProjectionGroup = callcentre.GROUP) -> list[Piece]:
    """A batch spanning two topics: three calls, and a morning of a call centre."""
    call_events = [e for n in range(3)
                   for e in lifecycle_envelopes(uuid4(), first_position=1 + n * 7)]
    _, centre_events = history()
    return [Piece(CALLS_TOPIC, [calls.GROUP], call_events, f"{CALLS_TOPIC}:0"),
            Piece(QUEUES_TOPIC, [centre], centre_events,
                  f"kafka:{QUEUES_TOPIC}:0,{QUEUES_TOPIC}:1")]


def snapshot(conn: psycopg.Connection[tuple[object, ...]]) -> list[list[tuple[object, ...]]]:
    return [conn.execute(query).fetchall() for query in SNAPSHOTS]


def test_a_batch_of_several_topics_is_one_commit(
        database_url: str, conn: psycopg.Connection[tuple[object, ...]]) -> None:
    sink = ProjectionSink(database_url)
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute("LISTEN dialtone_projections")
        try:
            assert sink.apply(batch())
        finally:
            sink.stop()
        conn.execute("SELECT pg_notify('dialtone_projections', 'end')")  # after the batch's
        payloads: list[str] = []
        for notify in listener.notifies(timeout=30):  # bounded
            payloads.append(notify.payload)
            if notify.payload == "end":
                break
    # PostgreSQL folds identical notifications of one transaction into one: a commit
    # per group or topic (as each topic's agent made) would have sent two or more.
    assert [p for p in payloads if p in ("", "end")] == ["", "end"]
    assert {row[0] for row in conn.execute("SELECT projection FROM projection_positions")} \
        == {*calls.NAMES, *callcentre.NAMES}


def test_a_batch_failing_half_way_commits_nothing_and_its_redelivery_equals_one_pass(
        database_url: str, conn: psycopg.Connection[tuple[object, ...]]) -> None:
    pieces = batch()
    failing = [pieces[0], Piece(QUEUES_TOPIC, [crashing(callcentre.GROUP)],
                                pieces[1].envelopes, pieces[1].source)]
    with psycopg.connect(database_url, autocommit=True) as worker, pytest.raises(Crash):
        ProjectionSink.apply_once(worker, failing)
    # The calls piece applied before the crash is rolled back with the rest: the
    # batch is not acknowledged, and nothing of it is in the tables.
    assert all(rows == [] for rows in snapshot(conn))

    sink = ProjectionSink(database_url)
    try:
        assert sink.apply(pieces)  # delivered again after the crash
        once = snapshot(conn)
        assert sink.apply(pieces)  # and once more (Faust had not committed the offsets)
        assert snapshot(conn) == once
    finally:
        sink.stop()
    # One clean pass of each group on its own, as the per-topic agents applied them.
    for table in ("cdr", "call_events", "call_live", "call_projection_gaps",
                  *callcentre.NAMES, "queue_members", "queue_calls", "projection_positions"):
        conn.execute(f"TRUNCATE {table}")
    for piece in pieces:
        for group in piece.groups:
            group.apply(conn, piece.envelopes, piece.source)
    assert snapshot(conn) == once
    assert len(once[-3]) == 3  # three calls' CDRs
    assert len(once[-2]) == 21  # and their events
