"""``dialtone b2bua --workers 2``: one parent forks two real pjsua2 workers on PORT and
PORT + 1; it writes Kamailio's dispatcher list for them and a running Kamailio reloads
it; both answer calls, a worker killed with SIGKILL is marked inactive in Kamailio,
restarted, marked active and answers again, the parent's metrics count it, and SIGTERM
to the parent stops every worker."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from devtools.kamailio import start_kamailio
from dialtone.migrations import apply_migrations
from dialtone.services.ports import free_port
from dialtone.services.processes import die_with_parent
from tests.fixtures.processes import terminate
from tests.fixtures.sip import Sipp, free_udp_port, route_to, wait_until

ROUTED_UAC = Path(__file__).resolve().parents[2] / "bench" / "sipp" / "uac_bench.xml"

pytestmark = pytest.mark.sip

STARTED = re.compile(r"worker (\d) (?:started|restarted) \(pid (\d+)\)")


def free_port_pair() -> int:
    """A UDP port whose next one is free too (the pool's two workers)."""
    for _ in range(50):
        port = free_udp_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two consecutive free UDP ports")


def pids(log: Path) -> dict[int, int]:
    """Each worker's latest pid, from the parent's log."""
    found: dict[int, int] = {}
    for index, pid in STARTED.findall(log.read_text(errors="replace")):
        found[int(index)] = int(pid)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def listening(log: Path, times: int, what: str) -> None:
    """Wait for the pool's log to say ``times`` times that a worker listens; the
    log (why a worker did not start) in the failure."""
    try:
        wait_until(lambda: log.read_text(errors="replace").count("listening on udp") == times,
                   what, timeout=60)
    except AssertionError as timeout:
        raise AssertionError(f"{timeout}\n{log.read_text(errors='replace')[-8000:]}") from None


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_a_pool_of_two_answers_on_both_ports_restarts_a_killed_worker_and_stops(
    database_url: str, sipp: Sipp, tmp_path: Path
) -> None:
    apply_migrations(database_url)
    # The workers' metrics ports are the next two: free_port's range is one no
    # outgoing connection takes a port of.
    port, uas_port, metrics_port = free_port_pair(), free_udp_port(), free_port()
    log = tmp_path / "pool.log"
    # Kamailio starts knowing only the first worker; the pool's list replaces that.
    proxy = start_kamailio(tmp_path / "kamailio", [port], port=free_udp_port())
    ds_list = tmp_path / "kamailio" / "dispatcher.list"
    env = {**os.environ, "DATABASE_URL": database_url, "DIALTONE_LOG_LEVEL": "INFO",
           "DIALTONE_DATA_DIR": str(tmp_path / "data")}
    args = [sys.executable, "-m", "dialtone.commands.b2bua", "--workers", "2",
            "--port", str(port), "--route", route_to(uas_port),
            "--max-calls", "2", "--no-callcentre", "--metrics-port", str(metrics_port),
            "--dispatcher-list", str(ds_list), "--kamailio-ctl", f"unix:{proxy.control}"]
    with log.open("ab") as out:
        parent = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  preexec_fn=die_with_parent)  # noqa: PLW1509
    try:
        listening(log, 2, "both workers listening")
        assert ds_list.read_text().splitlines() == [
            f"1 sip:127.0.0.1:{p} 0 0 duid=127.0.0.1:{p};maxload=2" for p in (port, port + 1)]
        assert f"sip:127.0.0.1:{port + 1}" in proxy.rpc("dispatcher.list")  # reloaded
        uas = sipp.uas("uas", uas_port, calls=3)
        for target in (port, port + 1):
            assert sipp.uac("uac", target, service="1000").ok, log.read_text()
        assert sipp.uac(ROUTED_UAC, proxy.port, service="1000").ok, proxy.log_text()
        # The callee has every BYE before worker 1 is killed: a worker answers the
        # caller's BYE before it sends its own to the callee, and the proxied call may
        # be worker 1's; killed in between, that callee would wait for a BYE forever.
        assert sipp.wait_uas(uas) == 0

        killed = pids(log)[1]
        os.kill(killed, signal.SIGKILL)
        wait_until(lambda: pids(log)[1] != killed, "worker 1 restarted", timeout=30)
        listening(log, 3, "the restarted worker listening")
        uas = sipp.uas("uas", uas_port, calls=1)  # the port the first callee freed
        assert sipp.uac("uac", port + 1, service="1000").ok, log.read_text()
        assert sipp.wait_uas(uas) == 0
        # Kamailio sent the dead worker nothing until it was back (kamcmd succeeded).
        text = log.read_text(errors="replace")
        assert f"dispatcher.set_state i 1 sip:127.0.0.1:{port + 1}" in text, text
        assert f"dispatcher.set_state a 1 sip:127.0.0.1:{port + 1}" in text, text
        assert "kamcmd" not in text  # no failure logged
        metrics = scrape(metrics_port)
        assert "dialtone_b2bua_pool_restarts_total 1.0" in metrics, metrics
        assert "dialtone_b2bua_pool_children_up 2.0" in metrics, metrics
        assert "dialtone_b2bua_calls_active" not in metrics  # the workers' own, not here
        assert "dialtone_b2bua_calls_capacity 2.0" in scrape(metrics_port + 2)  # worker 1

        workers = pids(log).values()
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(40) == 0
        assert not [pid for pid in workers if alive(pid)]
    finally:
        terminate(parent, timeout=10)
        proxy.stop(timeout=10)  # its children too: none left holding the port
