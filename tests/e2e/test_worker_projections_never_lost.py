"""The Faust worker never acknowledges events whose projection rows are not
committed (issue 16.1: agents sharing one connection across threads crashed
with OutOfOrderTransactionNesting, and their offsets were committed anyway, so
7,082 calls had no CDR, for good).

Real processes: the event store, `dialtone relay`, the Kafka broker, `dialtone
worker`; the projections are compared with a clean rebuild from the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from application.callcentre import CallCentreService
from application.calls import CallService
from devtools.simulate import lifecycles
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from projections import callcentre, calls
from projections.positions import count_parked
from streams.rebuild import rebuild, replay_group
from streams.worker import APPLICATION_NAME
from tests.fixtures.kafka import pipeline_env
from tests.fixtures.processes import DialtoneProcess, wait_for

pytestmark = pytest.mark.kafka
T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
SNAPSHOTS = (
    "SELECT * FROM cdr ORDER BY call_id",
    "SELECT call_id, version, event_id, position, type, data FROM call_events ORDER BY 1, 2",
    "SELECT key, name, state, state_since, state_version, device_uri, pause_reason,"
    " missed_offers, calls_handled, last_version FROM agent_state ORDER BY key",
    "SELECT agent_id, started_version, state, reason, ended_at, duration_s"
    " FROM agent_state_intervals ORDER BY 1, 2",
    "SELECT key, name, offered, last_version FROM queue_live ORDER BY key",
    "SELECT aggregate_id, version, event_id, position, data FROM callcentre_events"
    " ORDER BY 1, 2",
)


@dataclass
class Stack:
    database_url: str
    calls: CallService
    centre: CallCentreService
    spawn: Callable[[list[str]], DialtoneProcess]

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql).fetchall()

    def count(self, sql: str) -> int:
        value = self.query(sql)[0][0]
        assert isinstance(value, int)
        return value

    def snapshot(self) -> list[list[tuple[object, ...]]]:
        return [self.query(sql) for sql in SNAPSHOTS]

    def clean_rebuild(self) -> list[list[tuple[object, ...]]]:
        rebuild(self.calls, self.database_url, calls.NAMES)
        replay_group(self.centre, self.database_url, callcentre.GROUP)
        return self.snapshot()

    def assert_lost_nothing(self) -> None:
        """The projections as the stopped worker left them equal a clean rebuild from
        the store, and no event was parked as poison."""
        projected = self.snapshot()
        assert self.clean_rebuild() == projected
        with psycopg.connect(self.database_url) as conn:
            assert count_parked(conn) == {}


@pytest.fixture
def stack(database_url: str, kafka_bootstrap: str,
          dialtone_processes: Callable[..., DialtoneProcess]) -> Stack:
    apply_migrations(database_url)
    env = pipeline_env(database_url, kafka_bootstrap)
    return Stack(database_url, CallService(env=eventsourcing_env(database_url)),
                 CallCentreService(env=eventsourcing_env(database_url)),
                 lambda args: dialtone_processes(args, env))


def _agents_and_queues(centre: CallCentreService, agents: int, queues: int, tag: str) -> int:
    """Agents that log in, pause and resume, and queues with members; returns events stored."""
    ids = []
    for n in range(agents):
        agent = centre.create_agent(f"{tag}-a{n}", f"Agent {n}", occurred_at=T0).id
        centre.login(agent, f"sip:{tag}-a{n}@pbx.example.com", T0 + timedelta(seconds=1))
        centre.pause(agent, "coffee", T0 + timedelta(seconds=2))
        centre.resume(agent, T0 + timedelta(seconds=3))
        ids.append(agent)
    for q in range(queues):
        queue = centre.create_queue(f"{tag}-q{q}", f"Queue {q}", "longest_idle",
                                    occurred_at=T0).id
        for agent in ids[q::queues]:
            centre.add_member(queue, agent, 0, T0 + timedelta(seconds=4))
    return agents * 4 + queues + agents


def test_agents_projecting_several_topics_at_once_lose_nothing(stack: Stack) -> None:
    # A backlog on the call, agent and queue topics before the worker starts,
    # so that its agents apply batches at the same time.
    lifecycles(stack.calls, 500, "burst")
    _agents_and_queues(stack.centre, agents=200, queues=20, tag="burst")
    relay = stack.spawn(["relay"])
    worker = stack.spawn(["worker"])

    wait_for(lambda: stack.count("SELECT count(*) FROM cdr WHERE ended_at IS NOT NULL") == 500
             and stack.count("SELECT count(*) FROM agent_state WHERE last_version = 4") == 200
             and stack.count("SELECT coalesce(sum(last_version), 0) FROM queue_live") == 220,
             150, "every call, agent and queue projected", processes=(relay, worker))
    worker.stop()
    relay.stop()

    stack.assert_lost_nothing()


REFUSE_WRITES = """
CREATE FUNCTION refuse_writes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cdr is not writable now' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER refuse_writes BEFORE INSERT OR UPDATE ON cdr
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_writes();
"""


def test_batches_failing_in_the_database_are_retried_not_acknowledged(stack: Stack) -> None:
    # The cdr table refuses writes as it would after a REVOKE (the embedded
    # server's user is a superuser, whom REVOKE does not bind): every call
    # batch fails, not with an OperationalError.
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(REFUSE_WRITES)
    lifecycles(stack.calls, 200, "refused")
    relay, worker = stack.spawn(["relay"]), stack.spawn(["worker"])
    wait_for(lambda: "InsufficientPrivilege" in worker.log.read_text(errors="replace"), 90,
             "the worker to meet the refusal", processes=(relay, worker))

    # Its sessions killed too, mid-retry: it must reconnect.
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE application_name = %s", (APPLICATION_NAME,))
        conn.execute("DROP TRIGGER refuse_writes ON cdr")
    lifecycles(stack.calls, 100, "after")

    wait_for(lambda: stack.count("SELECT count(*) FROM cdr WHERE ended_at IS NOT NULL") == 300,
             120, "all 300 CDRs once the table is writable", processes=(relay, worker))
    # And a restarted worker finds nothing left unacknowledged to redo wrongly.
    worker.stop()
    worker = stack.spawn(["worker"])
    lifecycles(stack.calls, 10, "restarted")
    wait_for(lambda: stack.count("SELECT count(*) FROM cdr WHERE ended_at IS NOT NULL") == 310,
             120, "the CDRs after a restart", processes=(relay, worker))
    worker.stop()
    relay.stop()

    stack.assert_lost_nothing()
