"""Who did it, for the events the B2BUA worker stores on an API command's behalf: a
supervisor joins a live queue call (the call records SupervisionStarted when
their phone answers, seconds after the API answered), leaves, then transfers the
caller to another queue; the call's timeline names the supervisor and each
request's X-Request-ID on exactly those events (issue 9 §4), through the
commands' audit rows."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from application.callcentre import CallCentreService
from domain.call import Call
from streams.routing_process import RoutingRunner
from tests.e2e.test_callcentre_supervision import supervisor
from tests.fixtures.callcentre import (
    StartPhone,
    api,
    centre,
    login,
    phone,
    provision_queue,
    router,
    wait_for,
)
from tests.fixtures.sip import StartWorker

pytestmark = pytest.mark.sip
__all__ = ["api", "centre", "phone", "router"]

EVENT = "dialtone.call.{}.v1"


def _timeline(api: TestClient, call_id: Any, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = api.get(f"/v1/calls/{call_id}/timeline", headers=headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def _who(api: TestClient, call_id: Any, headers: dict[str, str], kind: str
         ) -> list[tuple[str | None, str | None, str | None]]:
    """(actor, actor kind, request id) of each event of this kind on the call."""
    return [(e["actor"], e["actor_kind"], e["request_id"])
            for e in _timeline(api, call_id, headers) if e["type"] == EVENT.format(kind)]


def _shown(api: TestClient, call_id: Any, headers: dict[str, str], kind: str,
           request_id: str) -> bool:
    return any(rid == request_id for _, _, rid in _who(api, call_id, headers, kind))


def test_the_timeline_names_the_supervisor_and_request_behind_the_workers_events(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, api: TestClient,
    phone: StartPhone, database_url: str,
) -> None:
    provision_queue(centre, "sales", ["alice"], did="5000")
    provision_queue(centre, "support", ["bob"])
    alice = phone("alice", "--answer-after", "0.2")
    bob = phone("bob", "--answer-after", "0.2", "--hangup-after", "1.0")
    login(centre, "alice", alice)
    login(centre, "bob", bob)
    sam = phone("sam", "--answer-after", "1.0")  # answers after the API has answered
    worker = b2bua()
    caller = phone("caller")
    caller.send(f"dial sip:5000@127.0.0.1:{worker.port}")
    call_id = Call.id_for(caller.wait("dialled")["sip_call_id"])
    alice.wait("state", state="CONFIRMED")
    as_sam = supervisor(api, database_url, "sam", sam.uri)
    users = api.get("/v1/auth/users").json()["data"]  # the client's admin key
    sam_id = next(u["id"] for u in users if u["username"] == "sam")

    started = api.post(f"/v1/calls/{call_id}/supervision", json={"mode": "monitor"},
                       headers={**as_sam, "X-Request-ID": "monitor-by-sam-1"})
    assert started.status_code == 202, started.text
    sam.wait("state", state="CONFIRMED")
    wait_for(lambda: _shown(api, call_id, as_sam, "supervision_started", "monitor-by-sam-1"),
             "SupervisionStarted linked to the monitor request")
    left = api.delete(f"/v1/calls/{call_id}/supervision/sam",
                      headers={**as_sam, "X-Request-ID": "leave-by-sam-1"})
    assert left.status_code == 204, left.text
    sam.wait("state", state="DISCONNECTED")
    moved = api.post(f"/v1/calls/{call_id}/transfer",
                     json={"target": {"kind": "queue", "value": "support"}},
                     headers={**as_sam, "X-Request-ID": "to-support-1"})
    assert moved.status_code == 202, moved.text
    bob.wait("state", state="CONFIRMED")
    # Each batch the worker stores is linked on its own: wait for the last of them.
    wait_for(lambda: _shown(api, call_id, as_sam, "supervision_ended", "leave-by-sam-1")
             and _shown(api, call_id, as_sam, "transferred", "to-support-1")
             and _shown(api, call_id, as_sam, "queued", "to-support-1"),
             "SupervisionEnded, Transferred and the second Queued linked")

    assert _who(api, call_id, as_sam, "supervision_started") == [
        (sam_id, "user", "monitor-by-sam-1")]
    assert _who(api, call_id, as_sam, "supervision_ended") == [
        (sam_id, "user", "leave-by-sam-1")]
    assert _who(api, call_id, as_sam, "transferred") == [(sam_id, "user", "to-support-1")]
    # The caller queued again, in support, because of the transfer; the first time
    # (and the answer, the agents) was the SIP side's alone.
    assert _who(api, call_id, as_sam, "queued") == [(None, None, None),
                                                    (sam_id, "user", "to-support-1")]
    assert _who(api, call_id, as_sam, "answered") == [(None, None, None)]
    caller.wait("state", state="DISCONNECTED")  # bob hangs up after a second


def test_a_waiting_caller_moved_by_a_supervisor_is_requeued_in_their_name(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, api: TestClient,
    phone: StartPhone, database_url: str,
) -> None:
    """The queue moves a caller still waiting (no Transferred); the worker follows the
    queue's event, and the Queued it then stores is the supervisor's request's."""
    provision_queue(centre, "sales", ["alice"], did="5000")  # nobody logged in to sales
    provision_queue(centre, "support", ["bob"])
    bob = phone("bob", "--answer-after", "0.2", "--hangup-after", "1.0")
    login(centre, "bob", bob)
    worker = b2bua()
    caller = phone("caller")
    caller.send(f"dial sip:5000@127.0.0.1:{worker.port}")
    call_id = Call.id_for(caller.wait("dialled")["sip_call_id"])
    caller.wait("state", state="CONFIRMED")
    as_sam = supervisor(api, database_url, "sam", "sip:sam@127.0.0.1")
    wait_for(lambda: len(_who(api, call_id, as_sam, "queued")) == 1, "the caller queued")

    moved = api.post(f"/v1/calls/{call_id}/transfer",
                     json={"target": {"kind": "queue", "value": "support"}},
                     headers={**as_sam, "X-Request-ID": "waiting-to-support-1"})
    assert moved.status_code == 202, moved.text
    bob.wait("state", state="CONFIRMED")
    wait_for(lambda: _shown(api, call_id, as_sam, "queued", "waiting-to-support-1")
             and bool(_who(api, call_id, as_sam, "agent_connected")),
             "the second Queued linked, bob connected")

    (first, second) = _who(api, call_id, as_sam, "queued")
    assert first == (None, None, None)
    assert second[1:] == ("user", "waiting-to-support-1")
    assert _who(api, call_id, as_sam, "agent_connected") == [(None, None, None)]  # bob's own
    caller.wait("state", state="DISCONNECTED")  # bob hangs up after a second
