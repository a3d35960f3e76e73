"""Transfers and hold on queue calls: to another queue (with each queue's
accounting), attended through a consultation, and hold/resume by the agent."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.media.tones import HOLD_MELODY
from application.callcentre import CallCentreService
from domain.agent import Agent, AgentState
from domain.call import Call
from streams.routing_process import RoutingRunner
from tests.fixtures.callcentre import (
    StartPhone,
    agent_state,
    api,
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
from tests.softphone import audio

pytestmark = pytest.mark.sip
__all__ = ["api", "centre", "phone", "router"]

MELODY = sorted({f for f, _ in HOLD_MELODY if f})


def hold_sides(call_store: CallStore, sip_call_id: str) -> list[str]:
    """The side of each stored Held and Resumed of the call, in order."""
    events = call_store.service.events.get(Call.id_for(sip_call_id))
    return [e.side for e in events if isinstance(e, Call.Held | Call.Resumed)]


def test_a_call_transferred_to_another_queue_is_answered_there_and_counted_in_both(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, api: TestClient,
    phone: StartPhone, call_store: CallStore,
) -> None:
    provision_queue(centre, "sales", ["alice"], did="5000", wrap_up_s=30.0)
    provision_queue(centre, "support", ["bob"])
    alice = phone("alice", "--answer-after", "0.2")
    bob = phone("bob", "--answer-after", "0.2", "--hangup-after", "1.0")
    login(centre, "alice", alice)
    login(centre, "bob", bob)
    worker = b2bua()
    caller = phone("caller")
    caller.send(f"dial sip:5000@127.0.0.1:{worker.port}")
    sip_call_id = caller.wait("dialled")["sip_call_id"]
    alice.wait("state", state="CONFIRMED")

    moved = api.post(f"/v1/calls/{Call.id_for(sip_call_id)}/transfer",
                     json={"target": {"kind": "queue", "value": "support"}})
    assert moved.status_code == 202, moved.text
    assert moved.json()["state"] == "queued"
    alice.wait("state", state="DISCONNECTED")
    bob.wait("state", state="CONFIRMED")
    caller.wait("state", state="DISCONNECTED")  # bob hangs up after a second

    wait_for(lambda: event_names(call_store, sip_call_id)[-1:] == ["Ended"], "the call's end")
    call = call_of(call_store, sip_call_id)
    assert (call.queue, call.agents, call.disposition) == ("support", ["alice", "bob"],
                                                           "answered")
    assert [(t.kind, t.target) for t in call.transfers] == [("blind", "queue:support")]
    sales, support = queue_of(centre, "sales").tally, queue_of(centre, "support").tally
    assert (sales.offered, sales.answered, sales.transferred_out) == (1, 1, 0)
    assert (support.offered, support.transferred_in, support.answered) == (1, 1, 1)
    assert agent_state(centre, "alice") is AgentState.WRAP_UP  # she left the call
    handled = [centre.get(Agent, Agent.id_for(a)).calls_handled for a in ("alice", "bob")]
    assert handled == [1, 1]


def test_an_attended_transfer_consults_the_target_then_connects_the_caller(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, api: TestClient,
    phone: StartPhone, call_store: CallStore, tmp_path: Path,
) -> None:
    record = ["--record-dir", str(tmp_path / "rec")]
    provision_queue(centre, "sales", ["alice"], did="5000")
    alice = phone("alice", "--answer-after", "0.2", "--tone", "1000", *record)
    login(centre, "alice", alice)
    carol = phone("carol", "--answer-after", "0.3", "--tone", "1800")  # an expert, not an agent
    worker = b2bua()
    caller = phone("caller", "--tone", "440", *record)
    caller.send(f"dial sip:5000@127.0.0.1:{worker.port}")
    sip_call_id = caller.wait("dialled")["sip_call_id"]
    call_id = Call.id_for(sip_call_id)
    alice.wait("state", state="CONFIRMED")

    consult = api.post(f"/v1/calls/{call_id}/transfer",
                       json={"kind": "attended", "target": {"kind": "uri", "value": carol.uri}})
    assert consult.status_code == 202, consult.text
    consulting = carol.wait("state", state="CONFIRMED")["t"]
    time.sleep(2.5)
    done = api.post(f"/v1/calls/{call_id}/transfer/complete")
    assert done.status_code == 200, done.text
    completed = time.time()
    alice.wait("state", state="DISCONNECTED")
    time.sleep(2.0)
    caller.send("hangup")
    carol.wait("state", state="DISCONNECTED")

    wait_for(lambda: event_names(call_store, sip_call_id)[-1:] == ["Ended"], "the call's end")
    names = event_names(call_store, sip_call_id)
    assert names.index("Held") < names.index("Transferred") < names.index("Resumed")
    assert hold_sides(call_store, sip_call_id) == ["callee", "callee"]  # the agent consulted
    call = call_of(call_store, sip_call_id)
    assert [(t.kind, t.target) for t in call.transfers] == [("attended", carol.uri)]
    assert (call.disposition, call.hold_count) == ("answered", 1)
    agent_rec = audio.read(Path(alice.wait("recorded")["path"]))
    caller_rec = audio.read(Path(caller.wait("recorded")["path"]))
    agent_start = alice.all("media")[0]["t"]
    caller_start = caller.all("media")[0]["t"]
    during = agent_rec.window(consulting + 0.5 - agent_start, completed - 0.3 - agent_start)
    assert audio.hears(during, 1800.0), "the agent did not hear the consulted party"
    assert not audio.hears(during, 440.0), "the caller was not held during the consultation"
    waiting = caller_rec.window(consulting + 0.5 - caller_start, completed - 0.3 - caller_start)
    assert not audio.hears(waiting, 1800.0), "the caller overheard the consultation"
    assert audio.tones_heard(waiting, MELODY), "the caller did not hear music while waiting"
    after = caller_rec.window(completed + 0.5 - caller_start, completed + 1.8 - caller_start)
    assert audio.hears(after, 1800.0), "the caller was not connected to the target"


def test_the_agent_holding_a_queue_call_plays_music_to_the_caller_and_resumes(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, phone: StartPhone,
    call_store: CallStore, tmp_path: Path,
) -> None:
    provision_queue(centre, "sales", ["alice"], did="5000")
    alice = phone("alice", "--answer-after", "0.2", "--tone", "1000")
    login(centre, "alice", alice)
    worker = b2bua()
    caller = phone("caller", "--record-dir", str(tmp_path / "rec"))
    caller.send(f"dial sip:5000@127.0.0.1:{worker.port}")
    sip_call_id = caller.wait("dialled")["sip_call_id"]
    alice.wait("state", state="CONFIRMED")
    time.sleep(0.5)
    alice.send("hold")
    held = time.time()
    time.sleep(2.5)
    alice.send("unhold")
    time.sleep(1.5)
    caller.send("hangup")

    wait_for(lambda: event_names(call_store, sip_call_id)[-1:] == ["Ended"], "the call's end")
    names = event_names(call_store, sip_call_id)
    assert names.index("Answered") < names.index("Held") < names.index("Resumed")
    assert call_of(call_store, sip_call_id).hold_count == 1
    assert hold_sides(call_store, sip_call_id) == ["callee", "callee"]  # the agent's phone
    recording = audio.read(Path(caller.wait("recorded")["path"]))
    start = caller.all("media")[0]["t"]
    on_hold = recording.window(held + 0.5 - start, held + 2.3 - start)
    assert audio.tones_heard(on_hold, MELODY), "no music on hold"
    assert not audio.hears(on_hold, 1000.0), "the caller still heard the agent"


def test_a_caller_still_waiting_is_moved_to_another_queue_by_the_queue_itself(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, api: TestClient,
    phone: StartPhone, call_store: CallStore,
) -> None:
    provision_queue(centre, "sales", ["alice"], did="5000")  # nobody logged in to sales
    provision_queue(centre, "support", ["bob"])
    bob = phone("bob", "--answer-after", "0.2", "--hangup-after", "1.0")
    login(centre, "bob", bob)
    worker = b2bua()
    caller = phone("caller")
    caller.send(f"dial sip:5000@127.0.0.1:{worker.port}")
    sip_call_id = caller.wait("dialled")["sip_call_id"]
    caller.wait("state", state="CONFIRMED")
    wait_for(lambda: "Queued" in event_names(call_store, sip_call_id), "the caller queued")

    moved = api.post(f"/v1/calls/{Call.id_for(sip_call_id)}/transfer",
                     json={"target": {"kind": "queue", "value": "support"}})
    assert moved.status_code == 202, moved.text
    bob.wait("state", state="CONFIRMED")
    caller.wait("state", state="DISCONNECTED")

    wait_for(lambda: event_names(call_store, sip_call_id)[-1:] == ["Ended"], "the call's end")
    call = call_of(call_store, sip_call_id)
    assert (call.queue, call.agents, call.transfers) == ("support", ["bob"], [])
    sales, support = queue_of(centre, "sales").tally, queue_of(centre, "support").tally
    assert (sales.offered, sales.transferred_out, sales.answered) == (1, 1, 0)
    assert (support.offered, support.transferred_in, support.answered) == (1, 1, 1)
