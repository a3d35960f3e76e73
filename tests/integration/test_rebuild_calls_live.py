"""`dialtone rebuild` of the calls tables (call_events, cdr, call_live) while the live
runner keeps applying: what the runner applies between the rebuild's read of history
and its write transaction is not lost.

Before the fix the rebuild's TRUNCATE wiped the runner's rows for those events and
its COPY wrote the history as read before them, while the positions stayed at the
runner's (further on): the runner never applied them again. An ended call stayed
"answered" in the CDRs and live for ever.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from application.calls import CallService
from dialtone.database import eventsourcing_env
from domain.call import Direction, Disposition, HangupSide
from projections import calls
from streams import rebuild
from streams.history import store_read
from streams.inprocess import InProcessProjectionRunner
from streams.shards import Page, Read, Share

pytestmark = pytest.mark.migrated_database  # tests/conftest.py: a pre-migrated copy

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _answered(service: CallService) -> UUID:
    call_id = service.initiate_call(caller="+3225550100", callee="+3225550199", trunk=None,
                                    direction=Direction.INBOUND, sip_call_id="live@rebuild",
                                    occurred_at=T0)
    service.answer_call(call_id, T0 + timedelta(seconds=5))
    return call_id


def test_a_call_ended_and_applied_during_the_rebuild_is_not_lost(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with CallService(env=eventsourcing_env(database_url)) as service:
        call_id = _answered(service)
        runner = InProcessProjectionRunner(service, database_url, [calls.GROUP])
        runner.catch_up()
        history = store_read
        ended: list[int] = []

        def read_then_end_live(app: Any, *args: Any, **kwargs: Any) -> Read:
            read = history(app, *args, **kwargs)

            def pages(share: Share) -> Iterator[Page]:
                yield from read(share)
                if not ended:  # history read: the call ends, the live runner applies it
                    service.end_call(call_id, disposition=Disposition.ANSWERED,
                                     hangup_cause="normal_clearing",
                                     hangup_side=HangupSide.CALLER, sip_status=200,
                                     occurred_at=T0 + timedelta(seconds=65))
                    ended.append(runner.catch_up())
            return pages

        monkeypatch.setattr(rebuild, "store_read", read_then_end_live)
        rebuild.rebuild(service, database_url, rebuild.REBUILDABLE)
        runner.catch_up()

    assert ended == [1]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT status, ended_at IS NOT NULL FROM cdr WHERE call_id = %s",
                            (call_id,)).fetchone() == ("ended", True)
        assert conn.execute("SELECT count(*) FROM call_live").fetchone() == (0,)
        assert conn.execute("SELECT array_agg(version ORDER BY version) FROM call_events"
                            " WHERE call_id = %s", (call_id,)).fetchone() == ([1, 2, 3],)
