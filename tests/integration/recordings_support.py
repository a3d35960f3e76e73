"""Recorded calls as the B2BUA leaves them, for the recording storage tests."""

from __future__ import annotations

import math
import struct
import wave
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

from application.calls import CallService
from domain.values import Direction, Disposition, HangupSide


def write_wav(path: Path, hz: float, seconds: float = 0.4) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * n / 8000)))
                      for n in range(int(8000 * seconds)))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(frames)


def recorded_call(service: CallService, directory: Path, hz: float,
                  tenant: str = "default", agent: str | None = None) -> tuple[UUID, Path]:
    """A call as the B2BUA records it: ended, its WAV complete, RecordingAvailable stored."""
    t0 = datetime.now(UTC)
    call_id = service.initiate_call(caller="+3225550100", callee="+3225550199", trunk=None,
                                    direction=Direction.INBOUND, tenant=tenant,
                                    sip_call_id=f"rec-{uuid4()}@test", occurred_at=t0)
    if agent is not None:
        service.connect_agent(call_id, agent, t0)
    service.answer_call(call_id, t0)
    service.end_call(call_id, disposition=Disposition.ANSWERED, hangup_cause="normal_clearing",
                     hangup_side=HangupSide.CALLER, sip_status=200, occurred_at=t0)
    path = directory / t0.strftime("%Y-%m-%d") / f"{call_id}.wav"
    write_wav(path, hz)
    service.attach_recording(call_id, path.resolve().as_uri(), 0.4, t0)
    return call_id, path
