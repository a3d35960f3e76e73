"""A real ``dialtone b2bua`` worker's JSON log: the lines about a call carry its ids.

One sipp call through the worker; its log (JSON lines, docs/observability.md)
is then read back: every line that names the call (dialtone's own ``call <id>``
lines) and the lines logged while the worker handled the call's SIP dialogs
carry ``call_id``, ``tenant`` and ``sip_call_id``, as the other processes'
lines carry theirs; and no line holds the database password the worker ran with.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from psycopg.conninfo import make_conninfo

from dialtone.logs import SECRET_NAME
from domain.addressing import DEFAULT_TENANT
from domain.call import Call
from tests.fixtures.sip import CallStore, Sipp, StartWorker, free_udp_port, route_to

pytestmark = pytest.mark.sip

PASSWORD = "h15-not-in-any-log"  # a marker to look for, not a credential


def with_password(dsn: str) -> str:
    """The same DSN with a password (the embedded server trusts loopback, so it is
    accepted and ignored): the worker holds a secret it must never log."""
    return make_conninfo(dsn, password=PASSWORD)


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON lines; pjlib prints a few plain lines while it initialises, before
    the worker can hand it its log writer (docs/observability.md, Logs)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_call_lines_carry_the_call_ids_and_no_secret(
    b2bua: StartWorker, sipp: Sipp, call_store: CallStore, database_url: str
) -> None:
    uas_port = free_udp_port()
    # pjsip's level 3 (INFO): its lines about the dialogs, logged while the
    # worker acts on them, are lines about the call too.
    worker = b2bua(route_to(uas_port),
                   args=["--pj-log-level", "3"], dsn=with_password(database_url))

    sipp.assert_a_call_works(worker.port, uas_port)

    histories = call_store.wait_ended(1)
    assert len(histories) == 1, histories
    initiated = next(iter(histories.values()))[0]
    assert isinstance(initiated, Call.Initiated)
    call_id, sip_call_id = str(initiated.originator_id), initiated.sip_call_id
    worker.stop()
    text = worker.log_text()
    lines = json_lines(text)

    naming = [line for line in lines if f"call {call_id}" in line["message"]]
    assert any("audio bridged" in line["message"] for line in naming), text
    for line in naming:
        assert line.get("call_id") == call_id, line
    carrying = [line for line in lines if line.get("call_id") == call_id]
    # More than its own "call <id>" lines: pjsip's and the legs' lines while the
    # worker handled the call's dialogs too.
    assert len(carrying) > len(naming), [line["message"] for line in lines]
    for line in carrying:
        assert line["process"] == "b2bua", line
        assert (line.get("tenant"), line.get("sip_call_id")) == (DEFAULT_TENANT, sip_call_id)
    assert {line.get("call_id") for line in lines} <= {call_id, None}

    assert PASSWORD not in text
    assert not [name for line in lines for name in line if SECRET_NAME.search(name)]
