"""What a B2BUA worker must know of the call centre to route a call without
waiting on the database: numbers, IVR menus, queue settings, agents' devices.

A worker answers an INVITE on the pjsua2 thread, which must never wait for
PostgreSQL; so the configuration it routes by is held in memory, folded from
the call-centre notification log by the follower thread (``follower.py``):
the whole configuration history once at start-up (only the configuration
topics are read, so the call-flow bulk of the log is skipped), then every new
event within milliseconds of its commit (LISTEN/NOTIFY).

Only configuration events are folded, so queues are summarised in
``QueueSettings`` (a Queue aggregate's version sequence also counts its calls)
while IVR menus, whose events are all configuration, are kept as the domain's
``IvrMenu`` aggregates so that ``IvrMenu.decide`` is the one rule for key
presses. Readers on the pjsua2 thread see each entry replaced whole (copy on
write), never half-updated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote
from uuid import UUID

from eventsourcing.utils import get_topic

from application.routing_view import clone
from domain.addressing import DEFAULT_TENANT, Target, TargetKind
from domain.agent import Agent
from domain.device import registering_domain
from domain.ivr import IvrMenu
from domain.numbers import Number
from domain.queue import Queue


@dataclass(frozen=True)
class QueueSettings:
    """What the SIP side needs of a queue: its name and how its callers are treated."""

    id: UUID
    key: str
    name: str
    music_on_hold: str = "default"
    announce_position: bool = False
    record_calls: bool = False
    offer_timeout_s: float = 15.0
    tenant: str = DEFAULT_TENANT


@dataclass(frozen=True)
class NumberRoute:
    did: str
    destination: Target
    active: bool = True
    tenant: str = DEFAULT_TENANT


@dataclass(frozen=True)
class AgentDevice:
    key: str
    device_uri: str | None = None


# The events folded here; everything else in the log is skipped by topic.
_QUEUE_EVENTS: tuple[type[Any], ...] = (
    Queue.Created, Queue.MusicOnHoldChanged, Queue.PositionAnnouncementsChanged,
    Queue.RecordingPolicyChanged, Queue.OfferTimeoutChanged,
)
_NUMBER_EVENTS: tuple[type[Any], ...] = (
    Number.Created, Number.DestinationChanged, Number.Deactivated, Number.Activated,
)
_MENU_EVENTS: tuple[type[Any], ...] = (
    IvrMenu.Created, IvrMenu.PromptChanged, IvrMenu.OptionSet, IvrMenu.OptionRemoved,
    IvrMenu.TimeoutChanged, IvrMenu.RetriesChanged, IvrMenu.DefaultActionChanged,
)
_AGENT_EVENTS: tuple[type[Any], ...] = (Agent.Created, Agent.LoggedIn, Agent.LoggedOut)
CONFIG_TOPICS: tuple[str, ...] = tuple(
    get_topic(cls) for cls in (*_QUEUE_EVENTS, *_NUMBER_EVENTS, *_MENU_EVENTS, *_AGENT_EVENTS))


# The SIP edge's address as a worker names it: host or host:port (no scheme, no params).
_EDGE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(:[0-9]{1,5})?$")


def edge_route(edge: str) -> str:
    """The Route header value sending a request through the edge: ``<sip:EDGE;lr>``.
    ValueError for anything but ``host[:port]``."""
    if not _EDGE.match(edge):
        raise ValueError(f"the SIP edge is host[:port], got {edge!r}")
    return f"<sip:{edge};lr>"


class Directory:
    def __init__(self, edge: str | None = None) -> None:
        # Where offers to a registering device go (issue 14 §1): only Kamailio knows
        # the device's registered contact, so an AOR in a tenant's SIP domain is dialled
        # with a Route through the edge (pjsua2 takes headers in the dialled URI).
        self.edge_route = edge_route(edge) if edge else None
        self.sip_domains: frozenset[str] = frozenset()  # the tenants', lower case
        self.queues: dict[UUID, QueueSettings] = {}
        self.menus: dict[UUID, IvrMenu] = {}
        self.agents: dict[UUID, AgentDevice] = {}
        self._numbers: dict[UUID, NumberRoute] = {}  # by aggregate id (later events name it)
        self._by_did: dict[str, UUID] = {}

    # Reading (the pjsua2 thread).

    def destination(self, did: str) -> Target | None:
        """Where a call to ``did`` goes; None if the number is unknown or inactive."""
        number_id = self._by_did.get(did)
        route = self._numbers.get(number_id) if number_id is not None else None
        return route.destination if route is not None and route.active else None

    def owns(self, did: str) -> bool:
        """Whether ``did`` is a provisioned number (active or not)."""
        return did in self._by_did

    def tenant(self, did: str) -> str:
        """The tenant a call to ``did`` belongs to: its number's (also when the
        number is inactive); ``default`` for a number nobody provisioned."""
        number_id = self._by_did.get(did)
        route = self._numbers.get(number_id) if number_id is not None else None
        return route.tenant if route is not None else DEFAULT_TENANT

    def queue(self, queue_id: UUID) -> QueueSettings | None:
        return self.queues.get(queue_id)

    def menu(self, menu_id: UUID) -> IvrMenu | None:
        return self.menus.get(menu_id)

    def agent_key(self, agent_id: UUID) -> str:
        device = self.agents.get(agent_id)
        return device.key if device is not None else str(agent_id)

    def device_uri(self, agent_id: UUID) -> str | None:
        """The URI a worker dials to ring the agent: its device, through the edge
        when the device is an AOR in a tenant's SIP domain (it registers there)."""
        device = self.agents.get(agent_id)
        if device is None or device.device_uri is None:
            return None
        return self.dial_uri(device.device_uri)

    def dial_uri(self, device_uri: str) -> str:
        if self.edge_route is None or not registering_domain(device_uri, self.sip_domains):
            return device_uri  # any other device is dialled as it is
        separator = "&" if "?" in device_uri else "?"
        return f"{device_uri}{separator}Route={quote(self.edge_route, safe=':@.[]')}"

    def describe(self, target: Target) -> str:
        """A target as the Call's history names it: ``queue:sales``, ``ivr:main``, ..."""
        if target.kind is TargetKind.QUEUE:
            settings = self.queue(target.aggregate_id)
            return f"queue:{settings.key if settings else target.value}"
        if target.kind is TargetKind.IVR:
            menu = self.menu(target.aggregate_id)
            return f"ivr:{menu.key if menu else target.value}"
        return f"{target.kind}:{target.value}" if target.value else str(target.kind)

    # Folding (the follower thread).

    def apply(self, event: Any) -> None:
        if isinstance(event, Queue.Event):
            self._apply_queue(event)
        elif isinstance(event, Number.Event):
            self._apply_number(event)
        elif isinstance(event, IvrMenu.Event):
            self._apply_menu(event)
        elif isinstance(event, Agent.Event):
            self._apply_agent(event)

    def _apply_queue(self, event: Any) -> None:
        queue_id = event.originator_id
        if isinstance(event, Queue.Created):
            self.queues[queue_id] = QueueSettings(
                queue_id, event.key, event.name, event.music_on_hold,
                event.announce_position, False, event.offer_timeout_s, event.tenant)
            return
        current = self.queues.get(queue_id)
        if current is None:
            return
        if isinstance(event, Queue.MusicOnHoldChanged):
            current = replace(current, music_on_hold=event.music_on_hold)
        elif isinstance(event, Queue.PositionAnnouncementsChanged):
            current = replace(current, announce_position=event.announce_position)
        elif isinstance(event, Queue.RecordingPolicyChanged):
            current = replace(current, record_calls=event.record_calls)
        elif isinstance(event, Queue.OfferTimeoutChanged):
            current = replace(current, offer_timeout_s=event.offer_timeout_s)
        self.queues[queue_id] = current

    def _apply_number(self, event: Any) -> None:
        number_id = event.originator_id
        if isinstance(event, Number.Created):
            target = Target(TargetKind(event.target_kind), event.target_value)
            self._numbers[number_id] = NumberRoute(event.did, target, tenant=event.tenant)
            self._by_did[event.did] = number_id
            return
        current = self._numbers.get(number_id)
        if current is None:
            return
        if isinstance(event, Number.DestinationChanged):
            target = Target(TargetKind(event.target_kind), event.target_value)
            current = replace(current, destination=target)
        elif isinstance(event, Number.Deactivated | Number.Activated):
            current = replace(current, active=isinstance(event, Number.Activated))
        self._numbers[number_id] = current

    def _apply_menu(self, event: Any) -> None:
        menu_id = event.originator_id
        if isinstance(event, IvrMenu.Created):
            created = event.mutate(None)
            if isinstance(created, IvrMenu):
                self.menus[menu_id] = created
            return
        current = self.menus.get(menu_id)
        if current is None or event.originator_version != current.version + 1:
            return  # not the next one (we read the log from the start: cannot happen)
        updated = clone(current)
        event.mutate(updated)
        self.menus[menu_id] = updated

    def _apply_agent(self, event: Any) -> None:
        agent_id = event.originator_id
        if isinstance(event, Agent.Created):
            self.agents[agent_id] = AgentDevice(event.key)
        elif agent_id in self.agents:
            device = event.device_uri if isinstance(event, Agent.LoggedIn) else None
            self.agents[agent_id] = replace(self.agents[agent_id], device_uri=device)
