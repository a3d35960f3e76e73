"""Properties of the Call aggregate under random command sequences: it never
reaches an inconsistent state, and its events rebuild exactly the same state,
directly and after a round trip through the JSON-transcoded (POPO) store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext, suppress
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any

from eventsourcing.application import Repository
from hypothesis import given, settings
from hypothesis import strategies as st

from application.calls import CallService
from domain.call import (
    Call,
    CallStatus,
    Direction,
    Disposition,
    HangupSide,
    TransferKind,
)
from domain.errors import DomainError

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
BEFORE_ANSWER = {CallStatus.INITIATED, CallStatus.ROUTED, CallStatus.RINGING}
CONNECTED = {CallStatus.ANSWERED, CallStatus.HELD}

Command = tuple[str, tuple[Any, ...], dict[str, Any]]

# Mostly forward in time, sometimes before the call started (refused).
moments = st.integers(min_value=-5, max_value=3600).map(lambda s: T0 + timedelta(seconds=s))
targets = st.sampled_from(["agent-1", "agent-2", "queue-sales", "+15550000"])



def positional(name: str, *args: st.SearchStrategy[Any]) -> st.SearchStrategy[Command]:
    return st.tuples(st.just(name), st.tuples(*args), st.just({}))


route = positional("route", targets, moments)
ring = positional("ring", moments)
answer = positional("answer", moments)
hold = positional("hold", moments)
resume = positional("resume", moments)
transfer = positional("transfer", st.sampled_from(TransferKind), targets, moments)
end: st.SearchStrategy[Command] = st.tuples(st.just("end"), st.just(()), st.fixed_dictionaries({
    "disposition": st.sampled_from(Disposition),
    "hangup_cause": st.sampled_from(["normal_clearing", "user_busy", "no_answer"]),
    "hangup_side": st.sampled_from(HangupSide),
    "sip_status": st.none() | st.integers(min_value=100, max_value=699),
    "occurred_at": moments,
}))
# one_of picks branches evenly: repeats weight the mid-call commands so that
# scripts often get past answer into hold/resume/transfer before ending.
commands: st.SearchStrategy[Command] = st.one_of(
    route, ring, answer, answer, hold, hold, hold, resume, resume, resume, transfer, end,
)
# Half the scripts start with a call set up and answered, so that the
# mid-call commands get a real chance to run before an end.
ANSWERED_PREFIX: list[Command] = [("route", ("agent-1", T0), {}), ("ring", (T0,), {}),
                                  ("answer", (T0 + timedelta(seconds=3),), {})]
scripts = st.tuples(st.sampled_from([[], ANSWERED_PREFIX]), st.lists(commands, max_size=40)).map(
    lambda parts: parts[0] + parts[1])


def new_call() -> Call:
    return Call.initiate(caller="+15551230001", callee="2001", direction=Direction.INBOUND,
                         trunk=None, sip_call_id="prop-call", occurred_at=T0)


def run(call: Call, command: Command) -> bool:
    """Apply one command; False when the domain refused it."""
    name, args, kwargs = command
    try:
        getattr(call, name)(*args, **kwargs)
    except DomainError:
        return False
    return True


def check_consistent(call: Call, emitted: Counter[str]) -> None:
    status = call.status
    ended_answered = status is CallStatus.ENDED and call.disposition is Disposition.ANSWERED
    assert (call.answered_at is not None) == (status in CONNECTED or ended_answered)
    assert (call.ended_at is not None) == (status is CallStatus.ENDED)
    ended_fields = (call.disposition, call.hangup_cause, call.hangup_side)
    if status is CallStatus.ENDED:
        assert None not in ended_fields
    else:
        assert ended_fields == (None, None, None)
    assert (call.hold_started_at is not None) == (status is CallStatus.HELD)
    assert call.hold_count == emitted["Held"]
    assert call.hold_total >= timedelta(0)
    assert len(call.transfers) == emitted["Transferred"]
    assert (status is not CallStatus.RINGING) or call.ringing_at is not None
    assert (status is not CallStatus.ROUTED) or call.target is not None
    assert call.version == 1 + sum(emitted.values())
    for moment in (call.ringing_at, call.answered_at, call.ended_at):
        assert moment is None or moment >= call.initiated_at


@settings(deadline=None, max_examples=300)
@given(scripts)
def test_random_commands_never_leave_a_call_inconsistent(script: list[Command]) -> None:
    call = new_call()
    events = list(call.collect_events())
    emitted: Counter[str] = Counter()
    for command in script:
        accepted = run(call, command)
        new = call.collect_events()
        assert len(new) <= 1
        assert accepted or not new  # a refused command emits nothing
        emitted.update(type(event).__name__ for event in new)
        events.extend(new)
        check_consistent(call, emitted)
    rebuilt = reduce(lambda agg, event: event.mutate(agg), events, None)
    assert rebuilt == call


@settings(deadline=None, max_examples=60)
@given(scripts, st.lists(st.booleans(), min_size=43, max_size=43))
def test_service_with_random_batches_stores_events_that_rebuild_the_same_call(
    script: list[Command], batched: list[bool]
) -> None:
    """The same script run on a bare aggregate and through the service (some
    commands grouped in batches) gives equal calls, also when reloaded from the
    stored, JSON-transcoded events by a service without a cache."""
    expected = new_call()
    for command in script:
        run(expected, command)
    expected.collect_events()

    service = CallService()
    call_id = service.initiate_call(caller="+15551230001", callee="2001",
                                    direction=Direction.INBOUND, trunk=None,
                                    sip_call_id="prop-call", occurred_at=T0)
    for command, in_batch in zip(script, batched, strict=False):
        apply = service_command(service, call_id, command)
        with service.batch() if in_batch else nullcontext(), suppress(DomainError):
            apply()

    # A repository without cache reads the stored events back through the mapper.
    reloaded: Call = Repository(service.events).get(call_id)
    assert_same_state(reloaded, expected)
    assert_same_state(service.get_call(call_id), expected)


def service_command(service: CallService, call_id: Any, command: Command) -> Callable[[], None]:
    name, args, kwargs = command
    method = getattr(service, f"{name}_call")
    return lambda: method(call_id, *args, **kwargs)


def assert_same_state(actual: Call, expected: Call) -> None:
    # The store stamps its own event timestamps, so compare the domain state.
    def state(call: Call) -> dict[str, Any]:
        return {k: v for k, v in vars(call).items() if k not in {"_created_on", "_modified_on"}}

    assert state(actual) == state(expected)
