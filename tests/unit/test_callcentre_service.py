"""CallCentreService on in-memory persistence: commands and their errors, the
unit of work (several aggregates, all or nothing), configuration helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.callcentre import (
    AlreadyExists,
    CallCentreService,
    NotFound,
    parse_target,
    replace_skills,
)
from domain.addressing import Target, TargetKind
from domain.agent import Agent, AgentState
from domain.errors import IllegalTransition, InvalidValue
from domain.ivr import IvrMenu
from domain.numbers import Dialplan, DialRule, MatchKind, Number
from domain.queue import Queue

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def service() -> CallCentreService:
    return CallCentreService()


def staffed(service: CallCentreService, *keys: str) -> tuple[UUID, list[UUID]]:
    """A queue with logged-in member agents."""
    queue = service.create_queue("sales", "Sales", "ring_all", occurred_at=T0).id
    agents = []
    for key in keys:
        agent = service.create_agent(key, key.title(), occurred_at=T0).id
        service.add_member(queue, agent, 0, T0)
        service.login(agent, f"sip:{key}@pbx", T0)
        agents.append(agent)
    return queue, agents


def test_unknown_ids_are_not_found_naming_the_kind(service) -> None:
    with pytest.raises(NotFound, match="agent"):
        service.login(Agent.id_for("nobody"), "sip:1@pbx", T0)
    with pytest.raises(NotFound, match="queue"):
        service.enqueue_call(Queue.id_for("nowhere"), uuid4(), 0, T0)
    with pytest.raises(NotFound, match="IVR menu main"):
        service.get(IvrMenu, IvrMenu.id_for("main"), "main")


def test_an_aggregate_of_another_kind_is_not_found(service) -> None:
    agent = service.create_agent("alice", "Alice", occurred_at=T0)
    with pytest.raises(NotFound, match="queue"):
        service.get(Queue, agent.id)


def test_a_taken_key_already_exists(service) -> None:
    service.create_agent("alice", "Alice", occurred_at=T0)
    with pytest.raises(AlreadyExists, match="agent alice"):
        service.create_agent("alice", "Alice again", occurred_at=T0)
    service.create_number("100", Target.number("200"), occurred_at=T0)
    with pytest.raises(AlreadyExists):
        service.create_number("100", Target.number("300"), occurred_at=T0)


def test_commands_return_copies_that_change_nothing(service) -> None:
    agent = service.create_agent("alice", "Alice", {"english": 50}, occurred_at=T0)
    agent.skills["english"] = 1
    assert service.get(Agent, agent.id).skills == {"english": 50}


def test_an_offer_that_fails_half_way_saves_nothing(service) -> None:
    queue, (alice, bob) = staffed(service, "alice", "bob")
    service.pause(bob, "lunch", at(1))
    call = uuid4()
    service.enqueue_call(queue, call, 0, at(2))
    with pytest.raises(IllegalTransition, match="paused"):
        service.offer_call(queue, call, [alice, bob], at(3))  # alice reserved, then bob refused
    assert service.get(Agent, alice).state is AgentState.AVAILABLE
    assert not service.get(Queue, queue).call(call).ringing


def test_offer_call_with_current_copies_records_the_same_events(service) -> None:
    queue, (alice,) = staffed(service, "alice")
    call = uuid4()
    service.enqueue_call(queue, call, 0, at(1))
    current = [service.get(Queue, queue), service.get(Agent, alice)]
    events = service.offer_call(queue, call, [alice], at(2), current=current)
    assert [type(e).__name__ for e in events] == ["CallOffered", "Reserved"]
    assert service.get(Agent, alice).current_call_id == call


def test_a_stale_current_copy_is_refused_by_the_store_and_decided_again(service) -> None:
    queue, (alice,) = staffed(service, "alice")
    first, second = uuid4(), uuid4()
    service.enqueue_call(queue, first, 0, at(1))
    stale = [service.get(Queue, queue), service.get(Agent, alice)]
    service.enqueue_call(queue, second, 0, at(2))  # the queue moved on
    service.offer_call(queue, first, [alice], at(3), current=stale)
    assert service.conflicts == 1
    assert service.get(Agent, alice).current_call_id == first


def test_a_refusal_on_stale_copies_is_decided_again_on_the_store(service) -> None:
    queue, (alice,) = staffed(service, "alice")
    stale = [service.get(Queue, queue), service.get(Agent, alice)]
    call = uuid4()
    service.enqueue_call(queue, call, 0, at(1))  # the copy has never seen this call
    service.offer_call(queue, call, [alice], at(2), current=stale)
    assert service.get(Agent, alice).current_call_id == call
    service.enqueue_call(queue, (other := uuid4()), 0, at(3))
    fresh = [service.get(Queue, queue), service.get(Agent, alice)]
    with pytest.raises(IllegalTransition, match="reserved"):  # the store's own refusal
        service.offer_call(queue, other, [alice], at(4), current=fresh)


def test_a_ringing_call_gets_no_second_offer(service) -> None:
    queue, (alice, bob) = staffed(service, "alice", "bob")
    service.enqueue_call(queue, (call := uuid4()), 0, at(1))
    service.offer_call(queue, call, [alice], at(2))
    with pytest.raises(IllegalTransition, match="already ringing"):
        service.offer_call(queue, call, [bob], at(3))
    assert service.get(Agent, bob).state is AgentState.AVAILABLE


def test_offer_calls_commits_several_offers_together_or_none(service) -> None:
    queue, (alice, bob) = staffed(service, "alice", "bob")
    first, second = uuid4(), uuid4()
    service.enqueue_call(queue, first, 0, at(1))
    service.enqueue_call(queue, second, 0, at(1))
    with pytest.raises(IllegalTransition):
        service.offer_calls([(queue, first, [alice]), (queue, second, [alice])], at(2))
    assert service.get(Agent, alice).state is AgentState.AVAILABLE
    events = service.offer_calls([(queue, first, [alice]), (queue, second, [bob])], at(3))
    assert len(events) == 4
    assert {service.get(Agent, a).current_call_id for a in (alice, bob)} == {first, second}


def test_a_miss_while_others_still_ring_is_recorded_on_the_queue(service) -> None:
    queue, (alice, bob) = staffed(service, "alice", "bob")
    service.enqueue_call(queue, (call := uuid4()), 0, at(1))
    service.offer_call(queue, call, [alice, bob], at(2))
    events = service.miss_offer(alice, call, at(5))
    assert [type(e).__name__ for e in events] == ["OfferMissed", "CallOfferMissed"]
    assert service.get(Queue, queue).call(call).offered_to == (bob,)
    events = service.miss_offer(bob, call, at(6))
    assert [type(e).__name__ for e in events] == ["OfferMissed", "CallRequeued"]
    assert service.get(Queue, queue).waiting_calls()[0].call_id == call


def test_two_misses_racing_on_a_ring_all_call_requeue_it(service, monkeypatch) -> None:
    """Bob's 486 and the router timing Alice out, each decided before the other
    was saved: the second save conflicts on the queue, bob's miss is decided
    again on what alice's wrote, and, being the last, requeues the call."""
    queue, (alice, bob) = staffed(service, "alice", "bob")
    service.enqueue_call(queue, (call := uuid4()), 0, at(1))
    service.offer_call(queue, call, [alice, bob], at(2))
    save = service.save
    other_writer = [lambda: service.miss_offer(alice, call, at(20))]

    def save_after_the_other_writer(*aggregates: Any, **kwargs: Any) -> Any:
        while other_writer:
            other_writer.pop()()  # saved between bob's decision and bob's save
        return save(*aggregates, **kwargs)

    monkeypatch.setattr(service, "save", save_after_the_other_writer)
    service.miss_offer(bob, call, at(20))
    assert service.conflicts == 1
    assert service.get(Queue, queue).call(call).offered_to == ()  # waiting: offered again
    assert {service.get(Agent, a).state for a in (alice, bob)} == {AgentState.AVAILABLE}


def test_set_agent_skills_makes_them_exactly_the_given_set(service) -> None:
    agent = service.create_agent("alice", "Alice", {"english": 50, "german": 20},
                                 occurred_at=T0)
    changed = service.set_agent_skills(agent.id, {"english": 60, "french": 30}, at(1))
    assert changed.skills == {"english": 60, "french": 30}
    names = [type(e).__name__ for e in service.events.get(agent.id)]
    assert names == ["Created", "SkillRemoved", "SkillSet", "SkillSet"]


def test_replace_skills_on_equal_sets_records_nothing() -> None:
    agent = Agent.create("alice", "Alice", {"english": 50}, occurred_at=T0)
    agent.collect_events()
    replace_skills(agent, {"english": 50}, at(1))
    assert agent.collect_events() == []


def test_retiring_an_agent_logs_it_out_and_leaves_every_queue(service) -> None:
    queue, (alice,) = staffed(service, "alice")
    other = service.create_queue("support", "Support", "longest_idle", occurred_at=T0).id
    service.add_member(other, alice, 3, T0)
    retired = service.retire_agent(alice, at(5))
    assert retired.state is AgentState.LOGGED_OUT
    assert alice not in service.get(Queue, queue).members
    assert alice not in service.get(Queue, other).members


def test_retiring_an_agent_on_a_call_is_refused_and_changes_nothing(service) -> None:
    queue, (alice,) = staffed(service, "alice")
    call = uuid4()
    service.enqueue_call(queue, call, 0, at(1))
    service.offer_call(queue, call, [alice], at(2))
    with pytest.raises(IllegalTransition, match="reserved"):
        service.retire_agent(alice, at(3))
    assert alice in service.get(Queue, queue).members


def test_targets_must_exist(service) -> None:
    queue = service.create_queue("sales", "Sales", "longest_idle", occurred_at=T0).id
    with pytest.raises(NotFound, match="queue"):
        service.set_overflow(queue, 60, Target.queue(Queue.id_for("nowhere")), T0)
    with pytest.raises(NotFound, match="IVR menu"):
        service.create_number("100", Target.ivr(IvrMenu.id_for("main")), occurred_at=T0)
    with pytest.raises(NotFound):
        service.create_ivr_menu("main", "Main", "hi", occurred_at=T0,
                                options={"1": Target.queue(Queue.id_for("nowhere"))})
    assert service.ids_of(IvrMenu) == []  # nothing half-created


def test_create_queue_configures_it_in_one_go(service) -> None:
    backup = service.create_queue("backup", "Backup", "longest_idle", occurred_at=T0)
    queue = service.create_queue("sales", "Sales", "skills_based", occurred_at=T0,
                                 required_skills={"english": 40},
                                 overflow=(120, Target.queue(backup.id)), wrap_up_s=10)
    assert (queue.required_skills, queue.max_wait_s, queue.wrap_up_s) == (
        {"english": 40}, 120, 10)
    assert queue.version == 3  # created, skill required, overflow set


def test_ids_of_lists_aggregates_of_one_kind_in_creation_order(service) -> None:
    second = service.create_dialplan("b", "B", occurred_at=T0)
    first = service.create_dialplan("a", "A", [DialRule("all", MatchKind.PREFIX, "",
                                                          "sip:{number}@trunk")],
                                    occurred_at=T0)
    service.create_agent("alice", "Alice", occurred_at=T0)
    assert service.ids_of(Dialplan) == [second.id, first.id]
    assert service.get(Dialplan, first.id).resolve("123") == "sip:123@trunk"


def test_configure_number_applies_its_changes_together(service) -> None:
    number = service.create_number("100", Target.number("200"), occurred_at=T0)

    def change(n: Number) -> None:
        n.relabel("Main line", at(1))
        n.deactivate(at(1))

    changed = service.configure_number(number.id, change)
    assert (changed.label, changed.active, changed.version) == ("Main line", False, 3)


def test_parse_target_accepts_a_key_or_an_id_for_queues_and_menus() -> None:
    by_key = parse_target("queue", "sales")
    assert by_key == Target.queue(Queue.id_for("sales"))
    assert parse_target("queue", str(Queue.id_for("sales"))) == by_key
    assert parse_target("ivr", "main").kind is TargetKind.IVR
    assert parse_target("number", "+3225550100").value == "+3225550100"
    with pytest.raises(InvalidValue):
        parse_target("queue", "Not A Key")
    with pytest.raises(InvalidValue):
        parse_target("teleport", "x")
