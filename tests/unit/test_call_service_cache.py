"""CallService on in-memory persistence: the command paths, batches, and that
the aggregate cache (changed in place by commands) never keeps a change the
store does not have."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError

from application.calls import CallService
from domain.call import (
    Call,
    CallNotFound,
    CallStatus,
    Direction,
    SupervisionMode,
    TransferKind,
)
from domain.errors import IllegalTransition, InvalidValue

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def initiate(service: CallService, sip_call_id: str = "cache@pbx") -> UUID:
    return service.initiate_call(caller="1001", callee="2001", direction=Direction.INTERNAL,
                                 trunk=None, sip_call_id=sip_call_id, occurred_at=T0)


def ringing_call(service: CallService) -> UUID:
    call_id = initiate(service)
    service.route_call(call_id, "agent-1", at(1))
    service.ring_call(call_id, at(2))
    return call_id


def stored_versions(service: CallService, call_id: UUID) -> list[int]:
    return [event.originator_version for event in service.events.get(call_id)]


def test_service_is_configured_with_an_authoritative_in_place_cache() -> None:
    service = CallService()
    assert service.repository.cache is not None
    assert not service.repository.fastforward
    assert not service.repository.deepcopy_from_cache


def test_each_command_stores_its_event_at_once_outside_a_batch() -> None:
    service = CallService()
    call_id = ringing_call(service)
    service.answer_call(call_id, at(5))
    assert stored_versions(service, call_id) == [1, 2, 3, 4]


def test_initiate_returns_the_existing_call_without_a_new_event() -> None:
    service = CallService()
    first = initiate(service)
    assert initiate(service) == first == Call.id_for("cache@pbx")
    assert stored_versions(service, first) == [1]


def test_initiate_inside_a_batch_twice_stages_one_call() -> None:
    service = CallService()
    with service.batch() as batch:
        assert initiate(service) == initiate(service)
        assert batch.pending_event_count == 1
    assert stored_versions(service, Call.id_for("cache@pbx")) == [1]


def test_command_on_a_missing_call_fails_with_call_not_found() -> None:
    with pytest.raises(CallNotFound):
        CallService().ring_call(Call.id_for("nobody@pbx"), at(1))


def test_get_call_returns_a_copy() -> None:
    service = CallService()
    call_id = ringing_call(service)
    copy = service.get_call(call_id)
    copy.answer(at(5))
    assert service.get_call(call_id).status is CallStatus.RINGING


def test_refused_command_leaves_the_cached_call_unchanged() -> None:
    service = CallService()
    call_id = ringing_call(service)
    with pytest.raises(IllegalTransition):
        service.hold_call(call_id, at(5))
    with pytest.raises(InvalidValue):
        service.answer_call(call_id, datetime(2025, 3, 1, 9, 0, 5))  # naive
    service.answer_call(call_id, at(6))
    assert stored_versions(service, call_id) == [1, 2, 3, 4]


def test_abandoned_batch_leaves_no_change_in_the_cache() -> None:
    service = CallService()
    call_id = ringing_call(service)

    def abandoned_batch() -> None:
        with service.batch():
            service.answer_call(call_id, at(5))
            raise TimeoutError("adapter gave up")

    with pytest.raises(TimeoutError):
        abandoned_batch()
    assert service.get_call(call_id).status is CallStatus.RINGING
    service.answer_call(call_id, at(6))  # version 4 again, not 5
    assert stored_versions(service, call_id) == [1, 2, 3, 4]
    assert service.get_call(call_id).answered_at == at(6)


def test_failed_save_evicts_the_stale_call_so_the_next_command_reloads() -> None:
    service = CallService()
    call_id = ringing_call(service)
    # Another writer stores version 4 behind this service's cache.
    other = service.get_call(call_id)
    other.answer(at(5))
    service.events.put(other.collect_events())

    with pytest.raises(IntegrityError):
        service.answer_call(call_id, at(6))  # also version 4
    reloaded = service.get_call(call_id)
    assert (reloaded.version, reloaded.answered_at) == (4, at(5))
    service.hold_call(call_id, at(7))
    assert stored_versions(service, call_id) == [1, 2, 3, 4, 5]


def test_nested_batch_joins_the_outer_one() -> None:
    service = CallService()
    with service.batch() as outer:
        call_id = initiate(service)
        with service.batch() as inner:
            service.route_call(call_id, "agent-1", at(1))
        assert inner is outer
        assert stored_versions(service, call_id) == []
    assert stored_versions(service, call_id) == [1, 2]


def test_batch_of_repeats_only_saves_nothing() -> None:
    service = CallService()
    call_id = ringing_call(service)
    before = service.recorder.max_notification_id()
    with service.batch():
        service.ring_call(call_id, at(3))
        initiate(service)
    assert service.recorder.max_notification_id() == before


def test_call_state_snapshot_is_independent_of_later_commands() -> None:
    """The batch's cheap snapshot (copy the lists and dicts, share the rest) is
    only right while every attribute of a call is immutable or a list or dict
    of immutable items: exercise every kind of state and check."""
    service = CallService()
    call_id = ringing_call(service)
    service.queue_call(call_id, "sales", at(3))
    service.answer_call(call_id, at(5))
    service.connect_agent(call_id, "agent-7", at(5))
    service.start_supervision(call_id, "sup-1", SupervisionMode.MONITOR, at(6))
    service.record_media_quality(call_id, mos=4.1, jitter_ms=3.0, loss_pct=0.1, rtt_ms=20.0,
                                 occurred_at=at(6))
    service.transfer_call(call_id, TransferKind.BLIND, "queue-sales", at(6))
    service.hold_call(call_id, at(7))
    service.attach_recording(call_id, "rec/1.wav", 7.0, at(8))
    call = service.get_call(call_id)
    for name, value in vars(call).items():
        if isinstance(value, dict):
            items = [*value.keys(), *value.values()]
        elif isinstance(value, list):
            items = value
        else:
            items = [value]
        for item in items:
            assert is_immutable(item), f"{name} holds mutable {item!r}"


def test_abandoned_batch_restores_lists_and_dicts_too() -> None:
    service = CallService()
    call_id = ringing_call(service)
    service.answer_call(call_id, at(5))

    def abandoned_batch() -> None:
        with service.batch():
            service.connect_agent(call_id, "agent-7", at(6))
            service.start_supervision(call_id, "sup-1", SupervisionMode.BARGE, at(6))
            service.transfer_call(call_id, TransferKind.BLIND, "2002", at(7))
            raise TimeoutError("adapter gave up")

    with pytest.raises(TimeoutError):
        abandoned_batch()
    call = service.get_call(call_id)
    assert (call.agents, call.supervisors, call.transfers, call.version) == ([], {}, [], 4)


def is_immutable(value: object) -> bool:
    if isinstance(value, tuple):
        return all(is_immutable(item) for item in value)
    return isinstance(value, (str, int, float, bool, type(None), datetime, timedelta, UUID,
                              StrEnum, Call.Event))


def store_behind_the_cache(service: CallService, sip_call_id: str) -> UUID:
    """Another process (or this one before a restart) stored the call."""
    call = Call.initiate(caller="1001", callee="2001", direction=Direction.INTERNAL, trunk=None,
                         sip_call_id=sip_call_id, occurred_at=T0)
    service.events.put(call.collect_events())
    return call.id


def test_initiate_of_a_call_stored_behind_the_cache_is_still_idempotent() -> None:
    service = CallService()
    call_id = store_behind_the_cache(service, "restart@pbx")
    assert initiate(service, "restart@pbx") == call_id
    assert stored_versions(service, call_id) == [1]


def test_batch_that_initiates_a_call_stored_behind_the_cache_succeeds_when_retried() -> None:
    service = CallService()
    call_id = store_behind_the_cache(service, "restart@pbx")

    def invite_and_answer() -> None:
        with service.batch():
            initiate(service, "restart@pbx")
            initiate(service, "fresh@pbx")
            service.answer_call(call_id, at(5))

    with pytest.raises(IntegrityError):
        invite_and_answer()  # optimistic: taken for a new call, refused by the store
    invite_and_answer()  # the retry reads the store first
    assert stored_versions(service, call_id) == [1, 2]
    assert stored_versions(service, Call.id_for("fresh@pbx")) == [1]


def test_without_a_cache_initiate_reads_the_store_first() -> None:
    service = CallService(env={"AGGREGATE_CACHE_MAXSIZE": ""})
    call_id = store_behind_the_cache(service, "restart@pbx")
    with service.batch():
        assert initiate(service, "restart@pbx") == call_id
        service.answer_call(call_id, at(5))
    assert stored_versions(service, call_id) == [1, 2]
