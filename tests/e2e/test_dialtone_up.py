"""`dialtone up` (the README's first command) serves CDRs on its embedded default."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import httpx

from application.calls import CallService
from dialtone.database import eventsourcing_env
from dialtone.services.postgres import EmbeddedPostgres, free_port
from dialtone.simulate import lifecycles
from tests.fixtures.processes import DialtoneProcess, wait_for
from tests.fixtures.sip import _udp_free, free_udp_port


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None


def test_up_runs_embedded_postgres_projections_and_api_until_interrupted(
    tmp_path: Path, dialtone_processes: Callable[..., DialtoneProcess],
) -> None:
    pg_port, http_port, sip_port = free_port(), free_port(), free_udp_port()
    up = dialtone_processes(["up", "--sip-port", str(sip_port)], {
        "DIALTONE_DATA_DIR": str(tmp_path / "data"),
        "DIALTONE_EMBEDDED_PG_PORT": str(pg_port),
        "DIALTONE_HTTP_PORT": str(http_port),
    })
    base = f"http://127.0.0.1:{http_port}"
    wait_for(lambda: (r := _get(f"{base}/healthz")) is not None and r.status_code == 200,
             90, "dialtone up to be healthy", processes=(up,))

    # A B2BUA worker would write these through the same application service.
    database_url = f"postgresql://postgres@127.0.0.1:{pg_port}/dialtone"
    [call_id] = lifecycles(CallService(env=eventsourcing_env(database_url)), 1, "up")

    def cdr_served() -> bool:
        response = _get(f"{base}/v1/calls/{call_id}")
        return response is not None and response.status_code == 200 and (
            response.json().get("disposition") == "answered")

    wait_for(cdr_served, 30, "the call's CDR through the API", processes=(up,))
    worker_log = tmp_path / "data" / "logs" / f"b2bua-{sip_port}.log"
    wait_for(lambda: worker_log.exists() and "listening on udp" in worker_log.read_text(), 60,
             "the B2BUA worker to listen", processes=(up,))

    assert up.proc is not None
    up.proc.send_signal(signal.SIGINT)
    assert up.proc.wait(30) == 0
    assert not EmbeddedPostgres(tmp_path / "data" / "postgres", pg_port).is_running()
    assert _udp_free(sip_port), "the B2BUA worker outlived dialtone up"
