"""Call recording: one WAV file per call, written by pjsua2's conference bridge.

A ``CallRecording`` is a recorder port in the bridge; the session connects
the parties' audio to it (the bridge mixes them). Closing it finalises the
WAV header, but not at once: pjsua2 removes bridge ports on the bridge's own
clock tick, and the file is completed after that (measured: tens of
milliseconds, up to a second on a loaded machine). So ``close`` is followed by
``result`` until the header is there. The duration reported is measured from
the file itself (frames / rate): what a listener will hear.

Files go to ``<directory>/<YYYY-MM-DD>/<call id>.wav`` and are referenced by
a ``file://`` URI. Create and close recordings on the pjsua2 thread.
"""

from __future__ import annotations

import logging
import wave
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pjsua2 as pj

log = logging.getLogger(__name__)


class CallRecording:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._recorder: pj.AudioMediaRecorder | None = pj.AudioMediaRecorder()
        self._recorder.createRecorder(str(path))

    @property
    def sink(self) -> pj.AudioMedia | None:
        """The bridge port to connect audio to (None once closed)."""
        return self._recorder

    def close(self) -> None:
        """Stop recording (the file is completed shortly after: see ``result``)."""
        self._recorder = None  # destroying the recorder writes the final WAV header

    def result(self) -> tuple[str, float] | None:
        """The file's URI and its length in seconds, once its header is final."""
        try:
            with wave.open(str(self.path)) as wav:
                seconds = wav.getnframes() / wav.getframerate()
        except (OSError, EOFError, wave.Error):
            return None  # not finalised yet
        return self.path.resolve().as_uri(), round(seconds, 3)


class RecordingStore:
    """Where recordings are written (a directory; configured per worker)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def start(self, call_id: UUID) -> CallRecording:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        return CallRecording(self.directory / day / f"{call_id}.wav")
