"""The real Prometheus server (Debian's `prometheus`) scrapes a small platform: `dialtone up`
(API with the in-process projections and routing, one B2BUA worker), a `dialtone
router` and a `dialtone registrations` observing a real redis-server, while sipp places
SIP calls through the worker. Its HTTP API must show every target up, the platform's
alert rules loaded, and the key series with values."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from application.callcentre import CallCentreService
from application.registrations import RegistrationService
from dialtone.database import EVENT_TABLES_READY, eventsourcing_env
from dialtone.services.ports import free_port
from domain.addressing import Target
from domain.ivr import IvrMenu
from tests.e2e.test_dialtone_up import _answers_options, _ready
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.fixtures.prometheus import StartPrometheus, get, prometheus, query, targets_up
from tests.fixtures.redis import RedisDb, redis_db, redis_server
from tests.fixtures.sip import Sipp, free_udp_port
from tests.integration.test_registrations_metrics import bind

pytestmark = pytest.mark.sip
__all__ = ["prometheus", "redis_db", "redis_server"]  # the fixtures

IVR_NUMBER = "6100"


def provision_ivr(database_url: str) -> None:
    """An IVR menu the B2BUA answers itself, on number IVR_NUMBER."""
    service = CallCentreService(env=eventsourcing_env(database_url))
    try:
        at = datetime.now(UTC)
        service.create_ivr_menu("metrics", "Metrics menu", "welcome", occurred_at=at,
                                timeout_s=5.0, max_retries=0, options={"1": Target.hangup()})
        service.create_number(IVR_NUMBER, Target.ivr(IvrMenu.id_for("metrics")), occurred_at=at)
    finally:
        service.close()


def start_registrations(dialtone_processes: Callable[..., DialtoneProcess],
                        env: dict[str, str], database_url: str, redis: RedisDb) -> DialtoneProcess:
    """`dialtone registrations` on a registrar's Redis holding one binding of a tenant's
    domain; its store's tables made first, so that it runs no DDL beside up's."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (id, name, sip_domain) VALUES ('acme', 'Acme', "
                     "'acme.test') ON CONFLICT (id) DO UPDATE SET sip_domain = 'acme.test'")
    RegistrationService(env=eventsourcing_env(database_url)).close()
    bind(redis, "1", "alice", "acme.test", timedelta(minutes=10))
    return dialtone_processes(["registrations", "--interval", "0.5"], {
        **env, "DATABASE_URL": database_url, EVENT_TABLES_READY: "1",
        "DIALTONE_REGISTRATION_REDIS_URL": redis.url})


def test_prometheus_scrapes_every_process_of_a_run(
    tmp_path: Path, dialtone_processes: Callable[..., DialtoneProcess], sipp: Sipp,
    prometheus: StartPrometheus, redis_db: RedisDb,
) -> None:
    pg_port, http_port, b2bua_metrics, router_metrics, registrations_metrics = (
        free_port() for _ in range(5))
    sip_port = free_udp_port()
    env = {"DIALTONE_DATA_DIR": str(tmp_path / "data"), "DIALTONE_EMBEDDED_PG_PORT": str(pg_port),
           "DIALTONE_HTTP_PORT": str(http_port), "DIALTONE_METRICS_PORT": str(b2bua_metrics)}
    up = dialtone_processes(["up", "--sip-port", str(sip_port), "--b2bua-workers", "1"], env)
    base = f"http://127.0.0.1:{http_port}"
    wait_for(lambda: _ready(base), 90, "dialtone up to be ready", processes=(up,))
    wait_for(lambda: _answers_options(sip_port), 60, "the B2BUA worker", processes=(up,))
    database_url = f"postgresql://postgres@127.0.0.1:{pg_port}/dialtone"
    router = dialtone_processes(["router"], {**env, "DATABASE_URL": database_url,
                                             "DIALTONE_METRICS_PORT": str(router_metrics)})
    registrations = start_registrations(
        dialtone_processes, {**env, "DIALTONE_METRICS_PORT": str(registrations_metrics)},
        database_url, redis_db)
    server = prometheus({"api": [f"127.0.0.1:{http_port}"],
                         "b2bua": [f"127.0.0.1:{b2bua_metrics}"],
                         "router": [f"127.0.0.1:{router_metrics}"],
                         "registrations": [f"127.0.0.1:{registrations_metrics}"]})

    # SIP traffic: a call the worker answers itself (IVR), hung up by sipp after
    # 1 s, and one to a number nobody has (404).
    provision_ivr(database_url)
    answered = lambda: sipp.uac("uac", sip_port, service=IVR_NUMBER,  # noqa: E731
                                extra=["-d", "1000"], timeout=15).ok
    wait_for(answered, 30, "an answered call through the IVR", processes=(up,))
    assert not sipp.uac("uac", sip_port, service="999", timeout=15).ok  # refused with 404

    wanted = {f"api 127.0.0.1:{http_port}", f"b2bua 127.0.0.1:{b2bua_metrics}",
              f"router 127.0.0.1:{router_metrics}",
              f"registrations 127.0.0.1:{registrations_metrics}"}
    wait_for(lambda: targets_up(server) == dict.fromkeys(wanted, "up"), 30,
             f"every target up (have {targets_up(server)})",
             processes=(up, router, registrations))

    def has(expr: str) -> bool:
        return bool(query(server, expr))

    key_series = [
        # every process
        'process_resident_memory_bytes{job="api"} > 0',
        'process_resident_memory_bytes{job="b2bua"} > 0',
        'process_resident_memory_bytes{job="router"} > 0',
        # signalling and media (B2BUA worker)
        'dialtone_sip_final_responses_total{code="200",code_class="2xx"} >= 1',
        'dialtone_sip_final_responses_total{code="404",code_class="4xx"} >= 1',
        "dialtone_sip_invite_to_answer_seconds_count >= 1",
        "dialtone_b2bua_calls_capacity >= 1",
        "dialtone_b2bua_legs_capacity >= 1",
        "dialtone_b2bua_calls_active",
        "dialtone_rtp_mos_count",
        'dialtone_event_append_seconds_count{job="b2bua",application="CallService"} >= 2',
        # API process: HTTP, database, projections, queues, its in-process loops
        'dialtone_http_requests_total{job="api",route="/readyz",status="200"} >= 1',
        'dialtone_http_request_duration_seconds_count{route="/metrics"} >= 1',
        "dialtone_database_up == 1",
        'dialtone_projection_lag_events{projection="call_live",application="CallService"}',
        'dialtone_projection_lag_seconds{projection="call_live"}',
        'dialtone_loop_steps_total{job="api",loop="projections-CallService"} >= 1',
        # the routing process on its own
        'dialtone_loop_steps_total{job="router",loop="routing-process"} >= 1',
        # the registrar's observer: alice's binding recorded, observations succeeding
        'process_resident_memory_bytes{job="registrations"} > 0',
        'dialtone_registrations_bindings{job="registrations",state="live"} == 1',
        "dialtone_registrations_devices == 1",
        'dialtone_registrations_events_recorded_total{event="registered"} == 1',
        "dialtone_registrations_observations_total >= 2",
        'sum(dialtone_registrations_observation_errors_total{job="registrations"}) == 0',
        "time() - dialtone_registrations_last_success_timestamp_seconds < 60",
        "dialtone_registrations_observation_duration_seconds_count >= 1",
    ]
    wait_for(lambda: all(has(e) for e in key_series), 30,
             f"the key series (missing {[e for e in key_series if not has(e)]})",
             processes=(up, router, registrations))

    groups = (get(f"{server}/api/v1/rules") or {}).get("data", {}).get("groups", [])
    assert {g["name"] for g in groups} >= {"dialtone-signalling", "dialtone-api",
                                           "dialtone-rss-budgets", "dialtone-registrations",
                                           "dialtone-recordings"}
    assert all(g["rules"] and all(r["health"] == "ok" for r in g["rules"]) for g in groups)
