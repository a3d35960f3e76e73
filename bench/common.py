"""What every benchmark needs: real servers in temporary directories, percentiles,
and a line saying how busy the shared machine was."""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from dialtone.services.kafka import KafkaBroker
from dialtone.services.postgres import EmbeddedPostgres, free_port


@contextlib.contextmanager
def embedded_postgres() -> Iterator[EmbeddedPostgres]:
    with tempfile.TemporaryDirectory(prefix="dialtone-bench-pg-") as tmp:
        server = EmbeddedPostgres(Path(tmp) / "data", free_port())
        server.start()
        try:
            yield server
        finally:
            server.destroy()


@contextlib.contextmanager
def kafka_broker() -> Iterator[KafkaBroker]:
    with tempfile.TemporaryDirectory(prefix="dialtone-bench-kafka-") as tmp:
        broker = KafkaBroker(Path(tmp) / "data", free_port(), free_port())
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


def percentile_ms(samples_s: Sequence[float], fraction: float) -> float:
    if len(samples_s) < 2:
        return samples_s[0] * 1000 if samples_s else float("nan")
    cuts = statistics.quantiles(samples_s, n=1000, method="inclusive")
    return cuts[min(len(cuts) - 1, round(fraction * 1000) - 1)] * 1000


def machine_facts() -> str:
    """The run shares the machine: say how busy it was (1/5/15-minute load)."""
    one, five, fifteen = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.2f} {five:.2f} {fifteen:.2f}"
