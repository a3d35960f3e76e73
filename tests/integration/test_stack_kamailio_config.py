"""The compose stack's Kamailio: the kamailio service's entrypoint, run as the
container runs it, renders a config the real Kamailio accepts (`kamailio -c`,
Debian's kamailio package) and a dispatcher list of every worker of the b2bua
pool, whose SIP ports and RTP blocks compose publishes; with a certificate in the
mounted directory the config listens for TLS on the published 5061; a broken
config is rejected.
"""

from __future__ import annotations

import subprocess
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

from tests.fixtures.certificates import make_server_certificate
from tests.integration.stack_support import mounted_file, run_tool, stack, tool_path
from tests.integration.test_compose_file import REPO

__all__ = ["stack"]  # the fixture, shared


def _render_kamailio(stack: dict[str, Any], out: Path, **overrides: str) -> Path:
    """Run the kamailio service's entrypoint as the container does, stopping before
    Kamailio starts, on a loopback listen address."""
    service = stack["services"]["kamailio"]
    script = mounted_file(service, service["entrypoint"][-1])
    env = {**service["environment"], "PATH": "/usr/bin:/bin",
           "SRC_DIR": str(mounted_file(service, service["environment"]["SRC_DIR"])),
           "OUT_DIR": str(out), "LISTEN_IP": "127.0.0.1", "CHECK_ONLY": "1", **overrides}
    subprocess.run(["sh", str(script)], env=env, check=True, timeout=30)
    return out / "kamailio.cfg"


def test_the_compose_kamailio_config_passes_kamailio_check(
    stack: dict[str, Any], tmp_path: Path,
) -> None:
    config = _render_kamailio(stack, tmp_path)
    # One line per worker of the b2bua pool, on every port it listens on.
    command = stack["services"]["b2bua"]["command"]
    workers = int(command[command.index("--workers") + 1])
    assert stack["services"]["kamailio"]["environment"]["B2BUA_WORKERS"] == str(workers)
    assert workers > 1
    assert (tmp_path / "dispatcher.list").read_text().splitlines() == [
        f"1 sip:b2bua:{5070 + i} 0 0 duid=b2bua:{5070 + i};maxload=2" for i in range(workers)]
    # Each worker's SIP port and RTP block (10000 + (port % 500) * 40, 40 ports) is published.
    published = {port for mapping in stack["services"]["b2bua"]["ports"]
                 for port in range(int(mapping["published"].split("-")[0]),
                                   int(mapping["published"].split("-")[-1]) + 1)}
    for i in range(workers):
        rtp = 10000 + (5070 + i) % 500 * 40
        assert {5070 + i, *range(rtp, rtp + 40)} <= published, i
    text = config.read_text()
    assert "LISTEN_ADDR" not in text
    assert "DISPATCHER_LIST" not in text
    # The workers' edge name (DIALTONE_SIP_EDGE's host) is this proxy's alias.
    edge_host = stack["services"]["b2bua"]["environment"]["DIALTONE_SIP_EDGE"].split(":")[0]
    assert f'alias="{edge_host}"' in text.splitlines()
    check = run_tool(tool_path("kamailio"), "-c", "-f", str(config))
    assert check.returncode == 0, check.stdout + check.stderr
    # The dispatcher targets the compose B2BUA on the SIP port it listens on.
    assert stack["services"]["b2bua"]["command"][-2:] == ["--port", "5070"]
    # No certificate in the mounted directory: UDP only, tls.cfg left unfilled.
    assert "#!define WITH_TLS" not in text
    assert "listen=tls:TLS_ADDRESS" in (tmp_path / "tls.cfg").read_text()


def test_the_compose_kamailio_serves_tls_with_a_mounted_certificate(
    stack: dict[str, Any], tmp_path: Path,
) -> None:
    service = stack["services"]["kamailio"]
    env = service["environment"]
    # The paths the entrypoint reads are in the mounted certificate directory
    # (infra/kamailio/tls/ by default), and the TLS port is published.
    for name in ("TLS_CERTIFICATE", "TLS_PRIVATE_KEY"):
        assert mounted_file(service, env[name]).parent == REPO / "infra" / "kamailio" / "tls"
    assert {(p["target"], p["protocol"]) for p in service["ports"]} >= {
        (5060, "udp"), (5061, "tcp")}
    files = make_server_certificate(tmp_path / "certificate")
    out = tmp_path / "out"
    out.mkdir()
    config = _render_kamailio(stack, out, TLS_CERTIFICATE=str(files.certificate),
                              TLS_PRIVATE_KEY=str(files.private_key))
    assert config.read_text().splitlines()[1] == "#!define WITH_TLS"
    tls = (out / "tls.cfg").read_text()
    assert "listen=tls:127.0.0.1:5061" in tls
    assert f'modparam("tls", "certificate", "{files.certificate}")' in tls
    assert f'modparam("tls", "private_key", "{files.private_key}")' in tls
    check = run_tool(tool_path("kamailio"), "-c", "-f", str(config))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "tls: 127.0.0.1 [127.0.0.1]:5061" in check.stdout + check.stderr


def test_kamailio_check_rejects_a_broken_config(stack: dict[str, Any], tmp_path: Path) -> None:
    config = _render_kamailio(stack, tmp_path)
    config.write_text(config.read_text().replace('loadmodule "dispatcher.so"\n', ""))
    check = run_tool(tool_path("kamailio"), "-c", "-f", str(config))
    assert check.returncode != 0


def test_the_workers_take_new_invites_from_kamailio_alone(stack: dict[str, Any]) -> None:
    """The workers' SIP ports are published, so trusting the private ranges (as this
    file once did) let any host on the LAN send a worker an INVITE around Kamailio's
    checks: the workers trust Kamailio's fixed address on the stack's network only."""
    services = stack["services"]
    trusted = services["b2bua"]["environment"]["DIALTONE_SIP_TRUSTED_SOURCES"].split(",")
    kamailio = services["kamailio"]["networks"]["default"]["ipv4_address"]
    assert trusted == [kamailio]
    (subnet,) = [pool["subnet"] for pool in stack["networks"]["default"]["ipam"]["config"]]
    assert ip_address(kamailio) in ip_network(subnet)
    assert any(port["target"] == 5070 for port in services["b2bua"]["ports"])  # why it matters
