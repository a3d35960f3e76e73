"""A TLS + SRTP call through the edge (issue 14 §4): a pjsua2 softphone dials over
TLS to Kamailio (infra/kamailio/tls.cfg, -A WITH_TLS), which relays it over UDP
to a B2BUA worker, which bridges it to a plain-RTP phone. What is on the wire is
read from the loopback interface: the SIP the phone sends is TLS, the SDP
Kamailio relays carries SDES crypto lines, the phone's RTP is ciphertext, and
the worker's plain leg to the callee (the control) is ordinary PCMU."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.phones import phones
from dialtone.services.ports import free_port
from tests.fixtures.capture import TCP, Capture, entropy_bits, loopback_capture, rtp_payload
from tests.fixtures.certificates import make_server_certificate
from tests.fixtures.kamailio import StartProxy
from tests.fixtures.sip import CallStore, StartWorker, free_udp_port, kinds, route_to, wait_until

pytestmark = pytest.mark.sip

RTP_RANGE = 20  # the softphone's RTP port range (devtools/softphone.py)
PCMU = 0
SRTP_TAG = 10  # AES_CM_128_HMAC_SHA1_80's authentication tag, after the payload


def rtp(capture: Capture, *, ports: range, sent: bool) -> list[tuple[int, bytes]]:
    """(payload type, payload) of the RTP packets sent from ``ports`` (``sent``)
    or to them."""
    found = []
    for packet in capture.packets:
        port = packet.source_port if sent else packet.destination_port
        if port in ports and packet.protocol != TCP:
            parsed = rtp_payload(packet.payload)
            if parsed is not None:
                found.append(parsed)
    return found


def rtp_from(capture: Capture, ports: range) -> list[tuple[int, bytes]]:
    return rtp(capture, ports=ports, sent=True)


def rtp_to(capture: Capture, ports: range) -> list[tuple[int, bytes]]:
    return rtp(capture, ports=ports, sent=False)


def test_a_tls_call_with_srtp_is_encrypted_up_to_the_worker(
    b2bua: StartWorker, kamailio: StartProxy, call_store: CallStore, tmp_path: Path
) -> None:
    certificate = make_server_certificate(tmp_path / "tls")
    callee_port, caller_port = free_udp_port(), free_udp_port()
    callee_rtp, caller_rtp = free_udp_port(), free_udp_port()
    worker = b2bua(route_to(callee_port))
    tls_port = free_port()
    kamailio([worker], defines=["WITH_TLS"], values={
        "TLS_ADDRESS": f"127.0.0.1:{tls_port}", "TLS_CERTIFICATE": str(certificate.certificate),
        "TLS_PRIVATE_KEY": str(certificate.private_key)})
    caller_ports = range(caller_rtp, caller_rtp + RTP_RANGE)
    callee_ports = range(callee_rtp, callee_rtp + RTP_RANGE)

    with phones() as start, loopback_capture(
            [tls_port, worker.port, *caller_ports, *callee_ports]) as capture:
        callee = start("callee", callee_port, tmp_path / "callee",
                       args=["--rtp-port", str(callee_rtp), "--codec", "PCMU/8000",
                             "--answer-after", "0.2", "--hangup-after", "3"])
        caller = start("caller", caller_port, tmp_path / "caller", args=[
            "--rtp-port", str(caller_rtp), "--codec", "PCMU/8000", "--tone", "440",
            "--tls-ca", str(certificate.ca),
            "--srtp", "mandatory",
            "--dial", f"sip:1000@127.0.0.1:{tls_port};transport=tls"])
        # pjsua's own view of each leg: the caller's is SRTP, the callee's plain.
        assert caller.wait("media", 30)["srtp"] is True
        assert callee.wait("media", 30)["srtp"] is False
        # The callee hangs up: its BYE reaches the caller through Kamailio, back
        # over the caller's TLS connection.
        caller.wait("state", 30, state="DISCONNECTED")
        # The sniffer may lag behind the wire: wait for what the checks below read.
        wait_until(lambda: min(len(rtp_from(capture, caller_ports)),
                               len(rtp_to(capture, caller_ports)),
                               len(rtp_to(capture, callee_ports))) >= 20,
                   "20 RTP packets each way on the caller's hop, 20 to the callee", 10)

    # Signalling: TLS on the phone's hop; the SDES keys in clear on the private hop.
    tls_bytes = b"".join(p.payload for p in capture.touching(tls_port, TCP))
    assert tls_bytes, "no TCP traffic seen on Kamailio's TLS port"
    assert b"SIP/2.0" not in tls_bytes
    assert b"a=crypto" not in tls_bytes
    relayed = [p.payload for p in capture.packets if p.destination_port == worker.port]
    offer = next(p for p in relayed if p.startswith(b"INVITE "))
    assert b"RTP/SAVP" in offer
    assert b"a=crypto:" in offer
    answer = next(p.payload for p in capture.packets if p.source_port == worker.port
                  and p.payload.startswith(b"SIP/2.0 200") and b"INVITE" in p.payload)
    assert b"RTP/SAVP" in answer
    assert b"a=crypto:" in answer

    # Media: the caller's hop is SRTP both ways: PCMU's payload type, but 160
    # bytes of 20 ms G.711 plus the tag, and bytes that look random.
    for direction in (rtp_from(capture, caller_ports), rtp_to(capture, caller_ports)):
        assert len(direction) >= 20, direction[:3]
        assert {pt for pt, _ in direction} == {PCMU}
        assert {len(payload) for _, payload in direction} == {160 + SRTP_TAG}
        assert entropy_bits(b"".join(payload for _, payload in direction)) > 7.5
    # The control: the worker's leg to the plain phone carries the caller's tone
    # as ordinary PCMU, which the same measure tells apart.
    plain = rtp_to(capture, callee_ports)
    assert len(plain) >= 20
    assert {len(payload) for _, payload in plain} == {160}
    assert entropy_bits(b"".join(payload for _, payload in plain)) < 7.0

    history = next(iter(call_store.wait_ended(1).values()))
    assert kinds(history)[:4] == ["Initiated", "Routed", "Ringing", "Answered"]
    assert kinds(history)[-1] == "Ended"
