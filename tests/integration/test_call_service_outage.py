"""CallService when PostgreSQL goes away in the middle of a batch: the cached
calls go back to their pre-batch state, so a retry stores the same event
versions (the SIP storage thread's retries rely on this)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from eventsourcing.persistence import PersistenceError

from application.calls import CallService
from dialtone.database import ensure_database, eventsourcing_env
from dialtone.services.postgres import EmbeddedPostgres
from domain.call import Call, CallNotFound, CallStatus, Direction

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def dsn(own_postgres: EmbeddedPostgres) -> str:
    dsn = own_postgres.dsn("outage")
    ensure_database(dsn)
    return dsn


def new_service(dsn: str) -> CallService:
    # Pre-ping: connections pooled before the restart are dead, replace them at once.
    return CallService(env=eventsourcing_env(dsn, POSTGRES_CONNECT_TIMEOUT="1",
                                             POSTGRES_PRE_PING="y"))


def initiate(service: CallService, sip_call_id: str) -> UUID:
    return service.initiate_call(caller="1001", callee="2001", direction=Direction.INTERNAL,
                                 trunk=None, sip_call_id=sip_call_id, occurred_at=T0)


def answer_and_open_second_call(service: CallService, call_id: UUID,
                                before_commit: EmbeddedPostgres | None = None) -> None:
    with service.batch():
        service.answer_call(call_id, at(5))
        initiate(service, "second@pbx")
        if before_commit is not None:
            before_commit.stop()


def versions(service: CallService, call_id: UUID) -> list[int]:
    return [event.originator_version for event in service.events.get(call_id)]


def test_batch_that_cannot_commit_is_undone_and_its_retry_stores_the_same_versions(
    own_postgres: EmbeddedPostgres, dsn: str
) -> None:
    with new_service(dsn) as service:
        call_id = initiate(service, "first@pbx")
        service.ring_call(call_id, at(1))

        with pytest.raises(PersistenceError):
            answer_and_open_second_call(service, call_id, before_commit=own_postgres)
        cached = service.get_call(call_id)  # from the cache: the server is down
        assert (cached.status, cached.version, cached.answered_at) == (
            CallStatus.RINGING, 2, None)

        own_postgres.start()
        with pytest.raises(CallNotFound):
            service.get_call(Call.id_for("second@pbx"))
        answer_and_open_second_call(service, call_id)
        assert versions(service, call_id) == [1, 2, 3]
        assert versions(service, Call.id_for("second@pbx")) == [1]
