"""How /healthz judges heartbeat rows (api.health.services and judge): replicas named
after their host against singletons, and when a replica's row is forgotten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from api.health import HealthConfig, judge, services
from application.heartbeats import host_instance, host_name, named_after_host

CONFIG = HealthConfig(required_services=("routing",), stale_after_beats=3.0,
                      forget_after_s=3600.0)
FRESH, STALE, ANCIENT = 2.0, 60.0, 7200.0  # seconds since the beat, at a 5 s interval


def row(service: str, instance: str, age_s: float, *, host: str | None = None,
        stopped: bool = False) -> dict[str, Any]:
    """A service_heartbeats row as api.queries.health reads it. `host` defaults to the
    one the instance is named after (a replica's row); a singleton's names its own."""
    now = datetime.now(UTC)
    if host is None:
        host = instance.rsplit("@", 1)[-1]
    return {"service": service, "instance": instance, "pid": 7, "host": host,
            "started_at": now - timedelta(days=1), "beat_at": now - timedelta(seconds=age_s),
            "interval_s": 5.0, "stopped_at": now if stopped else None, "detail": {},
            "seconds_since_beat": age_s}


def health(*rows: dict[str, Any], config: HealthConfig = CONFIG) -> tuple[str, list[str], list[
        tuple[str, str, str]]]:
    report = judge(services(rows, config), [], config)
    return (report.status, report.problems,
            [(s.service, s.instance, s.status) for s in report.services])


def test_replicas_are_the_rows_named_after_their_host():
    assert named_after_host("router-7d9f-x2", "router-7d9f-x2")
    assert named_after_host("dialtone-worker@worker-5c-abc", "worker-5c-abc")
    assert named_after_host("kafka@webhooks-1", "webhooks-1")
    assert not named_after_host("CallService", "relay-6b-q")  # the relay: its application
    assert not named_after_host("10.0.3.7:5070", "b2bua-3")  # a B2BUA worker: its address
    assert not named_after_host("projections-CallService", "box")
    assert not named_after_host("x@other-host", "host")
    assert not named_after_host("", "")
    assert host_instance() == host_name()
    assert host_instance("kafka") == f"kafka@{host_name()}"
    assert named_after_host(host_instance("refresher-dialtone"), host_name())


def test_a_replaced_replicas_stale_row_only_degrades_while_a_sibling_runs():
    """A router pod lost without SIGTERM, its replacement running under another name."""
    status, problems, listed = health(row("routing", "router-old", STALE),
                                      row("routing", "router-new", FRESH))
    assert status == "degraded"
    assert [p for p in problems if "router-old" in p] == [
        "replica routing router-old is stale: no heartbeat for 60 s while another routing "
        "runs (a lost pod or a hung replica; forgotten after 3600 s)"]
    assert ("routing", "router-old", "stale") in listed  # operators still see it


def test_a_replicas_stale_row_past_the_forget_period_is_left_out():
    status, problems, listed = health(row("routing", "router-old", ANCIENT),
                                      row("routing", "router-new", FRESH))
    assert (status, problems) == ("ok", [])
    assert listed == [("routing", "router-new", "running")]


def test_a_replicas_row_is_listed_again_once_it_beats_again():
    """Forgetting only ignores the row: a replica that was merely slow reappears."""
    config = HealthConfig(forget_after_s=10.0)  # forgotten well before an hour
    assert health(row("worker", "w@a", STALE), row("worker", "w@b", FRESH),
                  config=config)[2] == [("worker", "w@b", "running")]
    assert health(row("worker", "w@a", FRESH), row("worker", "w@b", FRESH),
                  config=config) == ("ok", [], [("worker", "w@a", "running"),
                                                ("worker", "w@b", "running")])


def test_a_stale_singleton_fails_even_beside_a_running_instance_of_its_service():
    """The relay's instance is its application: no other relay covers it, however old."""
    for age in (STALE, ANCIENT):
        status, problems, listed = health(row("relay", "CallService", age, host="relay-1"),
                                          row("relay", "CallCentreService", FRESH,
                                              host="relay-2"),
                                          row("routing", "router-a", FRESH))
        assert status == "failing"
        assert problems == [f"service relay CallService is stale: no heartbeat for {age:.0f} s"]
        assert ("relay", "CallService", "stale") in listed


def test_a_stale_replica_with_no_running_sibling_fails_however_old():
    """A hung router (its pod still there), or the only one lost and not replaced."""
    for age in (STALE, ANCIENT):
        status, problems, listed = health(row("routing", "router-a", age))
        assert status == "failing"
        assert problems == [f"service routing router-a is stale: no heartbeat for {age:.0f} s",
                            "no running routing"]
        assert listed == [("routing", "router-a", "stale")]
    # A stopped sibling covers nothing either.
    status, _, _ = health(row("routing", "router-a", STALE),
                          row("routing", "router-b", FRESH, stopped=True))
    assert status == "failing"


def test_stopped_rows_are_never_problems_and_a_replicas_is_forgotten_in_time():
    status, problems, listed = health(
        row("routing", "router-a", FRESH),
        row("routing", "router-rolled", STALE, stopped=True),
        row("routing", "router-rolled-long-ago", ANCIENT, stopped=True),
        row("relay", "CallService", ANCIENT, host="relay-1", stopped=True))
    assert (status, problems) == ("ok", [])
    assert listed == [("routing", "router-a", "running"),
                      ("routing", "router-rolled", "stopped"),
                      ("relay", "CallService", "stopped")]  # a singleton's row stays


def test_a_slow_replica_is_not_stale_before_its_own_interval_says_so():
    """Staleness is per row: a replica beating every 30 s is running at 60 s."""
    slow = {**row("routing", "router-slow", 60.0), "interval_s": 30.0}
    assert health(slow)[0] == "ok"
    # ... and a tiny forget period never drops a row that is not stale by its interval.
    assert health(slow, row("routing", "router-b", FRESH),
                  config=HealthConfig(forget_after_s=1.0))[2] == [
        ("routing", "router-slow", "running"), ("routing", "router-b", "running")]


def test_webhook_delivery_is_required_only_while_a_subscription_is_active():
    running = (row("routing", host_instance(), FRESH),)
    idle = judge(services(running, CONFIG), [], CONFIG)
    waiting = judge(services(running, CONFIG), [], CONFIG, webhooks_active=True)

    assert (idle.status, idle.missing_services) == ("ok", [])
    assert waiting.status == "failing"
    assert waiting.missing_services == ["webhooks", "webhook-dispatcher"]
    assert "no running webhooks" in waiting.problems

    delivering = (*running, row("webhooks", "webhooks-CallService", FRESH, host="box"),
                  row("webhook-dispatcher", host_instance(), FRESH))
    assert judge(services(delivering, CONFIG), [], CONFIG, webhooks_active=True).status == "ok"
