"""Tenants in the domain: every aggregate carries the tenant it was created in,
keys are unique per tenant (ids derive from tenant and key, ``default``
keeping its ids), and events stored before tenants existed read back as
belonging to ``default``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

import pytest
from eventsourcing.application import Application

from domain.addressing import CONFIG_NAMESPACE, DEFAULT_TENANT, Target
from domain.agent import Agent
from domain.call import Call, Direction
from domain.errors import InvalidValue
from domain.ivr import IvrMenu
from domain.numbers import Dialplan, Number
from domain.queue import Queue

T0 = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)


def test_default_tenant_ids_are_the_ids_made_before_tenants() -> None:
    # The formula of the ids stored agents and queues already have.
    assert Agent.id_for("alice") == uuid5(CONFIG_NAMESPACE, "agent:alice")
    assert Agent.id_for("alice", DEFAULT_TENANT) == Agent.id_for("alice")
    assert Queue.id_for("sales", "default") == Queue.id_for("sales")


def test_the_same_key_in_two_tenants_names_two_aggregates() -> None:
    for id_for in (Agent.id_for, Queue.id_for, IvrMenu.id_for, Dialplan.id_for):
        assert id_for("sales", "acme") != id_for("sales", "globex")
        assert id_for("sales", "acme") != id_for("sales")


def test_a_tenant_id_cannot_collide_with_a_default_key() -> None:
    # "agent:acme:x" vs a default key "acme:x": keys cannot hold ":".
    with pytest.raises(InvalidValue):
        Agent.id_for("acme:x")


def test_a_tenant_must_be_a_slug() -> None:
    for bad in ("", "Acme", "a b", "acme:x", "x" * 65):
        with pytest.raises(InvalidValue):
            Agent.create("alice", "Alice", occurred_at=T0, tenant=bad)


def test_every_aggregate_carries_the_tenant_it_was_created_in() -> None:
    queue = Queue.create("sales", "Sales", occurred_at=T0, tenant="acme")
    made: list[Any] = [
        Agent.create("alice", "Alice", occurred_at=T0, tenant="acme"),
        queue,
        IvrMenu.create("main", "Main", "welcome", occurred_at=T0, tenant="acme"),
        Number.create("+15550001", Target.queue(queue.id), occurred_at=T0, tenant="acme"),
        Dialplan.create("out", "Out", occurred_at=T0, tenant="acme"),
        Call.initiate(caller="100", callee="+15550001", direction=Direction.INBOUND,
                      trunk=None, sip_call_id="c1@test", occurred_at=T0, tenant="acme"),
    ]
    assert [a.tenant for a in made] == ["acme"] * len(made)
    assert made[0].id == Agent.id_for("alice", "acme")


def test_an_aggregate_made_without_a_tenant_is_the_default_tenants() -> None:
    assert Agent.create("alice", "Alice", occurred_at=T0).tenant == DEFAULT_TENANT


def test_the_tenant_survives_storing_and_reading_back() -> None:
    app: Application[UUID] = Application()
    app.save(Agent.create("alice", "Alice", occurred_at=T0, tenant="acme"))
    stored: object = app.repository.get(Agent.id_for("alice", "acme"))
    assert isinstance(stored, Agent)
    assert stored.tenant == "acme"


def test_an_event_stored_before_tenants_reads_back_as_the_default_tenants() -> None:
    app: Application[UUID] = Application()
    agent = Agent.create("alice", "Alice", occurred_at=T0)
    app.save(agent)
    # Rewrite the stored created event without its tenant, as version 1 stored it.
    recorder = app.recorder
    [stored] = recorder.select_events(agent.id)
    state = app.mapper.transcoder.decode(stored.state)
    del state["tenant"]
    old = type(stored)(stored.originator_id, stored.originator_version, stored.topic,
                       app.mapper.transcoder.encode(state))
    fresh: Application[UUID] = Application()
    fresh.recorder.insert_events([old])
    loaded: object = fresh.repository.get(agent.id)
    assert isinstance(loaded, Agent)
    assert loaded.tenant == DEFAULT_TENANT
    [event] = fresh.events.get(agent.id)
    assert isinstance(event, Agent.Created)
    assert event.tenant == DEFAULT_TENANT
