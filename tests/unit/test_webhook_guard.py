"""The webhook SSRF guard and retry schedule, without any server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from application.webhooks.delivery import sign
from application.webhooks.guard import TargetRefused, check_url, parse_allow, resolve
from application.webhooks.outcomes import backoff_s


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/x", "http://127.1.2.3:9/x", "http://10.0.0.1/", "http://172.16.5.4/",
    "http://192.168.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/",
    "http://[fe80::1]/", "http://[fd00::1]/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/",
    "http://localhost:8080/", "http://api.localhost/", "http://224.0.0.1/",
    "gopher://example.com/", "file:///etc/passwd", "http:///nohost", "http://u:p@example.com/",
    "http://\u00b0]\ud992/", "http://[::1/",
])
def test_special_or_malformed_targets_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_url(url, ())


@pytest.mark.parametrize("url", [
    "http://127\u30020\u30020\u30021:8000/x",  # ideographic full stops
    "http://\u246b\u2466.0.0.1/x",  # circled numbers: NFKC makes them 12 and 7
    "http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/x",  # fullwidth digits
    "http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54:8000/x",  # fullwidth localhost
])
def test_a_host_that_normalises_to_an_address_is_judged_as_that_address(url: str) -> None:
    """aiohttp connects to yarl's normalised host, the literal 127.0.0.1, and never asks
    the resolver about a literal: the check must see what aiohttp will connect to."""
    with pytest.raises(TargetRefused):
        check_url(url, ())


def test_a_non_ascii_spelling_of_an_address_is_refused_even_when_allowed() -> None:
    with pytest.raises(TargetRefused, match="non-ASCII"):
        check_url("http://127\u30020\u30020\u30021:8000/x", parse_allow("127.0.0.1/32"))


@pytest.mark.parametrize("url", [
    "http://100.100.100.200/latest/meta-data/",  # carrier-grade NAT: Alibaba's metadata
    "http://100.64.0.1/", "http://192.0.0.170/", "http://198.18.0.1/",
    "http://[2002:7f00:1::]/",  # 6to4 carrying 127.0.0.1
    "http://[2001:db8::1]/", "http://127.0.0.1./", "http://localhost./",
])
def test_addresses_that_are_not_global_are_refused(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_url(url, ())


def test_the_allow_list_permits_a_carrier_grade_nat_address_it_names() -> None:
    check_url("http://100.100.100.200/x", parse_allow("100.64.0.0/10"))


def test_public_addresses_and_names_pass_the_literal_check() -> None:
    for url in ("https://hooks.example.com/x", "http://93.184.216.34/x",
                "https://[2606:4700::1111]/x"):
        check_url(url, ())


def test_the_allow_list_permits_only_the_networks_it_names() -> None:
    allow = parse_allow("127.0.0.1/32, 10.20.0.0/16")
    check_url("http://127.0.0.1:8000/x", allow)
    check_url("http://10.20.3.4/x", allow)
    with pytest.raises(TargetRefused):
        check_url("http://127.0.0.2/x", allow)
    with pytest.raises(TargetRefused):
        check_url("http://10.21.0.1/x", allow)


def test_resolve_checks_the_address_a_name_resolves_to_and_pins_it() -> None:
    with pytest.raises(TargetRefused):
        asyncio.run(resolve("http://localhost:8000/x", ()))
    target = asyncio.run(resolve("http://localhost:8000/x", parse_allow("127.0.0.1,::1")))
    assert target.url.host in ("127.0.0.1", "::1")
    assert (target.host_header, target.sni_hostname) == ("localhost:8000", "localhost")


def test_backoff_doubles_with_jitter_and_stays_capped() -> None:
    for attempt in range(1, 40):
        ceiling = min(60.0, 2.0 ** (attempt - 1))
        wait = backoff_s(attempt, 1.0, 60.0)
        assert ceiling / 2 <= wait <= ceiling


def test_signature_is_the_standard_webhooks_one() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the specification's example key
    at = datetime.fromtimestamp(1614265330, UTC)
    headers = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", b'{"test": 2432232314}', at)
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-timestamp"] == "1614265330"
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(b'{"test": 2432232314}', headers)
