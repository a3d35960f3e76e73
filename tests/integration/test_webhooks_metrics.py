"""The webhook delivery's Prometheus series, moved by the real thing: the store
follower queues a call's events on a real PostgreSQL, a real Dispatcher sends them
to a loopback HTTP receiver that fails on cue (an error status, a timeout, a
dropped connection) before it accepts, or to an address the SSRF guard refuses.

The registry is process-wide (and other tests of this worker use it), so every
figure is compared with its value before the test.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterator
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from api.routes.webhooks import new_secret
from application.calls import CallService
from application.webhooks.delivery import Dispatcher
from dialtone.commands.webhooks import embedded
from dialtone.database import eventsourcing_env
from dialtone.services.ports import free_port
from streams.webhooks import StoreFollower
from tests.integration.api_support import running_api
from tests.integration.webhook_support import FAST, ended_call, receiving, subscribe, wait_for

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

OUTCOMES = ("delivered", "http_error", "timeout", "connection_error", "refused")
# One call's 4 events go one at a time (in order per aggregate): a round claims 1 of 2.
SETTINGS = FAST.model_copy(update={"cdr_wait_s": 0.0, "batch": 2})


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def figures() -> dict[str, float]:
    found = {o: sample("dialtone_webhook_attempts_total", outcome=o) for o in OUTCOMES}
    for name in ("dialtone_webhook_attempt_duration_seconds_count",
                 "dialtone_webhook_attempt_duration_seconds_sum",
                 "dialtone_webhook_deliveries_queued_total",
                 "dialtone_webhook_subscriptions_disabled_total"):
        found[name] = sample(name)
    return found


def moved(before: dict[str, float]) -> dict[str, float]:
    return {k: v - before[k] for k, v in figures().items()}


@pytest.fixture
def service(database_url: str) -> Iterator[CallService]:
    service = CallService(env=eventsourcing_env(database_url))
    try:
        yield service
    finally:
        service.close()


def attempt_log(database_url: str,
                subscription: UUID) -> list[tuple[int | None, str | None, float]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT status_code, error, duration_ms FROM webhook_attempts"
                            " WHERE subscription_id = %s", (subscription,)).fetchall()
    return [(row[0], row[1], row[2]) for row in rows]


def send_until(dispatcher: Dispatcher, done: Callable[[], bool],
               seconds: float = 60.0) -> list[float]:
    """Rounds of the dispatcher until `done()`, then one more (nothing due by then);
    return the fill ratio the gauge showed after each round."""
    async def rounds() -> list[float]:
        fills: list[float] = []
        deadline = time.monotonic() + seconds
        try:
            while not done():
                assert time.monotonic() < deadline, "deliveries not done in time"
                if not await dispatcher.run_once():
                    await asyncio.sleep(0.05)  # the next retry is not due yet
                fills.append(sample("dialtone_webhook_round_fill_ratio"))
            await dispatcher.run_once()
            fills.append(sample("dialtone_webhook_round_fill_ratio"))
            return fills
        finally:
            await dispatcher.close()
    return asyncio.run(rounds())


def test_each_attempt_is_counted_by_outcome_and_timed(database_url: str,
                                                      service: CallService) -> None:
    secret = new_secret()
    with receiving(secret, ["500", "timeout", "drop"]) as receiver:
        subscription = subscribe(database_url, receiver.url, secret)
        before = figures()
        ended_call(service, "metrics@test")
        StoreFollower(service, database_url).catch_up()
        assert moved(before)["dialtone_webhook_deliveries_queued_total"] == 4
        fills = send_until(Dispatcher(database_url, SETTINGS),
                           lambda: len(receiver.accepted) == 4)

    change = moved(before)
    assert {o: change[o] for o in OUTCOMES} == {
        "delivered": 4, "http_error": 1, "timeout": 1, "connection_error": 1, "refused": 0}
    log = attempt_log(database_url, subscription)
    assert len(log) == 7
    assert change["dialtone_webhook_attempt_duration_seconds_count"] == 7
    assert math.isclose(change["dialtone_webhook_attempt_duration_seconds_sum"],
                        sum(ms for _, _, ms in log) / 1000, rel_tol=1e-6)
    # The timed-out attempt is logged as one: no response, the timeout for its error.
    timed_out = f"timed out after {SETTINGS.timeout_s:g} s"
    assert [status for status, error, _ in log if error == timed_out] == [None]
    assert 0.5 in fills  # a round claimed 1 of its batch of 2
    assert fills[-1] == 0  # the last round found nothing due
    assert change["dialtone_webhook_subscriptions_disabled_total"] == 0


def test_a_refused_target_counts_as_refused_until_its_subscription_is_disabled(
        database_url: str, service: CallService) -> None:
    # 127.0.0.2 is loopback, and only 127.0.0.1/32 is allowed: refused before connecting.
    subscription = subscribe(database_url, f"http://127.0.0.2:{free_port()}/x", new_secret())
    ended_call(service, "refused@test")
    StoreFollower(service, database_url).catch_up()
    before = figures()
    settings = SETTINGS.model_copy(update={"disable_after_s": 0.3})

    def disabled() -> bool:
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT status FROM webhook_subscriptions WHERE id = %s",
                               (subscription,)).fetchone()
        return row is not None and row[0] == "disabled"

    send_until(Dispatcher(database_url, settings), disabled)
    change = moved(before)
    attempts = len(attempt_log(database_url, subscription))
    assert attempts >= 2  # the first failure starts the clock; a later one disables
    assert change["refused"] == attempts
    assert change["delivered"] == change["http_error"] == change["timeout"] == 0
    assert change["dialtone_webhook_subscriptions_disabled_total"] == 1


def test_dispatcher_rounds_count_as_steps_and_a_lost_database_as_failures(
        database_url: str) -> None:
    def rounds(url: str) -> tuple[float, float]:
        steps = sample("dialtone_loop_steps_total", loop="webhook-dispatcher")
        failures = sample("dialtone_loop_failures_total", loop="webhook-dispatcher")

        async def run_for_a_while() -> None:
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(1.5, stop.set)
            await Dispatcher(url, SETTINGS).run(stop)
        asyncio.run(run_for_a_while())
        return (sample("dialtone_loop_steps_total", loop="webhook-dispatcher") - steps,
                sample("dialtone_loop_failures_total", loop="webhook-dispatcher") - failures)

    steps, failures = rounds(database_url)
    assert steps >= 1
    assert failures == 0
    nowhere = f"postgresql://dialtone@127.0.0.1:{free_port()}/nothing?connect_timeout=2"
    steps, failures = rounds(nowhere)  # nothing listens there: every round fails
    assert steps == 0
    assert failures >= 1


def scraped(api: TestClient) -> dict[tuple[str, str], float]:
    """The webhook samples of the API's /metrics, by (name, outcome label)."""
    response = api.get("/metrics")
    assert response.status_code == 200
    return {(s.name, s.labels.get("outcome", "")): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples if s.name.startswith("dialtone_webhook_")}


def test_up_serves_the_webhook_series_on_its_metrics(
        database_url: str, service: CallService, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dialtone up` without Kafka runs the embedded delivery beside the API in one
    process: what it queues and sends shows on the API's /metrics, every outcome
    from zero."""
    monkeypatch.setenv("DIALTONE_WEBHOOK_ALLOW_NETS", "127.0.0.1/32")
    monkeypatch.setenv("DIALTONE_WEBHOOK_CDR_WAIT_S", "0")
    secret = new_secret()
    with receiving(secret) as receiver, running_api(database_url, role=None) as api:
        subscribe(database_url, receiver.url, secret)
        runners = embedded(database_url)  # what up builds and starts
        before = scraped(api)
        assert {o for name, o in before if name == "dialtone_webhook_attempts_total"} == set(
            OUTCOMES)
        runners.start()
        try:
            ended_call(service, "up@test")
            wait_for(lambda: len(receiver.accepted) == 4, what="4 deliveries")
            delivered = ("dialtone_webhook_attempts_total", "delivered")
            wait_for(lambda: scraped(api)[delivered] - before[delivered] == 4,
                     what="4 delivered attempts on /metrics")
        finally:
            runners.stop()
        after = scraped(api)
    queued = ("dialtone_webhook_deliveries_queued_total", "")
    assert after[queued] - before[queued] == 4
    assert ("dialtone_webhook_round_fill_ratio", "") in after
