"""An agent's (or supervisor's) transfer request on a live call-centre call,
decided without pjsua2 (the adapter is ``adapters/sip/sessions/centre_actions.py``).

What a ``transfer`` request does depends on where the call is::

    QUEUE (waiting), blind --to a queue or a number--> MoveWaiting: the queue
        moves it (``transfer_call``) and the call follows the queue's
        CallTransferredOut like an overflow; anything else: 409
    TALKING (answered, someone on the other leg), nothing else going on:
        blind to a queue  --> Transferred(queue:key), ReleaseAgent, Requeue
        blind to a number or URI --> Transferred(target), ReleaseAgent, DialAfterTransfer
        attended to a number or URI --> DialConsultation (the adapter calls the party)
        attended to a queue --> 422
    already transferring (a consultation or a REFER), or on hold --> 409
    not connected to anyone --> 409

The reply is decided here too (HTTP-like statuses), except a consultation's,
which depends on the call slot the adapter finds for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar
from uuid import UUID

from application.b2bua import actions as act
from application.b2bua.centre_commands import CentreDone, TransferWaiting
from application.b2bua.consultation import Consultation
from application.b2bua.front import Front, Stage
from application.b2bua.plain import Phase, PlainCall, now
from application.call_control import AuditLink, ControlReply, ControlRequest
from domain.addressing import Target, TargetKind
from domain.call import TransferKind
from domain.call_commands import TransferCall
from domain.errors import InvalidValue
from domain.queue import Queue

log = logging.getLogger(__name__)

L = TypeVar("L", bound=Hashable)


class TenantQueue(Protocol):
    """What a transfer needs of a queue (``QueueSettings``' shape)."""

    @property
    def key(self) -> str: ...
    @property
    def tenant(self) -> str: ...


# Actions (beside application.b2bua.actions).


@dataclass(frozen=True)
class ReleaseAgent:
    """The agent leaves the call: hang their leg up, start their wrap-up."""


@dataclass(frozen=True)
class Requeue:
    """Back to waiting, in ``queue_id`` (``came_from``: the queue it left)."""

    queue_id: UUID
    came_from: UUID | None


@dataclass(frozen=True)
class DialAfterTransfer:
    uri: str


@dataclass(frozen=True)
class MoveWaiting:
    """Ask the queue to move the waiting call (``command``)."""

    command: TransferWaiting


@dataclass(frozen=True)
class DialConsultation:
    """Call ``uri`` for an attended transfer while the caller waits; reply to ``request``."""

    uri: str
    label: str
    request: ControlRequest


TransferAction = (act.Emit | ReleaseAgent | Requeue | DialAfterTransfer | MoveWaiting
                  | DialConsultation)
Decision = tuple[ControlReply | None, list[TransferAction]]


def reply(request: ControlRequest, status: int, detail: str = "", **data: object
          ) -> ControlReply:
    return ControlReply(request.request_id, status, detail, dict(data))


class Transfers(Generic[L]):
    """Transfer requests on one call, and the API command moving it while it waits."""

    def __init__(self, call: PlainCall[L], front: Front[L], consultation: Consultation[L],
                 queues: Callable[[UUID], TenantQueue | None],
                 resolve_number: Callable[[str], str | None],
                 clock: Callable[[], datetime] = now) -> None:
        self.call = call
        self.front = front
        self.consultation = consultation
        self.queues = queues
        self.resolve_number = resolve_number
        self.clock = clock
        self.call_id = front.call_id
        self.tenant = call.facts.tenant
        # The API command moving this waiting caller, until the queue says it moved.
        self.moved_by: AuditLink | None = None

    # Checks.

    def not_talking(self, request: ControlRequest) -> ControlReply | None:
        if self.call.phase is Phase.ANSWERED and self.call.b is not None:
            return None
        return reply(request, 409, f"call {self.call_id} is not connected to anyone "
                                   f"(it is {self.front.stage.value})")

    def busy(self, request: ControlRequest) -> ControlReply | None:
        if self.consultation.current is not None or self.call.transfer is not None:
            return reply(request, 409, f"call {self.call_id} is being transferred already")
        if self.call.held_by is not None:
            return reply(request, 409, f"call {self.call_id} is on hold")
        return None

    # The request.

    def transfer(self, request: ControlRequest) -> Decision:
        kind = TransferKind(request.args.get("kind", "blind"))
        target_kind, value = request.args["target_kind"], request.args["target_value"]
        if self.front.stage is Stage.QUEUE and kind is TransferKind.BLIND:
            return self._move_waiting(request, target_kind, value)
        refused = self.not_talking(request) or self.busy(request)
        if refused is not None:
            return refused, []
        return self._move_talking(request, kind, target_kind, value)

    def _move_talking(self, request: ControlRequest, kind: TransferKind, target_kind: str,
                      value: str) -> Decision:
        """The agent hands the caller on: blind (the agent leaves now) or attended."""
        if target_kind == TargetKind.QUEUE:
            if kind is TransferKind.ATTENDED:
                return reply(request, 422, "an attended transfer goes to a number or a URI"), []
            return self._to_queue(request, value)
        uri = self._uri(target_kind, value)
        if uri is None:
            return reply(request, 404, f"no route to {target_kind} {value!r}"), []
        label = uri if target_kind == "uri" else f"number:{value}"
        if kind is TransferKind.ATTENDED:
            return None, [DialConsultation(uri, label, request)]
        log.info("call %s: blind transfer to %s", self.call_id, uri)
        return reply(request, 202, f"calling {label}", state="calling"), [
            act.Emit(TransferCall(self.call_id, self.clock(), TransferKind.BLIND, label)),
            ReleaseAgent(), DialAfterTransfer(uri)]

    def _move_waiting(self, request: ControlRequest, target_kind: str, value: str) -> Decision:
        """A caller still waiting is moved by the queue itself (``transfer_call``: the
        queue counts it transferred out, a destination queue transferred in); the
        call follows the ``CallTransferredOut`` event like an overflow."""
        if target_kind == TargetKind.QUEUE:
            queue_id = self._queue_id(value)
            if queue_id is None:
                return reply(request, 404, f"queue {value} not found"), []
            target = Target.queue(queue_id)
        elif target_kind == TargetKind.NUMBER:
            target = Target.number(value)
        else:
            return reply(request, 409, "a caller waiting in a queue moves to a queue or a "
                                       "number"), []
        from_queue = self.front.queue_id
        assert from_queue is not None
        self.moved_by = request.audit  # the call follows the move: its events are ours
        state = "queued" if target_kind == TargetKind.QUEUE else "calling"
        return reply(request, 202, f"moving the waiting caller to {target_kind} {value}",
                     state=state), [
            MoveWaiting(TransferWaiting(from_queue, self.call_id, target, self.clock()))]

    def move_done(self, done: CentreDone) -> None:
        """The queue refused the move: nothing moves, nothing is the request's."""
        if not done.ok:
            self.moved_by = None

    def _to_queue(self, request: ControlRequest, key_or_id: str) -> Decision:
        queue_id = self._queue_id(key_or_id)
        if queue_id is None:
            return reply(request, 404, f"queue {key_or_id} not found"), []
        if queue_id == self.front.queue_id:
            return reply(request, 409, "the call came from that queue"), []
        settings = self.queues(queue_id)
        assert settings is not None
        log.info("call %s: transferred to queue %s", self.call_id, settings.key)
        return reply(request, 202, f"waiting in queue {settings.key}", state="queued"), [
            act.Emit(TransferCall(self.call_id, self.clock(), TransferKind.BLIND,
                                  f"queue:{settings.key}")),
            ReleaseAgent(), Requeue(queue_id, self.front.queue_id)]

    # Lookups.

    def _uri(self, kind: str, value: str) -> str | None:
        if kind == "uri":
            return value if value.startswith(("sip:", "sips:")) and " " not in value else None
        if kind == TargetKind.NUMBER:
            return self.resolve_number(value)
        raise ValueError(f"target_kind must be queue, number or uri, not {kind!r}")

    def _queue_id(self, key_or_id: str) -> UUID | None:
        """The queue a transfer names (a key names one of the call's tenant); None
        when there is none, or it belongs to another tenant than the call."""
        try:
            queue_id = UUID(key_or_id)
        except ValueError:
            try:
                queue_id = Queue.id_for(key_or_id, self.tenant)
            except InvalidValue:
                return None
        settings = self.queues(queue_id)
        return queue_id if settings is not None and settings.tenant == self.tenant else None
