"""A CDR's wrap_up_s is the agent's after-call work following the call (issue 11
§6), a fact of the call-centre log: filled whichever projection group runs
first, and again by `dialtone rebuild cdr` (real PostgreSQL, real services)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg
import pytest

from application.callcentre import CallCentreService
from application.calls import CallService
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from domain.values import Direction, Disposition, HangupSide
from projections import callcentre, calls
from streams.inprocess import InProcessProjectionRunner
from streams.rebuild import rebuild

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WRAP_UP_S = 12.0  # the agent finished after-call work 12 s after the call ended (queue: 30)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _handled_call(centre: CallCentreService, service: CallService) -> UUID:
    queue = centre.create_queue("sales", "Sales", "longest_idle", occurred_at=at(0),
                                wrap_up_s=30)
    agent = centre.create_agent("alice", "Alice", occurred_at=at(0))
    centre.add_member(queue.id, agent.id, 0, at(0))
    centre.login(agent.id, "sip:alice@127.0.0.1", at(0))
    call_id = service.initiate_call(caller="+3225550100", callee="+3225550199",
                                    direction=Direction.INBOUND, trunk="+3225550199",
                                    sip_call_id="wrap-up@test", occurred_at=at(1))
    centre.enqueue_call(queue.id, call_id, 0, at(2))
    centre.offer_call(queue.id, call_id, [agent.id], at(3))
    centre.accept_offer(agent.id, call_id, at(5))
    service.answer_call(call_id, at(5))
    service.end_call(call_id, disposition=Disposition.ANSWERED, hangup_cause="normal_clearing",
                     hangup_side=HangupSide.CALLER, sip_status=200, occurred_at=at(60))
    centre.end_agent_call(agent.id, call_id, at(60))
    centre.finish_wrap_up(agent.id, at(60 + WRAP_UP_S))
    return call_id


def _wrap_up(database_url: str, call_id: UUID) -> float | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT wrap_up_s FROM cdr WHERE call_id = %s", (call_id,)).fetchone()
    assert row is not None
    value: float | None = row[0]
    return value


@pytest.mark.parametrize("calls_first", [True, False])
def test_the_cdr_gets_the_agents_wrap_up_whichever_group_projects_first(
        database_url: str, calls_first: bool) -> None:
    apply_migrations(database_url)
    env = eventsourcing_env(database_url)
    with CallCentreService(env=env) as centre, CallService(env=env) as service:
        call_id = _handled_call(centre, service)
        runners = [InProcessProjectionRunner(service, database_url, [calls.GROUP]),
                   InProcessProjectionRunner(centre, database_url, [callcentre.GROUP])]
        for runner in runners if calls_first else runners[::-1]:
            runner.catch_up()
        assert _wrap_up(database_url, call_id) == WRAP_UP_S
        # A rebuild of the CDRs from the call store alone keeps it.
        rebuild(service, database_url, ("cdr",))
        assert _wrap_up(database_url, call_id) == WRAP_UP_S
