"""Queues on the wire: real B2BUA workers, the routing process, softphone agents
and callers in their own processes, all on loopback."""

from __future__ import annotations

import pytest

from application.callcentre import CallCentreService
from domain.agent import AgentState
from streams.routing_process import RoutingRunner
from tests.fixtures.callcentre import (
    StartPhone,
    agent_state,
    call_of,
    centre,
    event_names,
    login,
    phone,
    provision_queue,
    queue_of,
    router,
    wait_for,
)
from tests.fixtures.sip import CallStore, StartWorker

pytestmark = pytest.mark.sip
__all__ = ["centre", "phone", "router"]  # fixtures used by name


def test_a_caller_to_a_queue_number_waits_then_talks_to_the_free_agent(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, phone: StartPhone,
    call_store: CallStore,
) -> None:
    provision_queue(centre, "sales", ["alice"], did="5000", wrap_up_s=1.0)
    alice = phone("alice", "--answer-after", "0.5", "--tone", "1000")
    login(centre, "alice", alice)
    worker = b2bua()
    caller = phone("caller", "--tone", "440")

    caller.send(f"dial sip:5000@127.0.0.1:{worker.port}")
    sip_call_id = caller.wait("dialled")["sip_call_id"]
    caller.wait("state", state="CONFIRMED")  # the platform answered the caller's leg
    alice.wait("incoming", timeout=10)
    alice.wait("state", state="CONFIRMED")
    wait_for(lambda: agent_state(centre, "alice") is AgentState.ON_CALL, "alice on the call")
    caller.send("hangup")
    alice.wait("state", state="DISCONNECTED")

    wait_for(lambda: event_names(call_store, sip_call_id)[-1:] == ["Ended"], "the call's end")
    names = event_names(call_store, sip_call_id)
    assert names[:4] == ["Initiated", "Routed", "Queued", "Ringing"], names
    assert names.index("AgentConnected") < names.index("Answered") < names.index("Ended")
    call = call_of(call_store, sip_call_id)
    assert (call.queue, call.agents, call.disposition) == ("sales", ["alice"], "answered")
    wait_for(lambda: agent_state(centre, "alice") is AgentState.AVAILABLE, "wrap-up over")
    tally = queue_of(centre, "sales").tally
    assert (tally.offered, tally.answered, tally.abandoned) == (1, 1, 0)
