"""The sender's SSRF guard at connect time, against a real receiver on 127.0.0.1.

A name (not a literal address) never reaches `check_url`'s literal check: the
sender's resolver must check what it resolves to, before any connection.
"""

from __future__ import annotations

import asyncio

import pytest

from api.routes.webhooks import new_secret
from application.webhooks.delivery import client
from application.webhooks.guard import TargetRefused, parse_allow
from tests.integration.webhook_support import FAST, receiving


async def _post(url: str, allow: str) -> int:
    http = client(FAST, parse_allow(allow))
    try:
        async with http.post(url, data=b"{}", allow_redirects=False) as response:
            return response.status
    finally:
        await http.close()


def test_a_name_that_resolves_to_loopback_is_refused_before_connecting() -> None:
    with receiving(new_secret()) as receiver:
        by_name = receiver.url.replace("127.0.0.1", "localhost")
        with pytest.raises(TargetRefused, match="loopback"):
            asyncio.run(_post(by_name, ""))
        assert receiver.paths == []  # no request reached it
        # The same name is used once the allow-list permits what it resolves to.
        assert asyncio.run(_post(by_name, "127.0.0.1/32,::1/128")) == 401  # unsigned
        assert receiver.paths == ["/hooks/dialtone"]
