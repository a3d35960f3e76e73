"""The Queue aggregate: a call queue's configuration and the calls waiting in it.

One aggregate, one event stream per queue, in three modules:
- domain/queue_config.py: the settings (strategy, thresholds, overflow,
  members, required skills...), their events and commands; written through
  the API.
- domain/queue_flow.py: the live call flow (enqueue, offer, miss, answer,
  requeue, abandon, overflow, transfer out), its events, commands and
  queries; written by the B2BUA workers and the routing process. It reads
  the settings.
- here: the aggregate itself, its ``Created`` event and the list of its events.

Why not two aggregates (settings apart from the flow): the conflicts between a
queue's writers (adapters/sip/store/centre_link.py retries them) are flow against
flow: callers arriving together, the router's offers and the workers'
answers all append to the call list. Splitting the settings off would remove
only the rare settings-against-flow conflict, would make the flow read a
second stream for every step (service level, members, overflow target), and
would change the stored and published event types. Figures: docs/callcentre.md
("Queue: one aggregate in three modules").
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

import domain.queue_config as config
import domain.queue_flow as flow
from domain.addressing import DEFAULT_TENANT, check_tenant, config_id
from domain.queue_config import (
    DEFAULT_SHORT_ABANDON_S,
    MAX_MEMBERS,
    MAX_PENALTY,
    MAX_WAIT_S,
    OVERFLOW_KINDS,
    NotAMember,
    checked_flag,
    checked_offer_timeout,
    checked_service_level,
    checked_wrap_up,
)
from domain.queue_flow import (
    MAX_PRIORITY,
    TRANSFER_KINDS,
    CallAlreadyQueued,
    CallNotQueued,
    QueueCallFlow,
)
from domain.queue_values import QueuedCall, QueueMember, QueueTally
from domain.routing import RoutingStrategy
from domain.timed import TimedAggregate
from domain.values import enum_member, non_empty, utc_instant

__all__ = [
    "DEFAULT_SHORT_ABANDON_S",
    "MAX_MEMBERS",
    "MAX_PENALTY",
    "MAX_PRIORITY",
    "MAX_WAIT_S",
    "OVERFLOW_KINDS",
    "TRANSFER_KINDS",
    "CallAlreadyQueued",
    "CallNotQueued",
    "NotAMember",
    "Queue",
    "QueueMember",
    "QueueTally",
    "QueuedCall",
    "RoutingStrategy",
]


class Queue(QueueCallFlow, TimedAggregate):
    # Every event this aggregate stores, in the order of the published contract
    # (streams/schemas.py lists them as they appear here). Each is declared here
    # on its template (fields and apply) from the half that owns it, so stored
    # topics stay ``domain.queue:Queue.<Name>`` and published types
    # ``dialtone.queue.<name>.v1``; ``_trigger`` maps a template to its declaration.

    class Created(TimedAggregate.Event, Aggregate.Created):
        class_version = 1
        key: str
        name: str
        strategy: str
        service_level_s: float
        wrap_up_s: float
        offer_timeout_s: float
        music_on_hold: str
        announce_position: bool
        # Added after version 1 was stored: events without it belonged to "default"
        # (read back, they lack the attribute and fall back to this default).
        tenant: str = DEFAULT_TENANT

    # -- configuration events (domain/queue_config.py) ---------------------------------
    class StrategyChanged(config.StrategyChanged): ...
    class ServiceLevelChanged(config.ServiceLevelChanged): ...
    class OverflowSet(config.OverflowSet): ...
    class OverflowCleared(config.OverflowCleared): ...
    class WrapUpChanged(config.WrapUpChanged): ...
    class OfferTimeoutChanged(config.OfferTimeoutChanged): ...
    class MusicOnHoldChanged(config.MusicOnHoldChanged): ...
    class PositionAnnouncementsChanged(config.PositionAnnouncementsChanged): ...
    class ShortAbandonChanged(config.ShortAbandonChanged): ...
    class RecordingPolicyChanged(config.RecordingPolicyChanged): ...
    class MemberAdded(config.MemberAdded): ...
    class MemberChanged(config.MemberChanged): ...
    class MemberRemoved(config.MemberRemoved): ...
    class SkillRequired(config.SkillRequired): ...
    class SkillRequirementDropped(config.SkillRequirementDropped): ...

    # -- call flow events (domain/queue_flow.py) ---------------------------------------
    class CallEnqueued(flow.CallEnqueued): ...
    class CallOffered(flow.CallOffered): ...
    class CallOfferMissed(flow.CallOfferMissed): ...
    class CallRequeued(flow.CallRequeued): ...
    class CallAnswered(flow.CallAnswered): ...
    class CallAbandoned(flow.CallAbandoned): ...
    class CallOverflowed(flow.CallOverflowed): ...
    class CallTransferredOut(flow.CallTransferredOut): ...

    def __init__(
        self,
        *,
        tenant: str = DEFAULT_TENANT,
        key: str,
        name: str,
        strategy: str,
        service_level_s: float,
        wrap_up_s: float,
        offer_timeout_s: float,
        music_on_hold: str,
        announce_position: bool,
        occurred_at: datetime,
    ) -> None:
        # Runs for Created, live and on replay: it is that event's apply.
        self._init_configuration(
            tenant=tenant,
            key=key,
            name=name,
            strategy=strategy,
            service_level_s=service_level_s,
            wrap_up_s=wrap_up_s,
            offer_timeout_s=offer_timeout_s,
            music_on_hold=music_on_hold,
            announce_position=announce_position,
        )
        self._init_flow()
        self.created_at = occurred_at

    @staticmethod
    def id_for(key: str, tenant: str = DEFAULT_TENANT) -> UUID:
        return config_id("queue", key, tenant)

    @classmethod
    def create(
        cls,
        key: str,
        name: str,
        strategy: RoutingStrategy = RoutingStrategy.LONGEST_IDLE,
        *,
        occurred_at: datetime,
        service_level_s: float = 20.0,
        wrap_up_s: float = 0.0,
        offer_timeout_s: float = 15.0,
        music_on_hold: str = "default",
        announce_position: bool = False,
        tenant: str = DEFAULT_TENANT,
    ) -> Queue:
        return cls._create(
            cls.Created,
            id=cls.id_for(key, tenant),
            tenant=check_tenant(tenant),
            key=key,
            name=non_empty("name", name),
            strategy=enum_member(RoutingStrategy, strategy).value,
            service_level_s=checked_service_level(service_level_s),
            wrap_up_s=checked_wrap_up(wrap_up_s),
            offer_timeout_s=checked_offer_timeout(offer_timeout_s),
            music_on_hold=non_empty("music_on_hold", music_on_hold),
            announce_position=checked_flag(announce_position),
            occurred_at=utc_instant(occurred_at),
        )

    def _trigger(
        self, event_class: type[TimedAggregate.Event], occurred_at: datetime, **facts: Any
    ) -> None:
        """The halves name their events' templates; what is triggered (and stored
        under this aggregate's topic) is the aggregate's own ``Queue.<Name>``."""
        own = _OWN_EVENTS.get(event_class)
        if own is None:
            raise TypeError(f"{event_class.__qualname__} is not an event of Queue")
        self.trigger_event(own, occurred_at=utc_instant(occurred_at), **facts)


# Template (or the declaration itself) -> Queue's declaration: one dict lookup per
# event, as cheap as the nested classes the commands named before the split.
_OWN_EVENTS: dict[type, type[TimedAggregate.Event]] = {
    cls: own
    for own in vars(Queue).values()
    if isinstance(own, type) and issubclass(own, TimedAggregate.Event) and own is not Queue.Event
    for cls in own.__mro__
    if cls.__module__ in (config.__name__, flow.__name__) or cls is own
}
