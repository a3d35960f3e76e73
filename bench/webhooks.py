"""Webhook delivery benchmark (issue 12; not a test).

Run: ``.venv/bin/python -m bench.webhooks`` (about a minute; see bench/README.md).

On one embedded PostgreSQL, a CallService stores events, the store follower
queues them and the dispatcher sends them, signed (standardwebhooks), to a
receiver on 127.0.0.1 in another process (aiohttp; it verifies every signature,
as an integrator's would, and notes when each event arrived).

1. Throughput: ``--events`` calls are initiated (one event each, so as many
   aggregates: per-aggregate ordering does not serialise them), queued, then sent;
   signed deliveries per second = events / time from the first send to the last
   arrival (target >= 1,000/s).
2. Latency: one event every 10 ms (100 events/s) for ``--seconds`` while the
   follower and dispatcher run as in `dialtone up`; event stored -> webhook
   received, from the event's `time` (set at the command, just before the append)
   to the receiver's clock (same machine): p50 / p90 / p99 / max.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from typing import Any

import httpx2
import psycopg

from api.routes.webhooks import new_secret
from application.calls import CallService
from application.webhooks.delivery import Dispatcher
from application.webhooks.settings import WebhookSettings
from bench.common import embedded_postgres, machine_facts, percentile_ms
from dialtone.database import ensure_database, eventsourcing_env
from dialtone.migrations import apply_migrations
from dialtone.services.ports import free_port
from domain.call import Direction
from streams.webhooks import DispatcherThread, StoreFollower

SETTINGS = WebhookSettings(allow_nets="127.0.0.1/32", poll_s=0.01, batch=1000, concurrency=16)


def receiver_main(port: int, secret: str) -> None:
    """The receiver process: verify, note the arrival time, answer 204."""
    from aiohttp import web  # noqa: PLC0415 - only the receiver process needs it
    from standardwebhooks.webhooks import Webhook  # noqa: PLC0415

    webhook = Webhook(secret)
    arrivals: dict[str, tuple[float, str]] = {}
    failures = [0]

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = webhook.verify(body, dict(request.headers))
        except Exception:
            failures[0] += 1
            return web.Response(status=401)
        arrivals.setdefault(event["id"], (time.time(), event["time"]))  # first arrival
        return web.Response(status=204)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"arrivals": arrivals, "bad": failures[0]})

    async def reset(_: web.Request) -> web.Response:
        arrivals.clear()
        return web.Response(status=204)

    app = web.Application()
    app.add_routes([web.post("/hook", hook), web.get("/stats", stats),
                    web.post("/reset", reset)])
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _stats(base: str) -> dict[str, Any]:
    return dict(httpx2.get(f"{base}/stats", timeout=30).json())


def _wait_arrivals(base: str, count: int, limit_s: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        stats = _stats(base)
        if len(stats["arrivals"]) >= count:
            return stats
        time.sleep(0.05)
    raise SystemExit(f"only {len(_stats(base)['arrivals'])} of {count} arrived")


def _subscribe(database_url: str, url: str, secret: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO webhook_subscriptions (id, tenant, url, event_types, secret)"
                     " VALUES (gen_random_uuid(), 'default', %s, '{*}', %s)", (url, secret))


def _clear(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM webhook_deliveries")  # and their attempts (cascade)


def _pending(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'"
                           ).fetchone()
    return int(row[0]) if row else 0


def _failed(database_url: str) -> str:
    """The failed attempts, counted by error (the first 60 characters)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT left(coalesce(error, 'HTTP ' || status_code), 60), count(*)"
                            " FROM webhook_attempts WHERE status_code IS NULL"
                            " OR status_code >= 300 GROUP BY 1 ORDER BY 2 DESC").fetchall()
    return ", ".join(f"{count} x {error}" for error, count in rows) or "none"


def _attempts(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM webhook_attempts").fetchone()
    return int(row[0]) if row else 0


def _initiate(service: CallService, n: int) -> None:
    service.initiate_call(caller="1001", callee="2001", direction=Direction.INBOUND,
                          trunk="pstn", sip_call_id=f"bench-{n}-{time.monotonic_ns()}",
                          occurred_at=datetime.now(UTC))


def throughput(service: CallService, database_url: str, base: str, events: int,
               dispatchers: int) -> None:
    httpx2.post(f"{base}/reset")
    with service.batch():
        for n in range(events):
            _initiate(service, n)
    queued_at = time.perf_counter()
    StoreFollower(service, database_url).catch_up()
    queue_s = time.perf_counter() - queued_at
    with ProcessPoolExecutor(dispatchers, mp_context=get_context("spawn")) as pool:
        runs = list(pool.map(send_until_empty, [database_url] * dispatchers))
    cpu_s = sum(cpu for cpu, _, _ in runs)
    send_s = max(end for _, _, end in runs) - min(start for _, start, _ in runs)
    stats = _wait_arrivals(base, events)
    print(f"throughput with {dispatchers} dispatcher process(es): {events} events queued in "
          f"{queue_s:.2f} s ({events / queue_s:,.0f}/s); all delivered in {send_s:.2f} s: "
          f"{events / send_s:,.0f} signed deliveries/s, dispatcher CPU {cpu_s:.2f} s "
          f"({events / cpu_s:,.0f} deliveries per CPU-second); {_attempts(database_url)} "
          f"attempts for {len(stats['arrivals'])} events; failed attempts (retried): "
          f"{_failed(database_url)}; bad signatures {stats['bad']}")


def send_until_empty(database_url: str) -> tuple[float, float, float]:
    """One dispatcher process: rounds until nothing is pending (failed attempts come
    back after their backoff; several processes share the queue). Returns its CPU
    seconds and its wall-clock start and end (process start-up excluded)."""
    cpu_before, started = time.process_time(), time.time()

    async def send_all() -> None:
        dispatcher = Dispatcher(database_url, SETTINGS)
        try:
            while _pending(database_url):
                if not await dispatcher.run_once():
                    await asyncio.sleep(SETTINGS.poll_s)
        finally:
            await dispatcher.close()

    asyncio.run(send_all())
    return time.process_time() - cpu_before, started, time.time()


def http_ceiling(base: str, secret: str, requests: int) -> None:
    """The same client, signing and receiver with no queue and no database: how much of
    the throughput the HTTP side alone allows on this machine now."""
    from application.webhooks.delivery import client, sign  # noqa: PLC0415
    from application.webhooks.guard import parse_allow  # noqa: PLC0415

    async def post_all() -> float:
        http = client(SETTINGS, parse_allow(SETTINGS.allow_nets))
        gate = asyncio.Semaphore(SETTINGS.concurrency)
        body = b'{"id":"ceiling","time":"2026-12-02T00:00:00+00:00"}'

        async def one(n: int) -> None:
            async with gate:
                headers = sign(secret, f"c{n}", body, datetime.now(UTC))
                async with http.post(f"{base}/hook", data=body, headers=headers) as response:
                    response.raise_for_status()

        started = time.perf_counter()
        try:
            await asyncio.gather(*(one(n) for n in range(requests)))
        finally:
            await http.close()
        return time.perf_counter() - started

    elapsed = asyncio.run(post_all())
    print(f"http ceiling (no database): {requests} signed POSTs in {elapsed:.2f} s: "
          f"{requests / elapsed:,.0f}/s")


def latency(service: CallService, database_url: str, base: str, seconds: float) -> None:
    httpx2.post(f"{base}/reset")
    follower = StoreFollower(service, database_url, tick_s=0.05)
    follower.catch_up()
    dispatcher = DispatcherThread(database_url, SETTINGS)
    follower.start()
    dispatcher.start()
    count = int(seconds * 100)
    try:
        start = time.monotonic()
        for n in range(count):  # open loop: one event every 10 ms
            _initiate(service, n)
            pause = start + (n + 1) * 0.01 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        rate = count / (time.monotonic() - start)
        stats = _wait_arrivals(base, count)
    finally:
        follower.stop()
        dispatcher.stop()
    delays = [received - datetime.fromisoformat(sent).timestamp()
              for received, sent in stats["arrivals"].values()]
    print(f"latency at {rate:.0f} events/s over {count} events: stored -> received "
          f"p50 {percentile_ms(delays, 0.5):.1f} ms, p90 {percentile_ms(delays, 0.9):.1f} ms, "
          f"p99 {percentile_ms(delays, 0.99):.1f} ms, max {max(delays) * 1000:.1f} ms; "
          f"bad signatures {stats['bad']}")


def main() -> None:
    parser = argparse.ArgumentParser(description="webhook delivery benchmark")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--dispatchers", type=int, nargs="+", default=[1, 2],
                        help="Dispatcher processes of each throughput run.")
    parser.add_argument("--receiver", nargs=2, metavar=("PORT", "SECRET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        receiver_main(int(args.receiver[0]), args.receiver[1])
        return
    print(machine_facts())
    secret, port = new_secret(), free_port()
    receiver = subprocess.Popen([sys.executable, "-m", "bench.webhooks", "--receiver",
                                 str(port), secret])
    base = f"http://127.0.0.1:{port}"
    try:
        with embedded_postgres() as server:
            database_url = server.dsn("bench_webhooks")
            ensure_database(database_url)
            apply_migrations(database_url)
            _wait_receiver(base)
            _subscribe(database_url, f"{base}/hook", secret)
            service = CallService(env=eventsourcing_env(database_url))
            try:
                http_ceiling(base, secret, args.events)
                for dispatchers in args.dispatchers:
                    _clear(database_url)
                    throughput(service, database_url, base, args.events, dispatchers)
                latency(service, database_url, base, args.seconds)
            finally:
                service.close()
        print(machine_facts())
    finally:
        receiver.terminate()
        receiver.wait(10)


def _wait_receiver(base: str) -> None:
    for _ in range(200):
        try:
            _stats(base)
            return
        except httpx2.HTTPError:
            time.sleep(0.05)
    raise SystemExit("the receiver did not start")


if __name__ == "__main__":
    main()
