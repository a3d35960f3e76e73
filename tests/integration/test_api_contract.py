"""The API matches its own OpenAPI document (issue 16.9): Schemathesis runs
every phase (examples, coverage, fuzzing, stateful) with every check over the
real app, served by uvicorn on loopback over the real PostgreSQL, and finds
nothing. Bounded: a fixed seed, a few examples per operation, a time budget per
run. One run per share of the time, so the stateful phase (create ->
read/change/delete through the document's links) is not left what fuzzing leaves.
The one narrowed check and why: tests/integration/schemathesis.toml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from application.identity import service
from application.identity.model import Role
from dialtone.commands.users import with_connection
from dialtone.migrations import apply_migrations
from dialtone.services.ports import free_port

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

MAX_EXAMPLES = 8
# Fixed for reproducibility; DIALTONE_CONTRACT_SEED=n runs the same test on other data.
SEED = int(os.environ.get("DIALTONE_CONTRACT_SEED", "16"))
# (phases, time budget in seconds). Fuzzing and stateful testing repeat until
# their budget is spent, so each gets its own run and share of the time. The
# coverage phase enumerates ~2,500 cases, more than its budget sends on a loaded
# CI machine: the budget, not the schema, bounds it. One worker: schemathesis's
# threads trip CPython 3.11's AST compiler ("recursion depth mismatch").
RUNS = (("examples,coverage", 34), ("fuzzing", 8), ("stateful", 22))
CONFIG = Path(__file__).with_name("schemathesis.toml")
# The API as `dialtone up` serves it, less the B2BUA workers: the projection
# runners and the routing process run beside it, so /healthz is honestly healthy
# and what a command writes shows up in the reads.
SERVER = """
import sys, uvicorn
from dialtone import bootstrap
url, port = sys.argv[1], int(sys.argv[2])
bootstrap.call_service(url), bootstrap.callcentre_service(url)  # the event tables, once
runners = [*bootstrap.inprocess_runners(url), bootstrap.routing_runner(url)]
for runner in runners:
    runner.start()
try:
    uvicorn.run(bootstrap.http_app(url), host="127.0.0.1", port=port, log_level="warning")
finally:
    for runner in runners:
        runner.stop()
"""


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[str]:
    apply_migrations(database_url)
    port = free_port()
    log = (tmp_path / "api.log").open("w")
    server = subprocess.Popen([sys.executable, "-c", SERVER, database_url, str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx2.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the API did not start: " + (tmp_path / "api.log").read_text()[-2000:])
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def admin_key(database_url: str) -> str:
    """An admin API key, so the operations behind access control are tested, not only
    refused (a key, not a user: fuzzing `/users/{username}/disable` cannot lock it out)."""
    new = with_connection(database_url, lambda conn: service.create_api_key(
        conn, "default", "contract-test", Role.ADMIN))
    return new.key


def provision(base: str, headers: dict[str, str]) -> None:
    """A little of everything, so reads and stateful links find real resources."""
    with httpx2.Client(base_url=base, timeout=10, headers=headers) as client:
        for path, body in [
            ("/v1/agents", {"key": "alice", "name": "Alice", "skills": {"english": 50}}),
            ("/v1/queues", {"key": "sales", "name": "Sales"}),
            ("/v1/ivr-menus", {"key": "main", "name": "Main", "prompt": "Press 1"}),
            ("/v1/numbers", {"did": "+3225550100",
                             "destination": {"kind": "queue", "value": "sales"}}),
            ("/v1/dialplans", {"key": "out", "name": "Out", "rules": [
                {"name": "all", "kind": "prefix", "pattern": "",
                 "uri_template": "sip:{number}@trunk.example.com"}]}),
        ]:
            response = client.post(path, json=body)
            assert response.status_code == 201, response.text
        assert client.put("/v1/queues/sales/members/alice", json={"penalty": 0}).is_success


def schemathesis(base: str, key: str, phases: str, max_time: int, report: Path
                 ) -> dict[str, Any]:
    """One bounded run with every check; its JSON report (figures and failures)."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG),
        # No --checks: every check is on by default, and naming them on the command
        # line would override the per-operation settings of the config file.
        "run", f"{base}/openapi.json", "--phases", phases,
        "--max-examples", str(MAX_EXAMPLES), "--max-time", str(max_time), "--seed", str(SEED),
        "--workers", "1", "--request-timeout", "10", "--no-shrink", "--no-color",
        "--header", f"Authorization: Bearer {key}",
        "--report", "json", "--report-json-path", str(report),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=max_time + 120,
                         check=False)
    assert run.returncode == 0, run.stdout[-12000:] + run.stderr[-2000:]
    summary: dict[str, Any] = json.loads(report.read_text())
    return summary


def test_schemathesis_finds_no_contract_failure(served: str, database_url: str,
                                                tmp_path: Path) -> None:
    key = admin_key(database_url)
    provision(served, {"Authorization": f"Bearer {key}"})
    for phases, max_time in RUNS:
        summary = schemathesis(served, key, phases, max_time, tmp_path / f"{phases}.json")
        cases, operations = summary["test_cases"], summary["operations"]
        ran = [name for name, phase in summary["phases"].items()
               if phase["status"] not in ("skip", "skipped")]
        print(f"schemathesis {phases} (seed {SEED}): phases run {ran}, operations tested "
              f"{operations['tested']}/{operations['selected']}, test cases "
              f"{cases['generated']}, failures {len(summary['failures'])}, errors "
              f"{len(summary['errors'])}, {summary['running_time']:.1f} s")
        assert ran == phases.split(","), summary["phases"]
        assert (summary["failures"], summary["errors"]) == ([], []), summary
        assert cases["generated"] > 0
        assert cases["with_failures"] == 0
