"""Supervisors on live queue calls through the API: the worker that holds the call
calls the supervisor's phone and routes the audio; every phone records what it
hears, and tones tell who heard whom (caller 440 Hz, agent 1000 Hz, supervisor
1800 Hz)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from application.callcentre import CallCentreService
from application.identity.model import Role
from devtools.phones import Softphone
from domain.call import Call, Direction, Disposition, HangupSide
from streams.routing_process import RoutingRunner
from tests.fixtures.callcentre import (
    StartPhone,
    api,
    centre,
    event_names,
    login,
    now,
    phone,
    provision_queue,
    router,
    wait_for,
)
from tests.fixtures.sip import CallStore, StartWorker
from tests.integration.auth_support import add_user, bearer, token_for
from tests.softphone import audio

pytestmark = pytest.mark.sip
__all__ = ["api", "centre", "phone", "router"]

CALLER_HZ, AGENT_HZ, SUPERVISOR_HZ = 440.0, 1000.0, 1800.0


def _heard(phone: Softphone, since: float, until: float) -> audio.Recording:
    """What ``phone`` heard between two wall-clock instants of its only call."""
    recording = audio.read(Path(phone.wait("recorded", timeout=20)["path"]))
    media_up = next(e["t"] for e in phone.all("media"))  # the recorder starts with the media
    return recording.window(since - media_up, until - media_up)


@pytest.mark.parametrize(("mode", "agent_hears", "caller_hears"), [
    ("monitor", False, False), ("whisper", True, False), ("barge", True, True)])
def test_a_supervisor_is_heard_as_the_mode_says_and_hears_both_parties(
    mode: str, agent_hears: bool, caller_hears: bool, b2bua: StartWorker,
    router: RoutingRunner, centre: CallCentreService, api: TestClient, phone: StartPhone,
    call_store: CallStore, tmp_path: Path, database_url: str,
) -> None:
    provision_queue(centre, "sales", ["alice"], did="5000")
    record = ["--record-dir", str(tmp_path / "rec")]
    alice = phone("alice", "--answer-after", "0.2", "--tone", str(AGENT_HZ), *record)
    login(centre, "alice", alice)
    sam = phone("sam", "--answer-after", "0.2", "--tone", str(SUPERVISOR_HZ), *record)
    worker = b2bua()
    caller = phone("caller", "--tone", str(CALLER_HZ), *record)
    caller.send(f"dial sip:5000@127.0.0.1:{worker.port}")
    sip_call_id = caller.wait("dialled")["sip_call_id"]
    call_id = Call.id_for(sip_call_id)
    alice.wait("state", state="CONFIRMED")

    # The supervisor logs in; the platform rings the device an admin gave them.
    as_sam = supervisor(api, database_url, "sam", sam.uri)
    started = api.post(f"/v1/calls/{call_id}/supervision", json={"mode": mode}, headers=as_sam)
    assert started.status_code == 202, started.text
    assert started.json()["state"] == "calling"
    joined = sam.wait("state", state="CONFIRMED")["t"]
    time.sleep(3.0)
    left = time.time()
    assert api.delete(f"/v1/calls/{call_id}/supervision/sam",
                      headers=as_sam).status_code == 204
    sam.wait("state", state="DISCONNECTED")
    time.sleep(1.0)
    caller.send("hangup")

    window = (joined + 0.5, left - 0.3)
    agent_heard, caller_heard = _heard(alice, *window), _heard(caller, *window)
    supervisor_heard = _heard(sam, *window)
    assert audio.hears(supervisor_heard, CALLER_HZ), "the supervisor did not hear the caller"
    assert audio.hears(supervisor_heard, AGENT_HZ), "the supervisor did not hear the agent"
    assert audio.hears(agent_heard, SUPERVISOR_HZ) is agent_hears
    assert audio.hears(caller_heard, SUPERVISOR_HZ) is caller_hears
    assert audio.hears(caller_heard, AGENT_HZ), "the caller stopped hearing the agent"
    wait_for(lambda: event_names(call_store, sip_call_id)[-1:] == ["Ended"], "the call's end")
    names = event_names(call_store, sip_call_id)
    assert names.count("SupervisionStarted") == names.count("SupervisionEnded") == 1
    assert names.index("SupervisionStarted") < names.index("SupervisionEnded")
    started_event = _event(call_store, call_id, Call.SupervisionStarted)
    assert (started_event.supervisor, started_event.mode) == ("sam", mode)


def test_supervising_a_caller_still_waiting_in_the_queue_is_a_conflict(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, api: TestClient,
    phone: StartPhone, database_url: str,
) -> None:
    provision_queue(centre, "sales", ["alice"], did="5000")  # nobody logged in
    worker = b2bua()
    caller = phone("caller")
    caller.send(f"dial sip:5000@127.0.0.1:{worker.port}")
    call_id = Call.id_for(caller.wait("dialled")["sip_call_id"])
    caller.wait("state", state="CONFIRMED")

    as_sam = supervisor(api, database_url, "sam", "sip:sam@127.0.0.1")
    refused = api.post(f"/v1/calls/{call_id}/supervision", json={"mode": "monitor"},
                       headers=as_sam)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "queue" in refused.json()["detail"]
    gone = api.delete(f"/v1/calls/{call_id}/supervision/sam")
    assert gone.status_code == 404, gone.text


def test_supervising_an_unknown_or_ended_call_is_404_or_409(
    centre: CallCentreService, api: TestClient, call_store: CallStore, database_url: str,
) -> None:
    as_sam = supervisor(api, database_url, "sam", "sip:sam@127.0.0.1")
    body = {"mode": "monitor"}
    unknown = api.post("/v1/calls/00000000-0000-4000-8000-000000000000/supervision", json=body,
                       headers=as_sam)
    assert unknown.status_code == 404, unknown.text

    service = call_store.service
    call_id = service.initiate_call(caller="100", callee="200", direction=Direction.INBOUND,
                                    trunk=None, sip_call_id="ended@test", occurred_at=now())
    service.end_call(call_id, disposition=Disposition.CANCELLED,
                     hangup_cause="originator_cancel", hangup_side=HangupSide.CALLER,
                     sip_status=487, occurred_at=now())
    wait_for(lambda: api.get(f"/v1/calls/{call_id}").status_code == 200, "the call projected")
    ended = api.post(f"/v1/calls/{call_id}/supervision", json=body, headers=as_sam)
    assert ended.status_code == 409, ended.text
    assert api.post(f"/v1/calls/{call_id}/supervision", json={**body, "mode": "shout"},
                    headers=as_sam).status_code == 422


def supervisor(api: TestClient, database_url: str, name: str, device: str) -> dict[str, str]:
    """A supervisor user whose own device is `device` (set by the admin, through the
    API), logged in: the headers that act as them."""
    add_user(database_url, name, Role.SUPERVISOR)
    assert api.put(f"/v1/auth/users/{name}/device",
                   json={"device": device}).status_code == 204  # the client's admin key
    return bearer(token_for(api, name))


def _event(store: CallStore, call_id: Any, kind: type[Any]) -> Any:
    return next(e for e in store.histories()[call_id] if isinstance(e, kind))
