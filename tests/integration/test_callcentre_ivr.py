"""IVR menus on the wire: prompts played by the B2BUA, keys collected as RFC 4733
events and as SIP INFO (a key sent both ways taken once), retries and the default
action as ``IvrMenu.decide`` says."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from adapters.media.prompts import menu_notes
from application.callcentre import CallCentreService
from domain.addressing import Target
from domain.ivr import IvrMenu
from domain.queue import Queue
from streams.routing_process import RoutingRunner
from tests.fixtures.callcentre import (
    StartPhone,
    call_of,
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
from tests.softphone import audio

pytestmark = pytest.mark.sip
__all__ = ["centre", "phone", "router"]

PRESS_AFTER_S = 2.2


def provision_menu(service: CallCentreService) -> None:
    """``6000`` -> menu ``main``: 1 = queue sales, 2 = hang up; 2 s per key, 1 retry."""
    provision_queue(service, "sales", ["alice"])
    service.create_ivr_menu("main", "Main menu", "welcome", occurred_at=now(), timeout_s=2.0,
                            max_retries=1,
                            options={"1": Target.queue(Queue.id_for("sales")),
                                     "2": Target.hangup()})
    service.create_number("6000", Target.ivr(IvrMenu.id_for("main")), occurred_at=now())


@pytest.mark.parametrize("method", ["rfc", "info"])
def test_a_key_pressed_in_the_menu_takes_the_caller_to_the_queue(
    method: str, b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService,
    phone: StartPhone, call_store: CallStore, tmp_path: Path,
) -> None:
    provision_menu(centre)
    alice = phone("alice", "--answer-after", "0.2", "--hangup-after", "1.0")
    login(centre, "alice", alice)
    worker = b2bua()
    caller = phone("caller", "--record-dir", str(tmp_path / "rec"))

    caller.send(f"dial sip:6000@127.0.0.1:{worker.port}")
    sip_call_id = caller.wait("dialled")["sip_call_id"]
    caller.wait("state", state="CONFIRMED")
    # The prompt lasts 1.38 s and the menu waits 2 s after it for a key: pressing at
    # 2.2 s hears it whole even when a loaded machine starts it up to 0.8 s late.
    time.sleep(PRESS_AFTER_S)
    caller.send(f"dtmf 1 {method}")
    alice.wait("incoming")
    heard = audio.read(Path(caller.wait("recorded", timeout=20)["path"]))

    wait_for(lambda: event_names(call_store, sip_call_id)[-1:] == ["Ended"], "the call's end")
    names = event_names(call_store, sip_call_id)
    assert names[:5] == ["Initiated", "Routed", "Routed", "Queued", "Ringing"], names
    call = call_of(call_store, sip_call_id)
    assert (call.queue, call.agents, call.disposition) == ("sales", ["alice"], "answered")
    prompt = {f for f, _ in menu_notes("welcome") if f}
    assert audio.tones_heard(heard.window(0.0, PRESS_AFTER_S), sorted(prompt)) == prompt, \
        "the caller did not hear the menu's prompt"


def test_invalid_keys_and_silence_replay_the_menu_then_run_its_default(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, phone: StartPhone,
    call_store: CallStore, tmp_path: Path,
) -> None:
    provision_menu(centre)
    worker = b2bua()
    # Recording connects the phone's audio: without, it sends no RTP and no RFC 4733 key.
    caller = phone("caller", "--record-dir", str(tmp_path / "rec"))

    caller.send(f"dial sip:6000@127.0.0.1:{worker.port}")
    sip_call_id = caller.wait("dialled")["sip_call_id"]
    started = caller.wait("state", state="CONFIRMED")["t"]
    time.sleep(1.5)
    caller.send("dtmf 9 rfc")  # no such option: the menu plays again (attempt 2)
    ended = caller.wait("state", state="DISCONNECTED", timeout=20)["t"]

    wait_for(lambda: event_names(call_store, sip_call_id)[-1:] == ["Ended"], "the call's end")
    call = call_of(call_store, sip_call_id)
    assert (call.disposition, call.hangup_cause, call.hangup_side) == (
        "failed", "ivr_hangup", "system")
    assert event_names(call_store, sip_call_id) == ["Initiated", "Routed", "Ended"]
    # attempt 2 timed out (2 s after its prompt): retries exhausted, default = hang up.
    assert ended - started > 1.5 + 1.4 + 2.0


def test_a_key_sent_both_as_rfc4733_and_sip_info_is_taken_once(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, phone: StartPhone,
    call_store: CallStore, tmp_path: Path,
) -> None:
    """A phone set to "RFC 2833 + SIP INFO" sends each key both ways. Before, the
    second copy of "1" was a key in the submenu the first had opened, and hung up."""
    provision_queue(centre, "sales", [])  # nobody to answer: the caller waits
    sales = Target.queue(Queue.id_for("sales"))
    centre.create_ivr_menu("sub", "Submenu", "submenu", occurred_at=now(), timeout_s=1.0,
                           max_retries=0, options={"1": Target.hangup()}, default_action=sales)
    centre.create_ivr_menu("main", "Main menu", "welcome", occurred_at=now(), timeout_s=2.0,
                           options={"1": Target.ivr(IvrMenu.id_for("sub"))})
    centre.create_number("6000", Target.ivr(IvrMenu.id_for("main")), occurred_at=now())
    worker = b2bua()
    caller = phone("caller", "--record-dir", str(tmp_path / "rec"))  # (RTP: see above)

    caller.send(f"dial sip:6000@127.0.0.1:{worker.port}")
    sip_call_id = caller.wait("dialled")["sip_call_id"]
    caller.wait("state", state="CONFIRMED")
    time.sleep(PRESS_AFTER_S)
    caller.send("dtmf 1 rfc")
    caller.send("dtmf 1 info")
    # The submenu heard no key: its default, after its prompt and 1 s, is the queue.
    wait_for(lambda: bool({"Queued", "Ended"} & set(event_names(call_store, sip_call_id))),
             "the caller queued (or the call's end)")
    caller.send("hangup")
    wait_for(lambda: event_names(call_store, sip_call_id)[-1:] == ["Ended"], "the call's end")
    assert event_names(call_store, sip_call_id) == [
        "Initiated", "Routed", "Routed", "Routed", "Queued", "Ended"]
    call = call_of(call_store, sip_call_id)
    assert (call.queue, call.disposition) == ("sales", "abandoned")
