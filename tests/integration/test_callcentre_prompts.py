"""Recorded prompts on the wire: a G.711 mu-law menu prompt is heard and the menu
goes on to its key wait; a queue's overflow to a recording plays the tenant's
file, then ends the call; a tenant never hears another tenant's recording."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest

from adapters.media.prompts import menu_notes
from application.callcentre import CallCentreService
from devtools.phones import Softphone
from domain.addressing import Target
from domain.ivr import IvrMenu
from streams.routing_process import RoutingRunner
from tests.fixtures.callcentre import (
    StartPhone,
    call_of,
    centre,
    event_names,
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

TONE_HZ = 1200.0  # the recordings' tone: in no generated melody, no phone's own
RECORDING_S = 1.0


def mulaw(sample: int) -> int:
    """One 16-bit sample in G.711 mu-law."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = max(magnitude.bit_length() - 8, 0)
    return ~(sign | exponent << 4 | (magnitude >> (exponent + 3)) & 0x0F) & 0xFF


def write_tone(path: Path, *, law: bool = True) -> Path:
    """A second of TONE_HZ at 8 kHz: G.711 mu-law (format 7), or 16-bit PCM."""
    samples = [int(16000 * math.sin(2 * math.pi * TONE_HZ * i / 8000)) for i in range(8000)]
    if law:
        fmt, data = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8), bytes(map(mulaw, samples))
    else:
        fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
        data = struct.pack(f"<{len(samples)}h", *samples)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + \
        struct.pack("<I", len(data)) + data
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def media(tmp_path: Path) -> Path:
    return tmp_path / "data" / "media"  # the b2bua fixture's DIALTONE_DATA_DIR


def heard(caller: Softphone, seconds: float, tones: list[float]) -> set[float]:
    """Which of ``tones`` the caller heard in the call's first ``seconds``."""
    recorded = audio.read(Path(caller.wait("recorded", timeout=20)["path"]))
    return audio.tones_heard(recorded.window(0.0, seconds), tones)


def test_a_mulaw_menu_prompt_is_heard_and_the_menu_goes_on_to_its_default(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, phone: StartPhone,
    call_store: CallStore, tmp_path: Path,
) -> None:
    """Before, the worker could not read a mu-law file's length (wave.Error): the
    caller heard nothing and the menu never went on, the call never ended."""
    write_tone(media(tmp_path) / "prompts" / "welcome.wav")  # the default tenant's
    centre.create_ivr_menu("main", "Main menu", "welcome", occurred_at=now(), timeout_s=1.0,
                           max_retries=0)  # default: hang up
    centre.create_number("6000", Target.ivr(IvrMenu.id_for("main")), occurred_at=now())
    worker = b2bua()
    caller = phone("caller", "--record-dir", str(tmp_path / "rec"))

    caller.send(f"dial sip:6000@127.0.0.1:{worker.port}")
    sip_call_id = caller.wait("dialled")["sip_call_id"]
    started = caller.wait("state", state="CONFIRMED")["t"]
    ended = caller.wait("state", state="DISCONNECTED", timeout=20)["t"]

    wait_for(lambda: event_names(call_store, sip_call_id)[-1:] == ["Ended"], "the call's end")
    call = call_of(call_store, sip_call_id)
    assert (call.disposition, call.hangup_cause) == ("failed", "ivr_hangup")
    assert ended - started > RECORDING_S + 1.0  # the prompt, then the key wait
    assert heard(caller, 3.0, [TONE_HZ]) == {TONE_HZ}, "the recorded prompt was not heard"


def test_an_overflow_to_a_recording_plays_it_then_ends_the_call(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, phone: StartPhone,
    call_store: CallStore, tmp_path: Path,
) -> None:
    """Before, an overflow to a recording played a goodbye tone and ended the call
    failed / recording_unavailable."""
    write_tone(media(tmp_path) / "tenants" / "default" / "prompts" / "closed.wav")
    sales = provision_queue(centre, "sales", [], did="6100")  # nobody to answer
    centre.set_overflow(sales, 1.0, Target.recording("closed.wav"), now())
    worker = b2bua()
    caller = phone("caller", "--record-dir", str(tmp_path / "rec"))

    caller.send(f"dial sip:6100@127.0.0.1:{worker.port}")
    sip_call_id = caller.wait("dialled")["sip_call_id"]
    caller.wait("state", state="DISCONNECTED", timeout=20)

    wait_for(lambda: event_names(call_store, sip_call_id)[-1:] == ["Ended"], "the call's end")
    assert event_names(call_store, sip_call_id) == ["Initiated", "Routed", "Queued", "Ended"]
    call = call_of(call_store, sip_call_id)
    assert (call.disposition, call.hangup_cause, call.hangup_side) == (
        "failed", "recording_played", "system")
    assert heard(caller, 6.0, [TONE_HZ]) == {TONE_HZ}, "the recording was not heard"


def test_a_tenant_never_hears_the_recording_another_tenant_named_alike(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, phone: StartPhone,
    call_store: CallStore, tmp_path: Path,
) -> None:
    """The default tenant's ``welcome`` recording is not acme's: acme's menu with the
    prompt ``welcome`` plays its generated melody (before, the default's file)."""
    write_tone(media(tmp_path) / "prompts" / "welcome.wav", law=False)
    acme = centre.scoped("acme")
    acme.create_ivr_menu("main", "Main menu", "welcome", occurred_at=now(), timeout_s=1.0,
                         max_retries=0)
    acme.create_number("6200", Target.ivr(IvrMenu.id_for("main", "acme")), occurred_at=now())
    worker = b2bua()
    caller = phone("caller", "--record-dir", str(tmp_path / "rec"))

    caller.send(f"dial sip:6200@127.0.0.1:{worker.port}")
    sip_call_id = caller.wait("dialled")["sip_call_id"]
    caller.wait("state", state="DISCONNECTED", timeout=20)
    wait_for(lambda: event_names(call_store, sip_call_id)[-1:] == ["Ended"], "the call's end")
    assert call_of(call_store, sip_call_id).hangup_cause == "ivr_hangup"
    melody = sorted({f for f, _ in menu_notes("welcome") if f})
    assert heard(caller, 2.5, [TONE_HZ, *melody]) == set(melody), \
        "acme did not hear its own generated prompt (or heard the default tenant's file)"
