"""CallCentreService: the one application holding every call-centre aggregate.

Agents, queues, IVR menus, numbers and dialplans live in ONE eventsourcing
application, so they share one notification log: projections, the relay and
the routing process see all call-centre facts in a single total order.

Every command runs as a unit of work (application/unit.py): its handler loads
the aggregates it needs, applies the domain commands, and the changed
aggregates are saved together in one transaction. Several processes write
here (the API, the routing process, the SIP side), so the aggregate cache
fast-forwards from the store on every read, and a save refused by optimistic
concurrency (``IntegrityError``: another writer appended the same version
first) re-runs the whole command on fresh state, up to ``attempts`` times.
The re-run decides again: a second router trying to reserve an agent that
was just reserved gets ``IllegalTransition`` ("it is reserved"), never a
second reservation.

Errors: every refusal is a ``DomainError``: ``NotFound`` for unknown ids,
``UnknownTarget`` (a ``NotFound``) for a queue or IVR menu a target names that does
not exist, ``AlreadyExists`` for a taken key, ``IllegalTransition`` (naming the current
state) and ``InvalidValue`` from the domain, ``ConcurrentChange`` when the
retries ran out. Commands return a copy of the aggregate they changed.

Tenants: ``scoped(tenant)`` is the service acting for one tenant (the API's,
per request): its commands and reads see only that tenant's aggregates (one
of another tenant is ``NotFound``, as a missing one), and what it creates
belongs to that tenant. The service itself (the router, the SIP side) acts
for no tenant: it sees every aggregate and creates in ``default``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import IntegrityError, Recording
from eventsourcing.utils import get_topic

from application import callflow, recorded
from application.callcentre_config import (
    ConfigurationCommands,
    UnknownTarget,
    check_target,
    parse_target,
    replace_skills,
    require_skills,
)
from application.follow import pages
from application.tracing import command_name, command_span, store_commit_span
from application.unit import AlreadyExists, NotFound, Unit
from domain.addressing import DEFAULT_TENANT, Target, check_tenant
from domain.agent import Agent, AgentState
from domain.errors import DomainError
from domain.queue import Queue
from domain.routing import RoutingStrategy
from domain.values import enum_member

__all__ = [
    "AlreadyExists",
    "CallCentreService",
    "ConcurrentChange",
    "NotFound",
    "UnknownTarget",
    "parse_target",
    "replace_skills",
    "require_skills",
]

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)
Event = DomainEventProtocol[UUID]


class ConcurrentChange(DomainError):  # noqa: N818 - reads as what happened
    """Other writers kept changing the same aggregates; the command gave up."""


class CallCentreService(ConfigurationCommands, Application[UUID]):
    env: ClassVar[dict[str, str]] = {
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        # Several processes write (API, router, SIP side): catch up on every read.
        "AGGREGATE_CACHE_FASTFORWARD": "y",
    }
    attempts = 5
    tenant: str | None = None  # None: every tenant's aggregates (see scoped)

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        super().__init__(env)
        self._counter_lock = threading.Lock()
        # Saves refused by optimistic concurrency, then retried; a list so that
        # the scoped views, which share it, count into the same total.
        self._conflicts = [0]

    @property
    def conflicts(self) -> int:
        return self._conflicts[0]

    def scoped(self, tenant: str) -> CallCentreService:
        """This service acting for ``tenant``: the same store, cache and lock (a
        shallow copy, cheap enough for every request), another view of it."""
        view = copy.copy(self)
        view.tenant = check_tenant(tenant)
        view._view = True
        return view

    _view = False  # a scoped view: the store it uses is the service's, not its own

    def close(self) -> None:
        # Application.__del__ closes: a view dropped after its request must not
        # close the store the service and the other views still use.
        if not self._view:
            super().close()

    @property
    def new_tenant(self) -> str:
        """The tenant what this service creates belongs to."""
        return self.tenant or DEFAULT_TENANT

    # -- reading ----------------------------------------------------------------------

    def get(self, cls: type[A], aggregate_id: UUID, ident: object = None) -> A:
        """A copy of the aggregate (changing it changes nothing); NotFound otherwise."""
        return Unit(self.repository, tenant=self.tenant).get(cls, aggregate_id, ident)

    def ids_of(self, cls: type[Aggregate]) -> list[UUID]:
        """Ids of every aggregate of ``cls`` ever created that this service sees
        (its tenant's, when scoped), in creation order (from the event store's
        topic index; meant for configuration lists)."""
        topic = get_topic(cls.Created)
        ids = [UUID(str(n.originator_id))
               for page in pages(self.recorder, page_size=1000, topics=[topic]) for n in page]
        if self.tenant is None:
            return ids
        unit = Unit(self.repository, tenant=self.tenant)
        return [i for i in ids if unit.find(cls, i) is not None]

    # -- agents ------------------------------------------------------------------------

    def create_agent(self, key: str, name: str, skills: Mapping[str, int] | None = None, *,
                     occurred_at: datetime, auto_pause_after: int | None = None) -> Agent:
        return self._run(lambda u: u.add(Agent.create(
            key, name, skills, occurred_at=occurred_at, auto_pause_after=auto_pause_after,
            tenant=self.new_tenant)))

    def set_agent_skills(self, agent_id: UUID, skills: Mapping[str, int],
                         occurred_at: datetime) -> Agent:
        """Make the agent's skills exactly ``skills`` (one event per difference)."""
        return self._agent(agent_id, lambda a: replace_skills(a, skills, occurred_at))

    def configure_agent(self, agent_id: UUID, change: Callable[[Agent], None]) -> Agent:
        """Apply configuration commands (``replace_skills``, ``set_auto_pause``) together."""
        return self._agent(agent_id, change)

    def set_agent_skill(self, agent_id: UUID, skill: str, level: int,
                        occurred_at: datetime) -> Agent:
        return self._agent(agent_id, lambda a: a.set_skill(skill, level, occurred_at))

    def remove_agent_skill(self, agent_id: UUID, skill: str, occurred_at: datetime) -> Agent:
        return self._agent(agent_id, lambda a: a.remove_skill(skill, occurred_at))

    def set_auto_pause(self, agent_id: UUID, auto_pause_after: int | None,
                       occurred_at: datetime) -> Agent:
        return self._agent(agent_id, lambda a: a.set_auto_pause(auto_pause_after, occurred_at))

    def login(self, agent_id: UUID, device_uri: str, occurred_at: datetime) -> Agent:
        return self._agent(agent_id, lambda a: a.login(device_uri, occurred_at))

    def logout(self, agent_id: UUID, occurred_at: datetime) -> Agent:
        return self._agent(agent_id, lambda a: a.logout(occurred_at))

    def pause(self, agent_id: UUID, reason: str, occurred_at: datetime) -> Agent:
        return self._agent(agent_id, lambda a: a.pause(reason, occurred_at))

    def resume(self, agent_id: UUID, occurred_at: datetime) -> Agent:
        return self._agent(agent_id, lambda a: a.resume(occurred_at))

    def finish_wrap_up(self, agent_id: UUID, occurred_at: datetime) -> list[Event]:
        return self._events(lambda u: u.get(Agent, agent_id).finish_wrap_up(occurred_at))

    def retire_agent(self, agent_id: UUID, occurred_at: datetime) -> Agent:
        """Take the agent out of service: logged out (refused while reserved or on
        a call) and removed from every queue. The history stays."""
        queue_ids = self.ids_of(Queue)

        def command(unit: Unit) -> Agent:
            agent = unit.get(Agent, agent_id)
            if agent.state is not AgentState.LOGGED_OUT:
                agent.logout(occurred_at)
            for queue_id in queue_ids:
                queue = unit.find(Queue, queue_id)  # None: another tenant's
                if queue is not None and agent_id in queue.members:
                    queue.remove_member(agent_id, occurred_at)
            return agent
        return self._run(command)

    # -- queues ------------------------------------------------------------------------

    def create_queue(self, key: str, name: str, strategy: RoutingStrategy | str, *,
                     occurred_at: datetime, required_skills: Mapping[str, int] | None = None,
                     overflow: tuple[float, Target] | None = None, record_calls: bool = False,
                     **settings: Any) -> Queue:
        """A queue, configured in the same transaction. ``settings``: service_level_s,
        wrap_up_s, offer_timeout_s, music_on_hold, announce_position (see
        ``Queue.create``); ``overflow``: (max wait in seconds, target);
        ``record_calls``: the B2BUA records the queue's answered calls."""
        def command(unit: Unit) -> Queue:
            queue = unit.add(Queue.create(key, name, enum_member(RoutingStrategy, strategy),
                                          occurred_at=occurred_at, tenant=self.new_tenant,
                                          **settings))
            require_skills(queue, required_skills or {}, occurred_at)
            if record_calls:
                queue.set_recording(True, occurred_at)
            if overflow is not None:
                check_target(unit, overflow[1])
                queue.set_overflow(*overflow, occurred_at)
            return queue
        return self._run(command)

    def configure_queue(self, queue_id: UUID, change: Callable[[Queue], None],
                        targets: Sequence[Target] = ()) -> Queue:
        """Apply configuration commands (``Queue.set_*``, ``change_strategy``,
        ``require_skills``...) together; ``targets`` they introduce must exist."""
        def command(unit: Unit) -> Queue:
            queue = unit.get(Queue, queue_id)  # first: a missing queue is the answer
            for target in targets:
                check_target(unit, target)
            change(queue)
            return queue
        return self._run(command)

    def set_overflow(self, queue_id: UUID, max_wait_s: float, target: Target,
                     occurred_at: datetime) -> Queue:
        def command(unit: Unit) -> Queue:
            queue = unit.get(Queue, queue_id)
            check_target(unit, target)
            queue.set_overflow(max_wait_s, target, occurred_at)
            return queue
        return self._run(command)

    def clear_overflow(self, queue_id: UUID, occurred_at: datetime) -> Queue:
        return self._queue(queue_id, lambda q: q.clear_overflow(occurred_at))

    def add_member(self, queue_id: UUID, agent_id: UUID, penalty: int,
                   occurred_at: datetime) -> Queue:
        def command(unit: Unit) -> Queue:
            unit.get(Agent, agent_id)
            queue = unit.get(Queue, queue_id)
            queue.add_member(agent_id, penalty, occurred_at)
            return queue
        return self._run(command)

    def set_member(self, queue_id: UUID, agent_id: UUID, penalty: int,
                   occurred_at: datetime) -> Queue:
        """Add the agent to the queue, or change its penalty if it is a member."""
        def command(unit: Unit) -> Queue:
            unit.get(Agent, agent_id)
            queue = unit.get(Queue, queue_id)
            if agent_id in queue.members:
                queue.update_member(agent_id, penalty, occurred_at)
            else:
                queue.add_member(agent_id, penalty, occurred_at)
            return queue
        return self._run(command)

    def update_member(self, queue_id: UUID, agent_id: UUID, penalty: int,
                      occurred_at: datetime) -> Queue:
        return self._queue(queue_id, lambda q: q.update_member(agent_id, penalty, occurred_at))

    def remove_member(self, queue_id: UUID, agent_id: UUID, occurred_at: datetime) -> Queue:
        return self._queue(queue_id, lambda q: q.remove_member(agent_id, occurred_at))

    # -- call flow (the SIP side and the routing process) ------------------------------

    def enqueue_call(self, queue_id: UUID, call_id: UUID, priority: int,
                     occurred_at: datetime, transferred_from: UUID | None = None) -> list[Event]:
        """The call starts waiting in the queue (the B2BUA: "call C entered queue Q")."""
        return self._events(lambda u: callflow.enqueue(
            u, queue_id, call_id, priority, occurred_at, transferred_from))

    def offer_call(self, queue_id: UUID, call_id: UUID, agent_ids: Sequence[UUID],
                   occurred_at: datetime, *, current: Sequence[Aggregate] = ()) -> list[Event]:
        """Reserve the agents and record the rings (the routing process).
        ``current``: private copies of the queue and agents as the caller saw them
        (saves loading them; the command consumes them). If they are stale, the
        store refuses the save, or the domain the command: either way it runs
        again on what the store holds, so a refusal is always the store's."""
        _, events = self._execute(lambda u: callflow.offer(u, queue_id, call_id, agent_ids,
                                                           occurred_at), current)
        return events

    def offer_calls(self, offers: Sequence[tuple[UUID, UUID, Sequence[UUID]]],
                    occurred_at: datetime, *, current: Sequence[Aggregate] = ()) -> list[Event]:
        """Several offers (queue, call, agents) in one transaction: all or none."""
        def command(unit: Unit) -> None:
            for queue_id, call_id, agent_ids in offers:
                callflow.offer(unit, queue_id, call_id, agent_ids, occurred_at)
        _, events = self._execute(command, current)
        return events

    def offer_direct(self, agent_id: UUID, call_id: UUID, offer_timeout_s: float,
                     occurred_at: datetime) -> list[Event]:
        return self._events(lambda u: callflow.reserve_direct(
            u, agent_id, call_id, offer_timeout_s, occurred_at))

    def accept_offer(self, agent_id: UUID, call_id: UUID, occurred_at: datetime) -> list[Event]:
        """The agent answered (the B2BUA: 200 OK from the agent's device)."""
        return self._events(lambda u: callflow.accept(u, agent_id, call_id, occurred_at))

    def miss_offer(self, agent_id: UUID, call_id: UUID, occurred_at: datetime) -> list[Event]:
        """The offer was not answered (rejected, rang out, or timed out by the router)."""
        return self._events(lambda u: callflow.miss(u, agent_id, call_id, occurred_at))

    def abandon_call(self, queue_id: UUID, call_id: UUID, occurred_at: datetime) -> list[Event]:
        """The caller hung up while waiting or ringing."""
        return self._events(lambda u: callflow.abandon(u, queue_id, call_id, occurred_at))

    def overflow_call(self, queue_id: UUID, call_id: UUID, occurred_at: datetime) -> list[Event]:
        return self._events(lambda u: callflow.overflow(u, queue_id, call_id, occurred_at))

    def transfer_call(self, queue_id: UUID, call_id: UUID, to: Target,
                      occurred_at: datetime) -> list[Event]:
        return self._events(lambda u: callflow.transfer(u, queue_id, call_id, to, occurred_at))

    def end_agent_call(self, agent_id: UUID, call_id: UUID, occurred_at: datetime) -> list[Event]:
        """The answered call ended; the agent goes to wrap-up (or straight back)."""
        return self._events(lambda u: callflow.end_call(u, agent_id, call_id, occurred_at))

    # -- internals -----------------------------------------------------------------------

    def _agent(self, agent_id: UUID, change: Callable[[Agent], None]) -> Agent:
        return self._change(Agent, agent_id, change)

    def _queue(self, queue_id: UUID, change: Callable[[Queue], None]) -> Queue:
        return self._change(Queue, queue_id, change)

    def _run(self, command: Callable[[Unit], T]) -> T:
        result, _ = self._execute(command)
        return result

    def _events(self, command: Callable[[Unit], None]) -> list[Event]:
        """Run ``command``; return the events it recorded (so a follower of the
        log can advance its own view without waiting to read them back)."""
        _, events = self._execute(command)
        return events

    def _execute(self, command: Callable[[Unit], T],
                 current: Sequence[Aggregate] = ()) -> tuple[T, list[Event]]:
        with command_span(self.name, command_name(command), self.tenant):
            return self._attempt(command, current)

    def _attempt(self, command: Callable[[Unit], T],
                 current: Sequence[Aggregate]) -> tuple[T, list[Event]]:
        for attempt in range(self.attempts):
            copies = current if attempt == 0 else ()
            unit = Unit(self.repository, copies, self.tenant)
            try:
                result = command(unit)
                changed = unit.changed()
                recordings = self._commit(changed) if changed else []
            except IntegrityError:
                with self._counter_lock:
                    self._conflicts[0] += 1
                continue  # another writer got there first: decide again on fresh state
            except DomainError:
                if copies:
                    continue  # refused by the caller's copies, maybe stale: ask the store
                raise
            return result, [r.domain_event for r in recordings]
        raise ConcurrentChange(f"gave up after {self.attempts} concurrent changes; retry")

    def _commit(self, changed: Sequence[Aggregate]) -> list[Recording[UUID]]:
        with store_commit_span(self.name, sum(len(a.pending_events) for a in changed)):
            return self.save(*changed)

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        # eventsourcing's after-save hook: the API's audit row names these positions.
        recorded.note(self.name, recordings)
