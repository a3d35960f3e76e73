"""Call.record_media_quality: the media statistics a B2BUA reports for a call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.calls import CallService
from domain.call import Call, Direction, MediaQuality
from domain.errors import IllegalTransition, InvalidValue

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def answered_call() -> Call:
    call = Call.initiate(caller="100", callee="200", direction=Direction.INBOUND, trunk=None,
                         sip_call_id="mq@test", occurred_at=T0)
    call.answer(at(1))
    return call


def test_quality_of_a_connected_call_is_recorded() -> None:
    call = answered_call()

    call.record_media_quality(mos=4.2, jitter_ms=3.5, loss_pct=0.5, rtt_ms=40.0,
                              occurred_at=at(30))

    assert call.media_quality == MediaQuality(4.2, 3.5, 0.5, 40.0)
    assert isinstance(call.collect_events()[-1], Call.MediaQualityRecorded)


def test_the_same_report_twice_is_a_no_op_and_a_new_one_replaces_it() -> None:
    call = answered_call()
    call.record_media_quality(mos=4.2, jitter_ms=3.5, loss_pct=0.5, rtt_ms=None,
                              occurred_at=at(30))
    version = call.version

    call.record_media_quality(mos=4.2, jitter_ms=3.5, loss_pct=0.5, rtt_ms=None,
                              occurred_at=at(31))
    assert call.version == version
    call.record_media_quality(mos=3.1, jitter_ms=30, loss_pct=4, rtt_ms=None,
                              occurred_at=at(32))
    assert call.media_quality == MediaQuality(3.1, 30.0, 4.0, None)


def test_quality_needs_a_connected_call() -> None:
    call = Call.initiate(caller="100", callee="200", direction=Direction.INBOUND, trunk=None,
                         sip_call_id="mq@test", occurred_at=T0)

    with pytest.raises(IllegalTransition):
        call.record_media_quality(mos=4.2, jitter_ms=0, loss_pct=0, rtt_ms=None,
                                  occurred_at=at(1))


@pytest.mark.parametrize(
    ("mos", "jitter", "loss", "rtt"),
    [(0.5, 0, 0, None), (5.1, 0, 0, None), (4, -1, 0, None), (4, 0, 101, None),
     (4, 0, 0, -2), (float("nan"), 0, 0, None), (True, 0, 0, None)],
)
def test_out_of_range_statistics_are_refused(mos: float, jitter: float, loss: float,
                                              rtt: float | None) -> None:
    call = answered_call()

    with pytest.raises(InvalidValue):
        call.record_media_quality(mos=mos, jitter_ms=jitter, loss_pct=loss, rtt_ms=rtt,
                                  occurred_at=at(2))


def test_the_service_records_quality_and_replay_rebuilds_it() -> None:
    service = CallService()
    call_id = service.initiate_call(caller="100", callee="200", direction=Direction.INBOUND,
                                    trunk=None, sip_call_id="mq@svc", occurred_at=T0)
    service.answer_call(call_id, at(1))

    service.record_media_quality(call_id, mos=3.9, jitter_ms=12.0, loss_pct=1.5, rtt_ms=80.0,
                                 occurred_at=at(20))

    replayed: Call | None = None
    for event in service.repository.event_store.get(call_id):
        assert isinstance(event, Call.Event)
        replayed = event.mutate(replayed)
    assert replayed is not None
    assert replayed.media_quality == MediaQuality(3.9, 12.0, 1.5, 80.0)
