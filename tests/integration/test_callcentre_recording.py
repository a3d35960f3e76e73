"""Recording per queue policy: one WAV per answered call, linked to the call."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from application.callcentre import CallCentreService
from application.calls import CallService
from application.recordings.storage import ObjectStore
from application.recordings.uploader import Uploader, UploadOutcome
from dialtone.database import eventsourcing_env
from domain.call import Call
from streams.routing_process import RoutingRunner
from tests.fixtures.callcentre import (
    StartPhone,
    call_of,
    centre,
    event_names,
    login,
    phone,
    provision_queue,
    router,
    wait_for,
)
from tests.fixtures.s3 import S3Server, s3_server
from tests.fixtures.sip import CallStore, StartWorker
from tests.softphone import audio

pytestmark = pytest.mark.sip
__all__ = ["centre", "phone", "router", "s3_server"]


def test_a_recorded_queue_leaves_a_wav_of_the_conversation_linked_to_the_call(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, phone: StartPhone,
    call_store: CallStore, tmp_path: Path, database_url: str, s3_server: S3Server,
) -> None:
    provision_queue(centre, "sales", ["alice"], did="5000", record_calls=True)
    alice = phone("alice", "--answer-after", "0.2", "--hangup-after", "3.0", "--tone", "1000")
    login(centre, "alice", alice)
    worker = b2bua(args=["--recordings-dir", str(tmp_path / "recordings")])
    caller = phone("caller", "--tone", "440")

    caller.send(f"dial sip:5000@127.0.0.1:{worker.port}")
    sip_call_id = caller.wait("dialled")["sip_call_id"]
    alice.wait("state", state="CONFIRMED")
    caller.wait("state", state="DISCONNECTED", timeout=20)

    wait_for(lambda: "RecordingAvailable" in event_names(call_store, sip_call_id),
             "the recording linked to the call")
    call = call_of(call_store, sip_call_id)
    assert call.recording is not None
    ref, duration = call.recording
    path = Path(urlparse(ref).path)
    assert ref.startswith("file://")
    assert path.is_relative_to(tmp_path / "recordings")
    assert path.name == f"{Call.id_for(sip_call_id)}.wav"
    recorded = audio.read(path)
    assert recorded.seconds == pytest.approx(duration, abs=0.01)
    middle = recorded.window(0.5, recorded.seconds - 0.5)
    assert audio.rms(middle) > 1000, "the recording is silent"
    assert audio.hears(middle, 440.0), "the caller is not on the recording"
    assert audio.hears(middle, 1000.0), "the agent is not on the recording"

    # Then to object storage (issue 14 §5), by another process's CallService than the
    # worker's that wrote the call: the same bytes, the call says where, the file gone.
    bucket, wav = s3_server.new_bucket(), path.read_bytes()
    store = ObjectStore.from_settings(s3_server.settings(bucket))
    with CallService(env=eventsourcing_env(database_url,
                                           AGGREGATE_CACHE_FASTFORWARD="y")) as calls:
        assert Uploader(tmp_path / "recordings", store, calls).run_once().of(
            UploadOutcome.UPLOADED) == [call.id]
        stored = calls.get_call(call.id).stored_recording  # (call_store's cache is stale)
    assert stored is not None
    assert s3_server.client().get_object(Bucket=bucket, Key=stored.key)["Body"].read() == wav
    assert not path.exists()


def test_a_queue_that_does_not_record_leaves_no_recording(
    b2bua: StartWorker, router: RoutingRunner, centre: CallCentreService, phone: StartPhone,
    call_store: CallStore, tmp_path: Path,
) -> None:
    provision_queue(centre, "sales", ["alice"], did="5000")
    alice = phone("alice", "--answer-after", "0.2", "--hangup-after", "1.0")
    login(centre, "alice", alice)
    worker = b2bua(args=["--recordings-dir", str(tmp_path / "recordings")])
    caller = phone("caller")

    caller.send(f"dial sip:5000@127.0.0.1:{worker.port}")
    sip_call_id = caller.wait("dialled")["sip_call_id"]
    caller.wait("state", state="DISCONNECTED", timeout=20)

    wait_for(lambda: event_names(call_store, sip_call_id)[-1:] == ["Ended"], "the call's end")
    assert call_of(call_store, sip_call_id).recording is None
    assert not (tmp_path / "recordings").exists()
