"""The webhook dispatcher's pure pieces: the round's lease, the connect-time address
check, and what is queued of an event whose strings hold NUL."""

from __future__ import annotations

import socket

import pytest

from application.webhooks.delivery import RECORD_MARGIN_S, lease_s
from application.webhooks.guard import ConnectRefused, guarded_socket, parse_allow
from application.webhooks.settings import WebhookSettings
from streams.webhooks_decide import storable


@pytest.mark.parametrize(("batch", "concurrency", "timeout_s"),
                         [(500, 32, 10.0), (12, 1, 1.0), (1, 32, 10.0), (33, 32, 0.5)])
def test_a_rounds_lease_outlasts_every_attempt_it_claims(batch: int, concurrency: int,
                                                          timeout_s: float) -> None:
    """The last of `batch` deliveries, `concurrency` at a time, starts no later than
    ceil(batch/concurrency) - 1 attempts in and ends one attempt later; the lease
    leaves an attempt more, and the recording margin, on top."""
    settings = WebhookSettings(batch=batch, concurrency=concurrency, timeout_s=timeout_s)
    waves = -(-batch // concurrency)
    assert lease_s(settings) >= waves * timeout_s + timeout_s + RECORD_MARGIN_S


def test_the_socket_factory_refuses_a_special_address_unless_allowed() -> None:
    stream = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
    for address in ("127.0.0.1", "100.100.100.200", "10.1.2.3"):
        with pytest.raises(ConnectRefused, match="non-global"):
            guarded_socket(())((*stream, (address, 80)))
    allowed = guarded_socket(parse_allow("127.0.0.1/32"))((*stream, ("127.0.0.1", 80)))
    allowed.close()
    public = guarded_socket(())((*stream, ("93.184.216.34", 443)))
    public.close()


def test_nul_in_an_events_strings_and_keys_becomes_the_replacement_character() -> None:
    event = {"id": "e1", "data": {"caller": "1001\x00", "a\x00b": ["x\x00", 3, None],
                                  "nested": {"k": ("\x00",)}}}
    assert storable(event) == {"id": "e1", "data": {
        "caller": "1001\ufffd", "a\ufffdb": ["x\ufffd", 3, None], "nested": {"k": ["\ufffd"]}}}
