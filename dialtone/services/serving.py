"""Serving the HTTP API so that SIGTERM and SIGINT end a command the same way.

``uvicorn.run`` handles both signals during its own shutdown and then raises the
captured signal again with the handlers it found installed: for SIGINT that is
Python's KeyboardInterrupt (the caller's ``finally`` runs), for SIGTERM the
default action, which kills the process before any cleanup (B2BUA workers and the
embedded PostgreSQL were left running when systemd or a container stopped `up`).
``StopSignals`` installs handlers for both before anything starts, so the
re-raised signal lands on them and ``serve`` simply returns; a signal that comes
while the command is still starting is remembered and the server is not started.

``timeout_graceful_shutdown`` bounds how long uvicorn waits for open requests (a
client that never finishes its body, an open stream) before it closes them.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_S = 5
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """SIGTERM and SIGINT both ask for one orderly stop (install from the main thread)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.server: uvicorn.Server | None = None

    def install(self) -> StopSignals:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        return self

    def request(self) -> None:
        """Stop as a signal would (``--run-for``, tests)."""
        self.requested.set()
        if self.server is not None:
            self.server.should_exit = True

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self.requested.is_set():
            log.info("%s: stopping", signal.Signals(signum).name)
        self.request()


def serve(app: FastAPI, host: str, port: int, stop: StopSignals, *,
          log_level: str = "info", access_log: bool = False) -> None:
    """Serve ``app`` until ``stop`` is requested (by a signal or ``stop.request()``).
    uvloop and httptools are named, not left to uvicorn's "auto" (which falls back to the
    slower pure-Python ones silently); ``access_log`` is a line per request
    (DIALTONE_ACCESS_LOG)."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level,
                            log_config=None,  # uvicorn's lines through dialtone.logs (JSON)
                            access_log=access_log, loop="uvloop", http="httptools",
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    server = uvicorn.Server(config)
    stop.server = server
    if stop.requested.is_set():  # a signal came while the command was starting
        return
    server.run()
