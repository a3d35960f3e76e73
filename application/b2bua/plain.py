"""A plain bridged call: the caller's leg, the callee's leg, and what happens
between them (the flow of ``adapters/sip/sessions/session.py``, without pjsua2).

States (``Phase``) and the facts that move the call between them::

    ROUTING  --callee Ringing 180/183--> ROUTING (relayed once each, RingCall once)
             --callee Answered--> ANSWERED (AnswerCall, 200 to the caller, bridge)
             --callee Gone / caller Gone / no answer / no route / no slot--> ENDED
    ANSWERED --either party's MediaChanged to REMOTE_HOLD / back to ACTIVE--> hold / resume
             --ReferReceived (not held, no transfer yet)--> a blind transfer:
                 the transferee hears music while the target rings;
                 target Answered: it replaces the transferor; target Gone: back
                 to the transferor, or ENDED if the transferor left meanwhile
             --either party Gone--> ENDED (answered)
    any      --ShutdownAsked--> ENDED (answered, or failed with 503)

Each transition is a method named for its fact; ``handle`` picks it from the
fact and the state. A leg the call does not know (a leg still being placed, a
transferor already replaced) is ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Generic, TypeVar
from uuid import UUID

from application.b2bua import actions as act
from application.b2bua.legs import (
    Answered,
    Audio,
    Fact,
    Gone,
    InboundFacts,
    LegRole,
    MediaChanged,
    Placed,
    PlaceFailed,
    ReferFollowed,
    ReferReceived,
    Ringing,
    ShutdownAsked,
    Timer,
    TimerFired,
    refer_target,
)
from application.b2bua.outcomes import (
    NO_ANSWER_TIMEOUT,
    NO_CAPACITY,
    NO_ROUTE,
    Outcome,
    callee_failure,
)
from domain.call import Call, Disposition, HangupSide, HoldSide, TransferKind
from domain.call_commands import (
    AnswerCall,
    EndCall,
    HoldCall,
    InitiateCall,
    ResumeCall,
    RingCall,
    RouteCall,
    TransferCall,
)

log = logging.getLogger(__name__)

L = TypeVar("L", bound=Hashable)
Actions = list[act.Action[L]]

TRANSFEROR_GRACE = 5.0  # seconds a transferor may stay after its transfer is answered
CANCELLED = Outcome(Disposition.CANCELLED, "originator_cancel", 487)


class Phase(Enum):
    ROUTING = "routing"
    ANSWERED = "answered"
    ENDED = "ended"


@dataclass(frozen=True)
class PlainCallSettings:
    no_answer_timeout: float  # seconds the callee has to answer
    retry_after: int = 5  # seconds, on our own 503s


def now() -> datetime:
    return datetime.now(UTC)


class PlainCall(Generic[L]):
    """One call's state; ``handle`` a fact, get the actions it takes."""

    def __init__(self, facts: InboundFacts, caller: L, settings: PlainCallSettings,
                 clock: Callable[[], datetime] = now) -> None:
        self.facts = facts
        self.settings = settings
        self.clock = clock
        self.call_id: UUID = Call.id_for(facts.sip_call_id)
        self.a: L = caller
        self.b: L | None = None
        self.phase = Phase.ROUTING
        self.rang = False
        self.relayed: set[int] = set()
        self.held_by: L | None = None
        self.transfer: tuple[L, L] | None = None  # (transferor, new leg)
        self.leftover: L | None = None  # a transferor still connected after its transfer
        self.confirmed: set[L] = set()  # legs whose dialog was confirmed
        self.gone: set[L] = set()  # legs whose dialog ended

    # Start.

    def start(self, target: str | None) -> Actions[L]:
        """The caller's INVITE arrived; ``target``: the dialplan's URI for it."""
        return self.initiate() + self._route(target)

    def initiate(self) -> Actions[L]:
        f = self.facts
        return [act.Emit(InitiateCall(self.call_id, self.clock(), f.caller, f.callee,
                                      f.direction, f.trunk, f.sip_call_id, f.tenant))]

    def _route(self, target: str | None) -> Actions[L]:
        if target is None:
            log.info("call %s: no route for %r: 404", self.call_id, self.facts.callee)
            return self.end_unanswered(NO_ROUTE, HangupSide.SYSTEM)
        return [act.Emit(RouteCall(self.call_id, self.clock(), target)),
                act.StartTimer(Timer.NO_ANSWER, self.settings.no_answer_timeout),
                act.Place(LegRole.CALLEE, target)]

    # Facts.

    def handle(self, fact: Fact[L]) -> Actions[L]:  # noqa: PLR0911 - the transition table
        self._note(fact)
        if isinstance(fact, ReferReceived):  # answered even after the end: refused
            return self.refer_received(fact.leg, fact.refer_to)
        if self.phase is Phase.ENDED:
            return []
        match fact:
            case Placed(leg=leg):
                return self.callee_placed(leg)
            case PlaceFailed(no_slot=no_slot):
                return self.callee_not_placed(no_slot)
            case MediaChanged(leg=leg, audio=audio):
                return self.media_changed(leg, audio)
            case ReferFollowed(leg=leg, new=new, target=target):
                return self.refer_followed(leg, new, target)
            case TimerFired(timer=timer):
                return self.timer_fired(timer)
            case ShutdownAsked(cause=cause):
                return self.shutdown_asked(cause)
        return self._leg_state(fact)

    def _note(self, fact: Fact[L]) -> None:
        if isinstance(fact, Answered):
            self.confirmed.add(fact.leg)
        elif isinstance(fact, Gone):
            self.gone.add(fact.leg)

    def _leg_state(self, fact: Ringing[L] | Answered[L] | Gone[L]) -> Actions[L]:
        leg = fact.leg
        if self.transfer is not None and leg in self.transfer:
            return self._transfer_leg_state(fact)
        if leg is self.b:
            return self._callee_state(fact)
        if leg is self.a and isinstance(fact, Gone):
            return self.caller_gone()
        return []

    def _callee_state(self, fact: Ringing[L] | Answered[L] | Gone[L]) -> Actions[L]:
        routing = self.phase is Phase.ROUTING
        if isinstance(fact, Ringing) and routing:
            return self.callee_ringing(fact.status)
        if isinstance(fact, Answered) and routing:
            return self.callee_answered()
        if isinstance(fact, Gone):
            return self.callee_gone(fact.status)
        return []

    # Routing.

    def callee_placed(self, leg: L) -> Actions[L]:
        self.b = leg
        return []

    def callee_not_placed(self, no_slot: bool) -> Actions[L]:
        return self.end_unanswered(NO_CAPACITY if no_slot else callee_failure(0),
                                   HangupSide.SYSTEM)

    def callee_ringing(self, status: int) -> Actions[L]:
        if status not in (180, 183) or status in self.relayed:
            return []
        self.relayed.add(status)
        actions: Actions[L] = []
        if not self.rang:
            self.rang = True
            actions.append(act.Emit(RingCall(self.call_id, self.clock())))
        return [*actions, act.Respond(self.a, status)]

    def callee_answered(self) -> Actions[L]:
        self.phase = Phase.ANSWERED
        return [act.CancelTimer(Timer.NO_ANSWER), act.Emit(AnswerCall(self.call_id, self.clock())),
                act.Respond(self.a, 200), act.Bridge(), act.SampleMedia()]

    def callee_gone(self, status: int) -> Actions[L]:
        if self.phase is Phase.ANSWERED:
            return self.end_answered(HangupSide.CALLEE, "normal_clearing")
        return self.end_unanswered(callee_failure(status), HangupSide.CALLEE)

    def caller_gone(self) -> Actions[L]:
        if self.phase is Phase.ANSWERED:
            return self.end_answered(HangupSide.CALLER, "normal_clearing")
        return self.end_unanswered(CANCELLED, HangupSide.CALLER)

    def timer_fired(self, timer: Timer) -> Actions[L]:
        if timer is Timer.TRANSFEROR_GRACE:
            leftover, self.leftover = self.leftover, None
            return [act.HangUp(leftover)] if leftover is not None else []
        if self.phase is Phase.ROUTING:
            log.info("call %s: no answer within %ss", self.call_id,
                     self.settings.no_answer_timeout)
            return self.end_unanswered(NO_ANSWER_TIMEOUT, HangupSide.SYSTEM)
        return []

    # Hold, from either side.

    def media_changed(self, leg: L, audio: Audio) -> Actions[L]:
        if self.transfer is not None and leg is self.transfer[1]:
            return [act.Bridge()]
        actions: Actions[L] = []
        if self.phase is Phase.ANSWERED and (leg is self.a or leg is self.b):
            actions = self._track_hold(leg, audio)
        return [*actions, act.Bridge()]

    def _track_hold(self, leg: L, audio: Audio) -> Actions[L]:
        other = self.other(leg)
        # The caller's leg (or the leg that took its place by a transfer) is a.
        side = HoldSide.CALLER if leg is self.a else HoldSide.CALLEE
        if audio is Audio.REMOTE_HOLD and self.held_by is None:
            self.held_by = leg
            return [act.Emit(HoldCall(self.call_id, self.clock(), side)), act.Unbridge(),
                    *([act.Hold(other)] if other is not None else [])]
        if audio is Audio.ACTIVE and self.held_by is leg:
            self.held_by = None
            return [act.Emit(ResumeCall(self.call_id, self.clock(), side)), act.StopHoldMusic(),
                    *([act.Unhold(other)] if other is not None else [])]
        return []

    # Blind transfer: REFER from either party.

    def refer_received(self, leg: L, refer_to: str) -> Actions[L]:
        if self.phase is not Phase.ANSWERED or self.transfer is not None or self.held_by:
            log.info("call %s: REFER refused (%s)", self.call_id, self.phase.value)
            return [act.RefuseRefer(603)]
        return [act.FollowRefer(leg, refer_target(refer_to))]

    def refer_followed(self, transferor: L, new: L, target: str) -> Actions[L]:
        self.transfer = (transferor, new)
        log.info("call %s: blind transfer by the %s to %s", self.call_id,
                 "caller" if transferor is self.a else "callee", target)
        return [act.Emit(TransferCall(self.call_id, self.clock(), TransferKind.BLIND, target)),
                act.Unbridge(), act.Bridge()]  # the transferee hears music while it rings

    def _transfer_leg_state(self, fact: Ringing[L] | Answered[L] | Gone[L]) -> Actions[L]:
        assert self.transfer is not None
        transferor, new = self.transfer
        if fact.leg is transferor:
            return []  # the transferor leaving is expected: the call lives on
        if isinstance(fact, Answered):
            return self.transfer_answered(transferor, new)
        if isinstance(fact, Gone):
            return self.transfer_failed(transferor, fact.status)
        return []

    def transfer_answered(self, transferor: L, new: L) -> Actions[L]:
        if transferor is self.a:
            self.a = new
        else:
            self.b = new
        self.transfer = None
        log.info("call %s: transfer answered", self.call_id)
        # The transferor hangs up itself once the final NOTIFY arrives; only a
        # transferor that lingers is sent a BYE.
        self.leftover = transferor
        return [act.StopHoldMusic(), act.TransferAnswered(transferor, new),
                act.StartTimer(Timer.TRANSFEROR_GRACE, TRANSFEROR_GRACE), act.Bridge()]

    def transfer_failed(self, transferor: L, status: int) -> Actions[L]:
        log.info("call %s: transfer target failed with %s", self.call_id, status)
        self.transfer = None
        if transferor in self.gone:
            return [act.StopHoldMusic(), *self.end_answered(HangupSide.SYSTEM, "transfer_failed")]
        return [act.StopHoldMusic(), act.Bridge()]

    # Ends.

    def shutdown_asked(self, cause: str) -> Actions[L]:
        """End the call from our side (worker shutdown)."""
        if self.phase is Phase.ANSWERED:
            return self.end_answered(HangupSide.SYSTEM, cause)
        return self.end_unanswered(Outcome(Disposition.FAILED, cause, 503), HangupSide.SYSTEM)

    def end_unanswered(self, outcome: Outcome, side: HangupSide) -> Actions[L]:
        end = EndCall(self.call_id, self.clock(), outcome.disposition, outcome.hangup_cause,
                      side, outcome.relay_status)
        overloaded = outcome.relay_status == 503
        headers = {"Retry-After": str(self.settings.retry_after)} if overloaded else None
        return [self._finish(end), act.HangUp(self.a, outcome.relay_status, headers),
                act.HangUpAllBut(self.a)]

    def end_answered(self, side: HangupSide, cause: str) -> Actions[L]:
        end = EndCall(self.call_id, self.clock(), Disposition.ANSWERED, cause, side, 200)
        return [self._finish(end), act.HangUpAllBut(None)]

    def finish(self, end: EndCall) -> Actions[L]:
        """End the call with ``end`` (a call-centre flow decides its own ends)."""
        return [self._finish(end)]

    def _finish(self, end: EndCall) -> act.Finish:
        answered = self.phase is Phase.ANSWERED
        self.phase = Phase.ENDED
        return act.Finish(end, answered)

    # Queries (the adapter's audio plumbing asks them).

    def other(self, leg: L) -> L | None:
        return self.b if leg is self.a else self.a

    def parties(self) -> tuple[L | None, L | None]:
        """The two legs whose audio should meet right now."""
        if self.transfer is not None:
            transferor, new = self.transfer
            return self.other(transferor), new
        return self.a, self.b

    def waiting_party(self) -> L | None:
        """The party who should hear music: held, or being transferred."""
        if self.held_by is not None:
            return self.other(self.held_by)
        if self.transfer is not None:
            transferor, new = self.transfer
            if new not in self.confirmed:
                return self.other(transferor)
        return None

    def legs(self) -> list[L]:
        """Every leg of the call still ours to hang up."""
        found = [self.a, self.b, self.leftover, *(self.transfer or ())]
        return [leg for leg in found if leg is not None]
