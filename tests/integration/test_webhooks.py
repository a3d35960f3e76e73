"""Webhooks in the embedded default, against a real HTTP receiver on 127.0.0.1.

The store follower queues, the dispatcher sends; the receiver answers 500, times
out, drops the connection, then recovers. Nothing is lost, nothing is reordered
within a call, every signature verifies with the subscription's secret, and the
delivery log shows each attempt.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.routes.webhooks import new_secret
from application.calls import CallService
from application.identity.model import Role
from application.webhooks.settings import WebhookSettings
from dialtone.commands.webhooks import embedded
from dialtone.database import eventsourcing_env
from projections import calls
from streams.inprocess import InProcessProjectionRunner
from streams.webhooks import DispatcherThread, StoreFollower
from tests.integration.api_support import api_key, running_api
from tests.integration.webhook_support import (
    FAST,
    by_subject,
    ended_call,
    receiving,
    wait_for,
)

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy


@dataclass
class Stack:
    api: TestClient
    service: CallService
    database_url: str


@pytest.fixture
def stack(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """The API (as an integrator), the call service, and the projection runner feeding
    the CDR rows a call-ended delivery carries."""
    monkeypatch.setenv("DIALTONE_WEBHOOK_ALLOW_NETS", "127.0.0.1/32")
    with running_api(database_url, role=Role.INTEGRATOR) as api:
        service = CallService(env=eventsourcing_env(database_url))
        projections = InProcessProjectionRunner(service, database_url, [calls.GROUP],
                                                tick_s=0.05)
        projections.start()
        try:
            yield Stack(api, service, database_url)
        finally:
            projections.stop()
            service.close()


@pytest.fixture
def delivering(stack: Stack) -> Iterator[None]:
    follower = StoreFollower(stack.service, stack.database_url, tick_s=0.05)
    dispatcher = DispatcherThread(stack.database_url, FAST)
    follower.start()
    dispatcher.start()
    try:
        yield
    finally:
        follower.stop()
        dispatcher.stop()


def _subscribe(api: TestClient, url: str, types: list[str] | None = None,
               secret: str | None = None) -> dict[str, Any]:
    response = api.post("/v1/webhooks", json={"url": url, "event_types": types or ["*"],
                                              **({"secret": secret} if secret else {})})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_failures_then_recovery_lose_nothing_and_keep_each_call_in_order(
        stack: Stack, delivering: None) -> None:
    secret = new_secret()
    with receiving(secret, ["500", "timeout", "drop", "redirect", "500"]) as receiver:
        hook = _subscribe(stack.api, receiver.url, secret=secret)
        assert hook["secret"] is None  # we gave it: never echoed
        call_ids = [ended_call(stack.service, f"c{n}@test", recording=n == 0) for n in range(3)]
        expected = 3 * 4 + 1
        wait_for(lambda: len(set(receiver.ids())) >= expected, what="every event delivered")

        events = list(receiver.accepted)
        assert {e["subject"] for e in events} == {str(c) for c in call_ids}
        assert len({e["id"] for e in events}) == expected  # nothing lost
        for versions in by_subject(events).values():  # nothing reordered within a call
            assert versions == sorted(versions)
            assert sorted(set(versions)) == list(range(1, versions[-1] + 1))
        assert receiver.bad_signatures == 0
        assert receiver.modes[:5] == ["500", "timeout", "drop", "redirect", "500"]
        assert "/redirected" not in receiver.paths  # no redirect is followed
        assert all(e["_webhook_id"] == e["id"] for e in events)

        ended = [e for e in events if e["type"] == "dialtone.call.ended.v1"]
        assert len(ended) == 3
        for event in ended:  # the CDR's key fields ride along
            cdr = event["data"]["cdr"]
            assert cdr["call_id"] == event["subject"]
            assert (cdr["disposition"], cdr["talk_s"], cdr["wait_s"]) == ("answered", 60.0, 5.0)
            assert cdr["tenant"] == "default"
        (recording,) = [e for e in events if e["type"] == "dialtone.call.recording_available.v1"]
        assert recording["data"]["ref"] == f"rec/{call_ids[0]}.wav"
        assert recording["specversion"] == "1.0"
        assert recording["sequence"].isdigit()

        # The receiver counts a delivery when it answers; the dispatcher logs the attempt just
        # after, so the log catches up within a bound rather than at once.
        def attempt_log() -> list[dict[str, Any]]:
            url = f"/v1/webhooks/{hook['id']}/deliveries?limit=500"
            data: list[dict[str, Any]] = stack.api.get(url).json()["data"]
            return data
        wait_for(lambda: sum(a["status_code"] == 204 for a in attempt_log()) >= expected,
                 what="every delivered attempt logged")
        log = attempt_log()
        _pages_cover(stack.api, f"/v1/webhooks/{hook['id']}/deliveries", log)
        codes = [a["status_code"] for a in log]
        assert codes.count(500) == 2
        assert codes.count(302) == 1
        errors = [a["error"] or "" for a in log if a["status_code"] is None]
        assert any("timed out" in e for e in errors)
        assert any("RemoteProtocolError" in e or "closed" in e.lower() for e in errors)
        assert sum(1 for a in log if a["status_code"] == 204) >= expected
        assert max(a["attempt"] for a in log) >= 2
        state = stack.api.get(f"/v1/webhooks/{hook['id']}").json()
        assert (state["status"], state["failing_since"], state["pending"]) == ("active", None, 0)

        # Redelivery from a position: the last call's events come again, in order.
        last = [e for e in events if e["subject"] == str(call_ids[-1])]
        start = min(int(e["sequence"]) for e in last)
        before = len(receiver.accepted)
        queued = stack.api.post(f"/v1/webhooks/{hook['id']}/redeliver",
                                json={"from_position": start}).json()["queued"]
        assert queued == len(last)
        wait_for(lambda: len(receiver.accepted) >= before + queued, what="redelivery")
        again = receiver.accepted[before:]
        assert [e["id"] for e in again] == [e["id"] for e in last]


def test_paused_subscription_queues_and_resumes_where_it_stopped(stack: Stack) -> None:
    """Through what `dialtone up` runs (a follower per event store, one dispatcher,
    settings from the environment)."""
    secret = new_secret()
    runners = embedded(stack.database_url)
    runners.start()
    try:
        with receiving(secret) as receiver:
            hook = _subscribe(stack.api, receiver.url, ["dialtone.call.ended.v1"], secret)
            paused = stack.api.post(f"/v1/webhooks/{hook['id']}/pause").json()
            assert paused["status"] == "paused"
            call_id = ended_call(stack.service, "paused@test")
            wait_for(lambda: stack.api.get(f"/v1/webhooks/{hook['id']}").json()["pending"] == 1,
                     what="the event queued while paused")
            assert receiver.accepted == []
            stack.api.post(f"/v1/webhooks/{hook['id']}/resume")
            wait_for(lambda: len(receiver.accepted) == 1, what="delivery after resume")
    finally:
        runners.stop()
    assert [(e["type"], e["subject"]) for e in receiver.accepted] == [
        ("dialtone.call.ended.v1", str(call_id))]  # only the type it asked for


def _pages_cover(api: Any, path: str, log: list[dict[str, Any]]) -> None:
    """Pages of 3, followed by `next_before` (and announced by a Link header), hold
    every attempt of `log` once, newest first (later attempts may come on top)."""
    paged: list[int] = []
    url: str | None = f"{path}?limit=3"
    while url is not None:
        page = api.get(url)
        body = page.json()
        paged += [a["attempt_id"] for a in body["data"]]
        assert ("link" in page.headers) == (body["next_before"] is not None)
        url = None if body["next_before"] is None else \
            f"{path}?limit=3&before={body['next_before']}"
    assert paged == sorted(set(paged), reverse=True)
    assert {a["attempt_id"] for a in log} <= set(paged)


def test_an_endless_answer_is_read_up_to_the_cap_only(stack: Stack, delivering: None) -> None:
    """A 200 whose body never ends still delivers (at most max_response_bytes are read),
    rather than hanging until the attempt times out."""
    secret = new_secret()
    with receiving(secret, ["endless"]) as receiver:
        hook = _subscribe(stack.api, receiver.url, ["dialtone.call.initiated.v1"], secret)
        ended_call(stack.service, "endless@test")
        wait_for(lambda: stack.api.get(f"/v1/webhooks/{hook['id']}").json()["pending"] == 0
                 and bool(receiver.modes), what="the delivery")
        log = stack.api.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["data"]
        assert [(a["status_code"], a["error"], a["delivered"]) for a in log] == [
            (200, None, True)]


def test_constant_failure_disables_the_subscription(stack: Stack) -> None:
    settings = FAST.model_copy(update={"disable_after_s": 0.5})
    secret = new_secret()
    with receiving(secret, ["500"] * 1000) as receiver:
        hook = _subscribe(stack.api, receiver.url, secret=secret)
        ended_call(stack.service, "failing@test")
        follower = StoreFollower(stack.service, stack.database_url, tick_s=0.05)
        dispatcher = DispatcherThread(stack.database_url, settings)
        follower.start()
        dispatcher.start()
        try:
            wait_for(lambda: stack.api.get(f"/v1/webhooks/{hook['id']}").json()["status"]
                     == "disabled", what="disabled")
        finally:
            follower.stop()
            dispatcher.stop()
        state = stack.api.get(f"/v1/webhooks/{hook['id']}").json()
        assert state["failing_since"] is not None
        assert "failed" in state["disabled_reason"]
        assert receiver.accepted == []
        assert receiver.modes


def test_a_target_that_resolves_to_loopback_is_refused_at_delivery(stack: Stack) -> None:
    """Created while the allow-list permitted 127.0.0.1; a dispatcher without that
    allow-list resolves the host, refuses the address, and never connects."""
    secret = new_secret()
    with receiving(secret) as receiver:
        hook = _subscribe(stack.api, receiver.url, secret=secret)
        ended_call(stack.service, "ssrf@test")
        StoreFollower(stack.service, stack.database_url).catch_up()
        strict = DispatcherThread(stack.database_url, WebhookSettings(
            allow_nets="", timeout_s=1.0, backoff_base_s=0.05, backoff_max_s=0.3, poll_s=0.05))
        strict.start()
        try:
            wait_for(lambda: len(stack.api.get(f"/v1/webhooks/{hook['id']}/deliveries")
                                 .json()["data"]) >= 2, what="refused attempts")
        finally:
            strict.stop()
        log = stack.api.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["data"]
        assert all(a["status_code"] is None and "refused target" in a["error"] for a in log), log
        assert receiver.modes == []  # never reached


def test_the_secret_never_reaches_the_event_store_or_a_delivery(stack: Stack,
                                                                delivering: None) -> None:
    secret = new_secret()
    with receiving(secret) as receiver:
        _subscribe(stack.api, receiver.url, secret=secret)
        ended_call(stack.service, "secret@test")
        wait_for(lambda: len(receiver.accepted) == 4, what="delivered")
    with psycopg.connect(stack.database_url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " AND table_name <> 'webhook_subscriptions'").fetchall()]
        for table in tables:
            hit = conn.execute(f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE %s',
                               (f"%{secret[6:20]}%",)).fetchone()
            assert hit == (0,), table


def test_another_tenants_webhook_is_404_and_literal_bad_addresses_are_422(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIALTONE_WEBHOOK_ALLOW_NETS", raising=False)
    with running_api(database_url, role=Role.INTEGRATOR) as api:
        for url in ("http://127.0.0.1:8000/x", "http://10.1.2.3/x", "http://169.254.169.254/",
                    "http://[::1]/x", "http://localhost/x", "ftp://example.com/x",
                    "http://user:pw@example.com/x"):
            response = api.post("/v1/webhooks", json={"url": url, "event_types": ["*"]})
            assert response.status_code == 422, (url, response.text)
        bad_type = api.post("/v1/webhooks", json={"url": "https://hooks.example.com/x",
                                                   "event_types": ["call.ended"]})
        assert bad_type.status_code == 422
        created = api.post("/v1/webhooks", json={"url": "https://hooks.example.com/x",
                                                 "event_types": ["dialtone.call.ended.v1"]})
        assert created.status_code == 201
        hook = created.json()
        assert hook["secret"].startswith("whsec_")  # made for us, shown once
        listed = api.get("/v1/webhooks").json()
        assert listed["count"] == 1
        assert "secret" not in listed["data"][0]
        assert "secret" not in api.get(f"/v1/webhooks/{hook['id']}").json()
        patched = api.patch(f"/v1/webhooks/{hook['id']}",
                            json={"event_types": ["*"], "url": "https://other.example.com/y"})
        assert patched.json()["event_types"] == ["*"]
        assert api.patch(f"/v1/webhooks/{hook['id']}",
                         json={"url": "http://192.168.1.1/"}).status_code == 422

        other = {"Authorization": f"Bearer {api_key(database_url, Role.ADMIN, 'acme')}"}
        for method, path in (("get", ""), ("patch", ""), ("delete", ""), ("post", "/pause"),
                             ("get", "/deliveries"), ("post", "/redeliver")):
            body = {"from_position": 0} if path == "/redeliver" else {}
            response = api.request(method, f"/v1/webhooks/{hook['id']}{path}", headers=other,
                                   json=body)
            assert response.status_code == 404, (method, path, response.text)
        assert api.get("/v1/webhooks", headers=other).json()["count"] == 0

        for bad in (False, "3", -1, 2**63, 2**70):  # a bool, a string, out of bigint range
            response = api.post(f"/v1/webhooks/{hook['id']}/redeliver",
                                json={"from_position": bad})
            assert response.status_code == 422, (bad, response.text)
        assert api.get(f"/v1/webhooks/{hook['id']}/deliveries?before={2**63}").status_code == 422

        analyst = {"Authorization": f"Bearer {api_key(database_url, Role.ANALYST)}"}
        assert api.get("/v1/webhooks", headers=analyst).status_code == 403
        assert api.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
        assert api.get(f"/v1/webhooks/{hook['id']}").status_code == 404
