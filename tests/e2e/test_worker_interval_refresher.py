"""Kafka deployment: the Faust worker runs the interval buckets' refresher (the
call-centre group's apply only marks buckets dirty). Real processes: the event
store, `dialtone relay`, the Kafka broker, `dialtone worker`; the buckets it
leaves (and their hours) equal those of a rebuild from the store."""

from __future__ import annotations

import pytest

from projections import callcentre
from streams.rebuild import replay_group
from tests.e2e.test_worker_projections_never_lost import Stack, _agents_and_queues, stack
from tests.fixtures.processes import wait_for

__all__ = ["stack"]  # the fixture, shared
pytestmark = pytest.mark.kafka
BUCKETS = (
    "SELECT * FROM interval_queue ORDER BY bucket_start, queue_id",
    "SELECT * FROM interval_agent ORDER BY bucket_start, agent_id",
    "SELECT * FROM interval_agent_state ORDER BY bucket_start, agent_id, state, reason",
    "SELECT * FROM interval_marks ORDER BY bucket_start",
    "SELECT * FROM interval_queue_hour ORDER BY bucket_start, queue_id",
    "SELECT * FROM interval_agent_hour ORDER BY bucket_start, agent_id",
    "SELECT * FROM interval_agent_state_hour ORDER BY bucket_start, agent_id, state, reason",
)


def test_the_worker_refreshes_the_buckets_its_batches_mark(stack: Stack) -> None:
    _agents_and_queues(stack.centre, agents=20, queues=4, tag="iv")
    relay, worker = stack.spawn(["relay"]), stack.spawn(["worker"])
    # Every event projected, then no mark left: the refresher computed them all.
    wait_for(lambda: stack.count("SELECT count(*) FROM agent_state WHERE last_version = 4") == 20
             and stack.count("SELECT coalesce(sum(last_version), 0) FROM queue_live") == 24
             and stack.count("SELECT count(*) FROM interval_dirty") == 0,
             150, "every event projected and its buckets refreshed", processes=(relay, worker))
    refreshed = [stack.query(sql) for sql in BUCKETS]
    assert refreshed[1]  # agents' time in the buckets
    assert refreshed[3]  # and their marks
    assert refreshed[5]  # and their hours
    worker.stop()
    relay.stop()
    replay_group(stack.centre, stack.database_url, callcentre.GROUP)
    assert [stack.query(sql) for sql in BUCKETS] == refreshed
