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

``serve_workers`` serves the API from N processes (uvicorn's own supervisor: one
listening socket, inherited by every worker, a dead worker replaced). One event
loop is one thread: on a shared machine the scheduler gives it one fair share of
a CPU, and while it waits for that CPU every request it holds waits too (the
p99 tail bench/api.py measured under load). N loops get N shares, on both cores,
and a preempted one holds only its own connections.

Each API process freezes what it has built at startup out of the garbage
collector's reach (``gc.freeze``, as the gc documentation advises for servers):
a full collection then walks only the objects made since, instead of the
hundred thousand-odd module, class and function objects of the imports, which
took tens of milliseconds of the loop each time.
"""

from __future__ import annotations

import gc
import logging

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from dialtone.services.signals import StopSignals

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_S = 5
# How long a worker may leave the supervisor's ping unanswered before it is killed
# as hung and replaced. uvicorn's 5 s default killed live workers of a starved
# machine (the answering thread waits for the GIL and a CPU like the loop does),
# dropping every request they held; a hung worker is rarer than a busy machine.
WORKER_HEALTHCHECK_S = 30

__all__ = ["GRACEFUL_SHUTDOWN_S", "WORKER_HEALTHCHECK_S", "StopSignals", "freeze_startup_objects",
           "serve", "serve_workers"]


def _config(app: FastAPI | str, host: str, port: int, log_level: str, access_log: bool,
            workers: int = 1) -> uvicorn.Config:
    # uvloop and httptools are named, not left to uvicorn's "auto" (which falls back to
    # the slower pure-Python ones silently).
    return uvicorn.Config(app, host=host, port=port, log_level=log_level,
                          log_config=None,  # uvicorn's lines through dialtone.logs (JSON)
                          access_log=access_log, loop="uvloop", http="httptools",
                          timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                          factory=isinstance(app, str), workers=workers,
                          timeout_worker_healthcheck=WORKER_HEALTHCHECK_S)


def freeze_startup_objects() -> None:
    """Keep what exists now (imports, the app) out of every later collection."""
    gc.collect()
    gc.freeze()


def serve(app: FastAPI, host: str, port: int, stop: StopSignals, *,
          log_level: str = "info", access_log: bool = False) -> None:
    """Serve ``app`` in this process until ``stop`` is requested (by a signal or
    ``stop.request()``); ``access_log`` is a line per request (DIALTONE_ACCESS_LOG)."""
    server = uvicorn.Server(_config(app, host, port, log_level, access_log))

    def stopper() -> None:
        server.should_exit = True

    stop.stopper, stop.server = stopper, server
    if stop.requested.is_set():  # a signal came while the command was starting
        return
    freeze_startup_objects()
    server.run()


def serve_workers(factory: str, workers: int, host: str, port: int, stop: StopSignals, *,
                  log_level: str = "info", access_log: bool = False) -> None:
    """Serve the app ``factory`` ("module:function", called in each worker) from
    ``workers`` processes on one socket until ``stop`` is requested. The workers are
    spawned: they read their settings (DATABASE_URL...) from the environment."""
    config = _config(factory, host, port, log_level, access_log, workers)
    socket = config.bind_socket()
    try:
        supervisor = Multiprocess(config, sockets=[socket])  # takes SIGINT and SIGTERM
        stop.stopper = supervisor.should_exit.set
        if not stop.requested.is_set():
            supervisor.run()  # returns once every worker has stopped
    finally:
        socket.close()
        stop.install()  # ours again, for what the command stops after the API
