"""One orderly stop for SIGTERM and SIGINT (dialtone.services.serving explains why).

Its own module, apart from serving: commands without the HTTP API (``dialtone
webhooks``) stop with it too, and serving imports FastAPI.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

import uvicorn

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """SIGTERM and SIGINT both ask for one orderly stop (install from the main thread)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.stopper: Callable[[], None] | None = None  # stops what serves, once it runs
        self.server: uvicorn.Server | None = None  # the server `serve` runs in this process

    def install(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        return self

    def request(self) -> None:
        """Stop as a signal would (``--run-for``, tests)."""
        self.requested.set()
        if self.stopper is not None:
            self.stopper()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self.requested.is_set():
            log.info("%s: stopping", signal.Signals(signum).name)
        self.request()
