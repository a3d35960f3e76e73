"""The Call aggregate's recording commands: a mixin of ``domain.call.Call``, kept
apart so that module stays under 400 lines.

Only the decisions live here. The events they trigger stay nested in ``Call``
(``Call.RecordingAvailable``, ``Call.RecordingStored``, ``Call.RecordingDeleted``),
so their stored topics (``domain.call:Call.RecordingStored``) and the types the
relay publishes (``dialtone.call.recording_stored.v1``) are what they were.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from domain.errors import InvalidValue
from domain.values import StoredRecording, non_empty

__all__ = ["RecordingCommands"]


class _Recorded(Protocol):
    """What the recording commands read and trigger on the call."""

    recording: tuple[str, float] | None
    stored_recording: StoredRecording | None

    @property
    def id(self) -> UUID: ...

    @property
    def RecordingAvailable(self) -> type[Any]: ...  # noqa: N802 - Call's event classes

    @property
    def RecordingStored(self) -> type[Any]: ...  # noqa: N802

    @property
    def RecordingDeleted(self) -> type[Any]: ...  # noqa: N802

    def _trigger(self, event_class: Any, occurred_at: datetime, **facts: Any) -> None: ...


class RecordingCommands:
    """``attach_recording``, ``store_recording`` and ``delete_recording`` of a Call."""

    def attach_recording(self: _Recorded, ref: str, duration_s: float,
                         occurred_at: datetime) -> None:
        """The call's recording is stored at `ref` (usually after the call ended)."""
        if self.recording is not None and self.recording[0] == ref:
            return
        if not (math.isfinite(duration_s) and duration_s >= 0):
            raise InvalidValue(f"recording duration {duration_s!r} is not a duration")
        self._trigger(self.RecordingAvailable, occurred_at, ref=non_empty("ref", ref),
                      duration_s=float(duration_s))

    def store_recording(self: _Recorded, bucket: str, key: str, size_bytes: int, sha256: str,
                        occurred_at: datetime) -> None:
        """The recording was uploaded to ``bucket``/``key``. The same object again is a
        no-op: an upload retried after a crash stores one event."""
        stored = StoredRecording.checked(bucket, key, size_bytes, sha256)
        if self.recording is None:
            raise InvalidValue(f"call {self.id} has no recording to store")
        if self.stored_recording == stored:
            return
        self._trigger(self.RecordingStored, occurred_at, bucket=bucket, key=key,
                      size_bytes=size_bytes, sha256=sha256)

    def delete_recording(self: _Recorded, bucket: str, key: str, reason: str,
                         occurred_at: datetime) -> None:
        """The stored object ``bucket``/``key`` was deleted; a no-op unless it is the
        call's stored recording (deleted twice, or a stray object)."""
        current = self.stored_recording
        if current is None or (current.bucket, current.key) != (bucket, key):
            return
        self._trigger(self.RecordingDeleted, occurred_at, bucket=bucket, key=key,
                      reason=non_empty("reason", reason))
