"""A call-centre service scoped to a tenant sees only that tenant's aggregates
(another tenant's is NotFound, as a missing one), creates in that tenant, and
the SIP side's directory knows the tenant of each number (in-memory store)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from adapters.sip.routing.directory import CONFIG_TOPICS, Directory
from application.callcentre import (
    AlreadyExists,
    CallCentreService,
    NotFound,
    UnknownTarget,
    parse_target,
)
from application.calls import CallService
from domain.addressing import Target
from domain.agent import Agent
from domain.call import Direction
from domain.ivr import IvrMenu
from domain.numbers import Number
from domain.queue import Queue

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def service() -> Iterator[CallCentreService]:
    with CallCentreService(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}) as made:
        yield made


def test_a_scoped_service_creates_in_its_tenant(service: CallCentreService) -> None:
    acme = service.scoped("acme")
    agent = acme.create_agent("alice", "Alice", occurred_at=T0)
    assert agent.tenant == "acme"
    assert agent.id == Agent.id_for("alice", "acme")
    assert service.get(Agent, agent.id).tenant == "acme"  # the unscoped service sees it


def test_two_tenants_may_use_the_same_key(service: CallCentreService) -> None:
    a = service.scoped("acme").create_queue("sales", "Sales", "longest_idle", occurred_at=T0)
    b = service.scoped("globex").create_queue("sales", "Sales", "longest_idle", occurred_at=T0)
    assert a.id != b.id
    assert (a.tenant, b.tenant) == ("acme", "globex")


def test_another_tenants_aggregate_is_not_found(service: CallCentreService) -> None:
    acme, globex = service.scoped("acme"), service.scoped("globex")
    agent = acme.create_agent("alice", "Alice", occurred_at=T0)
    queue = acme.create_queue("sales", "Sales", "longest_idle", occurred_at=T0)
    with pytest.raises(NotFound):
        globex.get(Agent, agent.id)
    with pytest.raises(NotFound):
        globex.login(agent.id, "sip:alice@127.0.0.1", T0)
    with pytest.raises(NotFound):
        globex.configure_queue(queue.id, lambda q: q.set_wrap_up(5.0, T0))
    with pytest.raises(NotFound):
        globex.retire_agent(agent.id, T0)
    assert acme.login(agent.id, "sip:alice@127.0.0.1", T0).device_uri == "sip:alice@127.0.0.1"


def test_a_queue_cannot_take_another_tenants_agent(service: CallCentreService) -> None:
    agent = service.scoped("acme").create_agent("alice", "Alice", occurred_at=T0)
    globex = service.scoped("globex")
    queue = globex.create_queue("sales", "Sales", "longest_idle", occurred_at=T0)
    with pytest.raises(NotFound):
        globex.add_member(queue.id, agent.id, 0, T0)


def test_targets_name_only_the_tenants_own_queues(service: CallCentreService) -> None:
    service.scoped("acme").create_queue("sales", "Sales", "longest_idle", occurred_at=T0)
    globex = service.scoped("globex")
    theirs = parse_target("queue", "sales", "acme")
    with pytest.raises(UnknownTarget):
        globex.create_number("+15550002", theirs, occurred_at=T0)
    with pytest.raises(UnknownTarget):
        globex.create_ivr_menu("main", "Main", "hello", occurred_at=T0, options={"1": theirs})
    assert parse_target("queue", "sales", "globex").aggregate_id == Queue.id_for("sales",
                                                                                 "globex")


def test_retiring_an_agent_leaves_other_tenants_queues_alone(service: CallCentreService) -> None:
    acme = service.scoped("acme")
    service.scoped("globex").create_queue("other", "Other", "longest_idle", occurred_at=T0)
    agent = acme.create_agent("alice", "Alice", occurred_at=T0)
    queue = acme.create_queue("sales", "Sales", "longest_idle", occurred_at=T0)
    acme.add_member(queue.id, agent.id, 0, T0)
    acme.retire_agent(agent.id, T0)
    assert agent.id not in acme.get(Queue, queue.id).members


def test_a_did_belongs_to_one_tenant(service: CallCentreService) -> None:
    acme, globex = service.scoped("acme"), service.scoped("globex")
    menu = acme.create_ivr_menu("main", "Main", "hello", occurred_at=T0)
    acme.create_number("+15550001", Target.ivr(menu.id), occurred_at=T0)
    with pytest.raises(AlreadyExists):  # the same answer as for the tenant's own DID
        globex.create_number("+15550001", Target.number("1000"), occurred_at=T0)
    with pytest.raises(NotFound):
        globex.get(Number, Number.id_for("+15550001"))
    with pytest.raises(NotFound):
        globex.get(IvrMenu, menu.id)


def test_the_directory_knows_each_numbers_tenant(service: CallCentreService) -> None:
    acme = service.scoped("acme")
    queue = acme.create_queue("sales", "Sales", "longest_idle", occurred_at=T0)
    acme.create_number("+15550001", Target.queue(queue.id), occurred_at=T0)
    service.create_number("+15550009", Target.queue(queue.id), occurred_at=T0)
    directory = Directory()
    for n in service.recorder.select_notifications(1, 1000, topics=list(CONFIG_TOPICS)):
        directory.apply(service.mapper.to_domain_event(n))
    assert directory.tenant("+15550001") == "acme"
    assert directory.tenant("+15550009") == "default"
    assert directory.tenant("+15559999") == "default"  # unprovisioned


def test_a_call_carries_the_tenant_it_was_started_with() -> None:
    with CallService(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}) as calls:
        call_id = calls.initiate_call(caller="100", callee="+15550001",
                                      direction=Direction.INBOUND, trunk=None,
                                      sip_call_id="t1@test", occurred_at=T0, tenant="acme")
        assert calls.get_call(call_id).tenant == "acme"


def test_a_scoped_service_lists_only_its_tenants_ids(service: CallCentreService) -> None:
    acme, globex = service.scoped("acme"), service.scoped("globex")
    mine = acme.create_ivr_menu("main", "Main", "hello", occurred_at=T0)
    theirs = globex.create_ivr_menu("main", "Main", "hello", occurred_at=T0)
    assert acme.ids_of(IvrMenu) == [mine.id]
    assert globex.ids_of(IvrMenu) == [theirs.id]
    assert service.ids_of(IvrMenu) == [mine.id, theirs.id]

