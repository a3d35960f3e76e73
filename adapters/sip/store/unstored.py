"""Commands a worker could not store before it stopped, kept on disk for its next start.

A worker stopping while the event store is down cannot drain its buffer, and
waiting for the store has to end: its supervisor (the pool, Kubernetes' grace
period) kills it after a while, and a killed worker loses its whole buffer.
So a stop waits a bounded time, then writes what is left here, one file per
worker identity (``host:port``), and exits. The worker restarted on the same
address queues those commands first, stores them once the store answers, and
only then removes the file and ends what its predecessor left open (lost
calls): the calls of the outage keep their real history (answered, ended by
the caller) instead of losing it or being ended as ``worker_lost``.

The file holds the command values (``domain.call_commands``, frozen
dataclasses) pickled: written and read only by this worker's own code, in its
data directory. Written atomically (temporary file, fsync, rename): a stop
killed while writing leaves the previous file or none, never half of one.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

from domain.call_commands import CallCommand

log = logging.getLogger(__name__)


def unstored_path(data_dir: Path, host: str, port: int) -> Path:
    """Where the worker serving SIP on ``host:port`` keeps what it could not store."""
    return data_dir / "b2bua" / f"unstored-{host}-{port}.pickle"


def save(path: Path, commands: Sequence[CallCommand]) -> None:
    """Keep ``commands`` (oldest first) for the next start; none: remove the file."""
    if not commands:
        discard(path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        pickle.dump(list(commands), out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    log.warning("%d commands not stored (event store unavailable): kept in %s for the "
                "next start on this address", len(commands), path)


def load(path: Path) -> list[CallCommand]:
    """The commands a previous stop kept (oldest first); none when there is no file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    commands = pickle.loads(data)  # noqa: S301 - see the module docstring
    if not isinstance(commands, list) or not all(isinstance(c, CallCommand) for c in commands):
        raise ValueError(f"{path} does not hold call commands")
    return commands


def discard(path: Path) -> None:
    """Forget the file (its commands are stored)."""
    path.unlink(missing_ok=True)
