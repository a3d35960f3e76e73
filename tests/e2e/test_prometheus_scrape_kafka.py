"""The real Prometheus server scrapes the Kafka deployment's processes: `dialtone relay`
and `dialtone worker` (Faust) on their DIALTONE_METRICS_PORT, while stored calls flow
store -> relay -> Kafka -> worker -> projections. Every target is up; the relay's
published count and lag, and the worker's applied events and batch times, have values."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from application.calls import CallService
from devtools.simulate import EVENTS_PER_LIFECYCLE, lifecycles
from dialtone.database import eventsourcing_env
from dialtone.migrations import apply_migrations
from dialtone.services.ports import free_port
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.fixtures.prometheus import StartPrometheus, prometheus, query, targets_up

pytestmark = pytest.mark.kafka
__all__ = ["prometheus"]  # the fixture

CALLS = 5


def test_prometheus_scrapes_the_relay_and_the_worker(
    database_url: str, kafka_bootstrap: str,
    dialtone_processes: Callable[..., DialtoneProcess], prometheus: StartPrometheus,
) -> None:
    apply_migrations(database_url)
    service = CallService(env=eventsourcing_env(database_url))
    try:
        lifecycles(service, CALLS, "metrics")
    finally:
        service.close()
    env = {"DATABASE_URL": database_url, "DIALTONE_KAFKA_BOOTSTRAP": kafka_bootstrap,
           "DIALTONE_TOPIC_PREFIX": f"t{uuid.uuid4().hex[:8]}."}
    relay_port, worker_port = free_port(), free_port()
    relay = dialtone_processes(["relay"], {**env, "DIALTONE_METRICS_PORT": str(relay_port)})
    worker = dialtone_processes(["worker"], {**env, "DIALTONE_METRICS_PORT": str(worker_port)})
    server = prometheus({"relay": [f"127.0.0.1:{relay_port}"],
                         "worker": [f"127.0.0.1:{worker_port}"]})

    wanted = {f"relay 127.0.0.1:{relay_port}": "up", f"worker 127.0.0.1:{worker_port}": "up"}
    wait_for(lambda: targets_up(server) == wanted, 45,
             f"both targets up (have {targets_up(server)})", processes=(relay, worker))
    events = CALLS * EVENTS_PER_LIFECYCLE
    key_series = [
        'process_resident_memory_bytes{job="relay"} > 0',
        'process_resident_memory_bytes{job="worker"} > 0',
        f'dialtone_relay_published_events_total{{application="CallService"}} >= {events}',
        f'dialtone_relay_position{{application="CallService"}} >= {events}',
        'dialtone_relay_lag_events{application="CallService"} == 0',
        f'dialtone_worker_events_applied_total{{kind="call"}} >= {events}',
        'dialtone_worker_batch_seconds_count{kind="call"} >= 1',
    ]

    def has(expr: str) -> bool:
        return bool(query(server, expr))

    wait_for(lambda: all(has(e) for e in key_series), 60,
             f"the key series (missing {[e for e in key_series if not has(e)]})",
             processes=(relay, worker))
