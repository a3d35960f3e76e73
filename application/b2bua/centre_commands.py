"""The call-centre commands a call's flow asks for, as plain values.

A flow returns ``Submit(command)``; the adapter hands the command to the
worker's call-centre lane (``adapters/sip/store/centre_link.py``), which runs
``command.run`` on the ``CallCentreService`` one at a time, and reports the
outcome of the commands whose outcome the flow follows (``FOLLOWED``) back as
a fact (``CentreDone``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.addressing import Target
from domain.queue import Queue

if TYPE_CHECKING:
    from application.callcentre import CallCentreService


@dataclass(frozen=True)
class Enqueue:
    """The call starts waiting in ``queue_id`` (``transferred_from``: the queue an
    agent transferred it from)."""

    queue_id: UUID
    call_id: UUID
    at: datetime
    key: str
    transferred_from: UUID | None = None

    def what(self) -> str:
        return f"enqueue {self.call_id} in {self.key}"

    def run(self, service: CallCentreService) -> Any:
        return service.enqueue_call(self.queue_id, self.call_id, 0, self.at,
                                    self.transferred_from)


@dataclass(frozen=True)
class AskPosition:
    """The caller's place in the queue, for an announcement."""

    queue_id: UUID
    call_id: UUID

    def what(self) -> str:
        return f"position of {self.call_id}"

    def run(self, service: CallCentreService) -> int:
        return service.get(Queue, self.queue_id).position(self.call_id)


@dataclass(frozen=True)
class Abandon:
    """The caller left the queue (hung up, or the platform dropped the call)."""

    queue_id: UUID
    call_id: UUID
    at: datetime
    dropped: bool = False  # the platform's doing (worker shutdown), not the caller's

    def what(self) -> str:
        return f"{'drop' if self.dropped else 'abandon'} {self.call_id}"

    def run(self, service: CallCentreService) -> Any:
        return service.abandon_call(self.queue_id, self.call_id, self.at)


@dataclass(frozen=True)
class MissOffer:
    """The agent's device did not answer the offer (rejected, rang out, unreachable)."""

    agent_id: UUID
    call_id: UUID
    at: datetime

    def what(self) -> str:
        return f"miss offer of {self.call_id} to {self.agent_id}"

    def run(self, service: CallCentreService) -> Any:
        return service.miss_offer(self.agent_id, self.call_id, self.at)


@dataclass(frozen=True)
class AcceptOffer:
    """The agent's device answered the offer (refused if the offer no longer stands)."""

    agent_id: UUID
    call_id: UUID
    at: datetime

    def what(self) -> str:
        return f"accept offer of {self.call_id} by {self.agent_id}"

    def run(self, service: CallCentreService) -> Any:
        return service.accept_offer(self.agent_id, self.call_id, self.at)


@dataclass(frozen=True)
class EndAgentCall:
    """The agent is done with the call: their wrap-up starts."""

    agent_id: UUID
    call_id: UUID
    at: datetime

    def what(self) -> str:
        return f"end call {self.call_id} of {self.agent_id}"

    def run(self, service: CallCentreService) -> Any:
        return service.end_agent_call(self.agent_id, self.call_id, self.at)


@dataclass(frozen=True)
class TransferWaiting:
    """Move a caller waiting in ``queue_id`` to ``target`` (the queue moves it)."""

    queue_id: UUID
    call_id: UUID
    target: Target
    at: datetime

    def what(self) -> str:
        return f"move {self.call_id} to {self.target}"

    def run(self, service: CallCentreService) -> Any:
        return service.transfer_call(self.queue_id, self.call_id, self.target, self.at)


CentreCommand = (Enqueue | AskPosition | Abandon | MissOffer | AcceptOffer | EndAgentCall
                 | TransferWaiting)
# The commands whose outcome a flow hears.
FOLLOWED = (Enqueue, AskPosition, AcceptOffer, TransferWaiting)


@dataclass(frozen=True)
class Submit:
    """Run ``command`` on the call-centre lane."""

    command: CentreCommand


@dataclass(frozen=True)
class CentreDone:
    """A submitted command's outcome: ``ok`` with its ``value``, or its ``error``."""

    command: CentreCommand
    ok: bool
    value: object = None
    error: str | None = None
