"""The worker's in-memory call-centre directory, folded from the configuration events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.sip.routing.directory import CONFIG_TOPICS, Directory
from application.callcentre import CallCentreService
from domain.addressing import Target
from domain.agent import Agent
from domain.ivr import IvrMenu
from domain.queue import Queue

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def folded(service: CallCentreService) -> Directory:
    """A directory fed the configuration topics only, as a worker reads them."""
    directory = Directory()
    for notification in service.recorder.select_notifications(1, 10_000,
                                                              topics=list(CONFIG_TOPICS)):
        directory.apply(service.mapper.to_domain_event(notification))
    return directory


def centre() -> Any:
    return CallCentreService(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def test_numbers_resolve_to_their_destination_while_active() -> None:
    with centre() as service:
        queue = service.create_queue("sales", "Sales", "longest_idle", occurred_at=T0)
        number = service.create_number("5000", Target.queue(queue.id), occurred_at=T0)
        assert folded(service).destination("5000") == Target.queue(queue.id)
        service.configure_number(number.id, lambda n: n.deactivate(T0))
        assert folded(service).destination("5000") is None
        assert folded(service).destination("5999") is None


def test_queue_settings_follow_music_announcements_recording_and_offer_timeout() -> None:
    with centre() as service:
        queue = service.create_queue("sales", "Sales", "longest_idle", occurred_at=T0,
                                     offer_timeout_s=12.0)

        def change(q: Queue) -> None:
            q.set_music_on_hold("jazz", T0)
            q.set_position_announcements(True, T0)
            q.set_recording(True, T0)
        service.configure_queue(queue.id, change)
        settings = folded(service).queue(queue.id)
        assert settings is not None
        assert (settings.key, settings.music_on_hold, settings.announce_position,
                settings.record_calls, settings.offer_timeout_s) == (
            "sales", "jazz", True, True, 12.0)


def test_menus_are_the_domain_aggregates_so_keys_decide_as_the_domain_says() -> None:
    with centre() as service:
        queue = service.create_queue("sales", "Sales", "longest_idle", occurred_at=T0)
        service.create_ivr_menu("main", "Main", "welcome", occurred_at=T0,
                                options={"1": Target.queue(queue.id)})
        service.configure_ivr_menu(IvrMenu.id_for("main"),
                                   lambda m: m.set_option("2", Target.hangup(), T0))
        menu = folded(service).menu(IvrMenu.id_for("main"))
        assert menu is not None
        assert menu.decide("1", 1).action == Target.queue(queue.id)
        assert menu.decide("2", 1).action == Target.hangup()
        assert menu.decide("9", 1).outcome == "invalid"


def test_agents_devices_follow_login_and_logout() -> None:
    with centre() as service:
        agent = service.create_agent("alice", "Alice", occurred_at=T0)
        service.login(agent.id, "sip:alice@127.0.0.1:5062", T0)
        directory = folded(service)
        assert directory.agents[Agent.id_for("alice")].device_uri == "sip:alice@127.0.0.1:5062"
        assert directory.agent_key(agent.id) == "alice"
        service.logout(agent.id, T0)
        assert folded(service).agents[agent.id].device_uri is None


def test_targets_are_described_by_key_for_the_call_history() -> None:
    with centre() as service:
        queue = service.create_queue("sales", "Sales", "longest_idle", occurred_at=T0)
        directory = folded(service)
        assert directory.describe(Target.queue(queue.id)) == "queue:sales"
        assert directory.describe(Target.number("0123")) == "number:0123"
        assert directory.describe(Target.hangup()) == "hangup"


def test_a_registering_devices_offer_goes_through_the_edge_and_other_devices_directly() -> None:
    with centre() as service:
        for key, device in (("erin", "sip:erin@Acme.test"), ("bob", "sip:bob@127.0.0.1:5062"),
                            ("zoe", "sip:zoe@other.test")):
            agent = service.create_agent(key, key.title(), occurred_at=T0)
            service.login(agent.id, device, T0)
        directory = folded(service)
        assert directory.device_uri(Agent.id_for("erin")) == "sip:erin@Acme.test"  # no edge
        directory.edge_route = Directory("127.0.0.1:5060").edge_route
        directory.sip_domains = frozenset({"acme.test"})

        # pjsua2 sends to the Route in the dialled URI, the Request-URI unchanged.
        assert directory.device_uri(Agent.id_for("erin")) == (
            "sip:erin@Acme.test?Route=%3Csip:127.0.0.1:5060%3Blr%3E")
        assert directory.device_uri(Agent.id_for("bob")) == "sip:bob@127.0.0.1:5062"
        assert directory.device_uri(Agent.id_for("zoe")) == "sip:zoe@other.test"
        assert directory.device_uri(Agent.id_for("nobody")) is None
        service.logout(Agent.id_for("erin"), T0)
        assert folded(service).device_uri(Agent.id_for("erin")) is None


def test_the_edge_is_a_host_and_port_only() -> None:
    assert Directory("kamailio.internal").edge_route == "<sip:kamailio.internal;lr>"
    for bad in ("sip:10.0.0.1:5060", "10.0.0.1;transport=tcp", "a b", "<10.0.0.1>"):
        with pytest.raises(ValueError, match="host\\[:port\\]"):
            Directory(bad)
