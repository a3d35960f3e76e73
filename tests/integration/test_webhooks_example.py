"""examples/webhook_receiver.py under parallel deliveries, as the dispatcher sends
them (many connections at once): every verified event is printed once, each on a
line of its own (the Kafka e2e reads those lines as JSON)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx2

from api.routes.webhooks import new_secret
from application.webhooks.delivery import sign
from dialtone.services.ports import free_port

RECEIVER = Path(__file__).parents[2] / "examples" / "webhook_receiver.py"
EVENTS = 300


def test_parallel_deliveries_print_one_whole_line_each(tmp_path: Path) -> None:
    secret, port = new_secret(), free_port()
    out = tmp_path / "stdout"
    with out.open("w") as stdout:  # a file: a pipe read only at the end would fill up
        process = subprocess.Popen([sys.executable, str(RECEIVER), "--port", str(port),
                                    "--secret", secret], stdout=stdout,
                                   stderr=subprocess.DEVNULL, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(200):  # bounded wait for it to listen (50 ms polls)
            try:
                httpx2.get(url, timeout=1)
                break
            except httpx2.TransportError:
                time.sleep(0.05)

        def deliver(n: int) -> int:
            body = json.dumps({"id": f"e{n}", "data": {"n": n, "pad": "x" * 8000}}).encode()
            headers = sign(secret, f"e{n}", body, datetime.now(UTC))
            for _ in range(5):  # retried as the dispatcher would: its listen backlog is 5
                try:
                    return http.post(url, content=body, headers=headers).status_code
                except httpx2.TransportError:
                    time.sleep(0.05)
            return 0

        with httpx2.Client(timeout=30) as http, ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(deliver, [n % EVENTS for n in range(EVENTS + 20)]))
    finally:
        process.terminate()
        process.wait(10)
    assert statuses == [204] * (EVENTS + 20)
    printed = [json.loads(line) for line in out.read_text().splitlines()]  # each line whole
    assert sorted(e["data"]["n"] for e in printed) == list(range(EVENTS))  # repeats skipped
