"""An attended transfer: the agent consults a third party while the caller
waits (on hold, with music), then completes the transfer or goes back.

One consultation at a time::

    (none) --start--> CALLING (HoldCall) --consulted device answers--> ANSWERED
    CALLING | ANSWERED --consulted leg gone (hung up, or cancelled)--> (none), ResumeCall
    ANSWERED --complete--> (none): Transferred (attended), ResumeCall; the
               consulted leg takes the agent's place (the adapter moves it)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from application.b2bua import actions as act
from application.b2bua.plain import now
from application.call_control import AuditLink
from domain.call import HoldSide, TransferKind
from domain.call_commands import HoldCall, ResumeCall, TransferCall

log = logging.getLogger(__name__)

L = TypeVar("L", bound=Hashable)
AGENT = HoldSide.CALLEE  # the agent (the callee) holds the caller to consult


@dataclass
class Consult(Generic[L]):
    """The agent talks to ``label`` on ``leg`` while the caller waits."""

    label: str
    leg: L
    answered: bool = False
    cancelled_by: AuditLink | None = None  # the API command that cancelled it, if one did


class Consultation(Generic[L]):
    def __init__(self, call_id: UUID, clock: Callable[[], datetime] = now) -> None:
        self.call_id = call_id
        self.clock = clock
        self.current: Consult[L] | None = None

    def start(self, label: str, leg: L) -> list[act.Action[L]]:
        """``leg`` is calling ``label``: the caller waits, with music."""
        self.current = Consult(label, leg)
        return [act.Emit(HoldCall(self.call_id, self.clock(), AGENT)), act.Bridge()]

    def consulted_answered(self) -> list[act.Action[L]]:
        consult = self.current
        if consult is None or consult.answered:
            return []
        consult.answered = True
        return [act.Bridge()]  # the agent and the consulted party hear each other

    def consulted_gone(self) -> list[act.Action[L]]:
        consult, self.current = self.current, None
        if consult is None:
            return []
        log.info("call %s: consultation ended; back to the caller", self.call_id)
        return [act.Emit(ResumeCall(self.call_id, self.clock(), AGENT,
                                        cause=consult.cancelled_by)),
                act.Bridge()]

    def cancel(self, cancelled_by: AuditLink | None) -> list[act.Action[L]]:
        """Hang the consulted party up; its leg's end resumes the caller."""
        assert self.current is not None
        self.current.cancelled_by = cancelled_by
        return [act.HangUp(self.current.leg)]

    def complete(self) -> tuple[L, list[act.Action[L]]]:
        """The answered consultation becomes the call: its leg, and the records."""
        consult, self.current = self.current, None
        assert consult is not None, "complete() without an answered consultation"
        return consult.leg, [
            act.Emit(TransferCall(self.call_id, self.clock(), TransferKind.ATTENDED,
                                  consult.label)),
            act.Emit(ResumeCall(self.call_id, self.clock(), AGENT))]

    def drop(self) -> L | None:
        """Forget the consultation (the call ends): its leg to hang up."""
        consult, self.current = self.current, None
        return consult.leg if consult is not None else None
