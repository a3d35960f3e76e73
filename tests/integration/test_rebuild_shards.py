"""A rebuild's first pass in several processes at once (streams/shards.py), on a
real PostgreSQL: the call-centre group's tables come out as one connection makes
them, a shard's error (even one that does not pickle, or a shard that dies without
one) stops the pass and reaches the caller, and a group whose apply is not per
aggregate is refused."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent

from application.callcentre import CallCentreService
from dialtone.database import eventsourcing_env
from projections import callcentre, calls, interval_buckets
from projections.envelope import EventEnvelope
from streams import shards
from streams.history import read_history, store_read
from streams.rebuild import replay_group
from streams.shards import apply_sharded
from tests.integration.test_rebuild_swap import fresh, generated, project, rows

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy
__all__ = ["fresh"]  # the fixture, used by name


def connector(database_url: str) -> Callable[[], psycopg.Connection[Any]]:
    return lambda: psycopg.connect(database_url, autocommit=True)


def test_three_shards_build_the_tables_one_connection_builds(
        fresh: Callable[[], str]) -> None:
    one, three = fresh(), fresh()
    history = generated(3000)
    head = project(one, history)
    source = f"store:{history.service.name}"
    told: list[int] = []
    last = apply_sharded(connector(three), callcentre.GROUP,
                         store_read(history.service, page_size=200), source, 3,
                         progress=told.append).last
    assert interval_buckets.refresh_fresh(connector(three), 3) > interval_buckets.BATCH
    with psycopg.connect(three, autocommit=True) as conn:
        recorded: dict[str, int] = dict(conn.execute(
            "SELECT projection, position FROM projection_positions WHERE source = %s",
            (source,)).fetchall())
    assert last == head
    assert sum(told) == head  # every event read (positions 1..head), told once
    assert recorded == dict.fromkeys(callcentre.NAMES, head)
    built = rows(three)
    assert min(len(built[t]) for t in ("agent_state", "queue_live", "queue_visits",
                                        "queue_handling", "agent_state_intervals")) > 0
    assert built == rows(one)


def test_shards_read_a_postgresql_store_on_connections_of_their_own(
        fresh: Callable[[], str]) -> None:
    """Each shard, forked, reads the store itself: on a pool of its own, not on the
    connections of the pool it inherited (its parent's, and the other shard's)."""
    one, two = fresh(), fresh()
    history = generated(1500)
    head = project(one, history)
    stored = CallCentreService(env=eventsourcing_env(two))  # the same history, in PostgreSQL
    stored.recorder.insert_events([
        StoredEvent(n.originator_id, n.originator_version, n.topic, n.state)
        for n in history.service.recorder.select_notifications(1, head + 1)])
    assert stored.recorder.max_notification_id() == head  # its pool now holds a connection
    done = apply_sharded(connector(two), callcentre.GROUP,
                         store_read(stored, page_size=100), f"store:{history.service.name}", 2)
    assert done == shards.Pass(head, head)
    assert stored.recorder.max_notification_id() == head  # its pool unharmed by the shards
    interval_buckets.refresh_fresh(connector(two), 2)
    assert rows(two) == rows(one)


def test_a_rebuild_on_three_connections_swaps_in_what_one_builds(
        fresh: Callable[[], str]) -> None:
    database_url, reference = fresh(), fresh()
    history = generated(1500)
    project(database_url, history)
    project(reference, history)
    replay_group(history.service, database_url, callcentre.GROUP, jobs=3)
    assert rows(database_url) == rows(reference)


class ShardError(Exception):
    pass


def test_a_failing_shard_stops_the_pass_and_its_error_reaches_the_caller(
        fresh: Callable[[], str]) -> None:
    database_url = fresh()
    history = generated(1500)
    pages = list(read_history(history.service, page_size=20))
    failing_at = pages[5][-1].position

    def apply(conn: psycopg.Connection[Any], batch: Sequence[EventEnvelope], source: str) -> int:
        if any(e.position >= failing_at for e in batch):
            raise ShardError(f"cannot apply up to {failing_at}")
        return callcentre.apply_batch(conn, batch, source)

    pages_read = multiprocessing.Value("i", 0)  # by both shards, each in its process

    def reading(share: shards.Share) -> Iterator[shards.Page]:
        for page in shards.from_pages(pages)(share):
            with pages_read.get_lock():
                pages_read.value += 1
            yield page

    group = dataclasses.replace(callcentre.GROUP, apply=apply)
    with pytest.raises(ShardError, match="cannot apply"):
        apply_sharded(connector(database_url), group, reading, "store:test", 2)
    assert pages_read.value < len(pages)  # stopped, neither read to the end
    assert not [t for t in threading.enumerate() if t.name.startswith("shard-")]
    assert not multiprocessing.active_children()
    with psycopg.connect(database_url) as conn:  # the failing page's transaction rolled back
        assert conn.execute("SELECT count(*) FROM callcentre_events WHERE position >= %s",
                            (failing_at,)).fetchone() == (0,)
        applied = conn.execute("SELECT count(*) FROM projection_positions"
                               " WHERE source = 'store:test'").fetchone()
        assert applied is not None
        assert applied[0] > 0  # the pages before it committed


def test_a_shard_that_dies_without_a_word_stops_the_pass(fresh: Callable[[], str]) -> None:
    database_url = fresh()
    pages = list(read_history(generated(600).service, page_size=20))

    def apply(conn: psycopg.Connection[Any], batch: Sequence[EventEnvelope], source: str) -> int:
        os._exit(3)  # as the kernel's OOM killer would leave it: no report

    group = dataclasses.replace(callcentre.GROUP, apply=apply)
    with pytest.raises(shards.ShardError, match="exit code 3"):
        apply_sharded(connector(database_url), group, shards.from_pages(pages), "store:test",
                      2)
    assert not multiprocessing.active_children()


class Unpicklable(Exception):  # noqa: N818 - named for what the test needs of it
    def __init__(self) -> None:
        super().__init__("holds a lock")
        self.lock = threading.Lock()


def test_a_shard_error_that_does_not_pickle_reaches_the_caller_as_text(
        fresh: Callable[[], str]) -> None:
    database_url = fresh()
    pages = list(read_history(generated(600).service, page_size=20))

    def apply(conn: psycopg.Connection[Any], batch: Sequence[EventEnvelope], source: str) -> int:
        raise Unpicklable

    group = dataclasses.replace(callcentre.GROUP, apply=apply)
    with pytest.raises(shards.ShardError, match="Unpicklable: holds a lock"):
        apply_sharded(connector(database_url), group, shards.from_pages(pages), "store:test",
                      2)


def test_a_group_whose_apply_is_not_per_aggregate_is_refused(fresh: Callable[[], str]) -> None:
    database_url = fresh()
    with pytest.raises(ValueError, match="not per aggregate"):
        apply_sharded(connector(database_url), calls.GROUP, shards.from_pages([]),
                      "store:test", 2)
