"""Dialling a number for a call-centre caller, without pjsua2: from a menu, an
overflow or a blind transfer, the worker calls the number while the caller hears
music, and the callee's ring, answer or failure decide what follows.

A part of ``front.Front``, which holds the caller's stage (DIALLING until the
callee answers) and whether anyone answered for the platform before (then the
call ends as answered: a blind transfer's target failed). The adapter places the
callee (``PlaceCallee``) and reports its leg's facts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from application.b2bua import actions as act
from application.b2bua.front_actions import (
    ClearCallee,
    EndAnswered,
    EndVisit,
    FrontAction,
    PlaceCallee,
    PlayMusic,
    Talk,
)
from application.b2bua.legs import Answered, Gone, Ringing, Timer
from application.b2bua.outcomes import (
    NO_ANSWER_TIMEOUT,
    NO_CAPACITY,
    NO_ROUTE,
    Outcome,
    callee_failure,
)
from domain.call import HangupSide
from domain.call_commands import RingCall

log = logging.getLogger(__name__)

L = TypeVar("L", bound=Hashable)


class Dialling(Generic[L]):
    """The number one caller is put through to; ``answered``: whether anyone
    answered the call for the platform before."""

    def __init__(self, call_id: UUID, clock: Callable[[], datetime],
                 no_answer_s: float | None) -> None:
        self.call_id = call_id
        self.clock = clock
        self.no_answer_s = no_answer_s  # a dialled number has this long to answer

    def dial(self, uri: str | None, answered: bool) -> list[FrontAction]:
        """Call ``uri`` (None: the number has no route) while the caller hears music."""
        actions: list[FrontAction] = [PlayMusic("default")]
        if uri is None:
            return [*actions, *self.failed(NO_ROUTE, HangupSide.SYSTEM, answered)]
        if self.no_answer_s is not None:  # before the placing, which may end the call
            actions.append(act.StartTimer(Timer.NO_ANSWER, self.no_answer_s))
        return [*actions, PlaceCallee(uri)]

    def not_placed(self, no_slot: bool, answered: bool) -> list[FrontAction]:
        return self.failed(NO_CAPACITY if no_slot else callee_failure(0), HangupSide.SYSTEM,
                           answered)

    def timed_out(self, answered: bool) -> list[FrontAction]:
        log.info("call %s: the number dialled did not answer within %.0f s", self.call_id,
                 self.no_answer_s or 0.0)
        return self.failed(NO_ANSWER_TIMEOUT, HangupSide.SYSTEM, answered)

    def dialled(self, fact: Ringing[L] | Answered[L] | Gone[L], answered: bool
                ) -> list[FrontAction]:
        """A fact of the dialled party's leg."""
        if isinstance(fact, Ringing):
            if fact.status in (180, 183) and not answered:
                return [act.Emit(RingCall(self.call_id, self.clock()))]
            return []
        # The dial's no-answer timer, when it started one, stops with the answer or end.
        stop = [act.CancelTimer(Timer.NO_ANSWER)] if self.no_answer_s is not None else []
        if isinstance(fact, Answered):
            return [*stop, Talk()]
        return [*stop, ClearCallee(),
                *self.failed(callee_failure(fact.status), HangupSide.CALLEE, answered)]

    def failed(self, outcome: Outcome, side: HangupSide, answered: bool) -> list[FrontAction]:
        if answered:  # a blind transfer's target: the call was answered
            return [EndAnswered(HangupSide.SYSTEM, "transfer_failed")]
        return [EndVisit(outcome.disposition, outcome.hangup_cause, side, outcome.relay_status)]
