"""A call-centre call before anyone talks to the caller, on pjsua2: the
platform answers the caller's leg, then IVR menus, a queue with music on hold
and position announcements, or a number being dialled.

Where the caller goes and the IVR's keys are decided by the flow
(``application.b2bua.front.Front``: its stages are documented there); this
adapter performs its actions (prompts, music, timers, the queue, dialling)
and still holds the queue's and the dialling's own steps.

``FrontSession`` holds these stages; ``centre_session.CentreSession`` adds
the agents (offers, the talk, supervisors, recording).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from adapters.media.player import MusicLibrary
from adapters.media.prompts import Prompts
from adapters.media.recorder import RecordingStore
from adapters.sip.pjsua.legs import Leg
from adapters.sip.routing.directory import Directory
from adapters.sip.sessions.front import FrontAudio
from adapters.sip.sessions.session import Session, SessionContext, TimerHandle, state_fact
from adapters.sip.store.centre_link import CentreLink, Outcome
from application.b2bua import actions as act
from application.b2bua import front as flow
from application.b2bua.centre_commands import FOLLOWED, CentreCommand, CentreDone, Submit
from application.b2bua.front import Front, QueueInfo, Stage
from application.b2bua.inbound import InboundFacts
from application.b2bua.legs import Answered, Gone, LegRole, Ringing, Timer
from application.b2bua.plain import Phase, now
from application.call_control import ControlReply
from domain.addressing import Target, TargetKind
from domain.call import Disposition, HangupSide
from domain.call_commands import EndCall
from domain.queue import Queue

log = logging.getLogger(__name__)


__all__ = ["CentreContext", "FrontSession", "Stage"]


@dataclass
class CentreContext:
    """What call-centre sessions need from their worker, besides SessionContext."""

    link: CentreLink
    directory: Directory
    resolve_number: Callable[[str], str | None]  # the worker's dialplan
    prompts: Prompts
    music: MusicLibrary
    reply: Callable[[ControlReply], None]
    free_legs: Callable[[], int]
    recordings: RecordingStore | None = None
    announce_every_s: float = 20.0



class FrontSession(Session):
    def __init__(self, ctx: SessionContext, centre: CentreContext, caller_leg: Leg,
                 facts: InboundFacts) -> None:
        super().__init__(ctx, caller_leg, facts)
        self.centre = centre
        # Where the caller is and where the IVR sends them: the flow's.
        self.visit: Front[Leg] = Front(self.call_id, caller_leg, centre.directory.menu,
                                       centre.directory.queue, centre.directory.describe,
                                       centre.announce_every_s, now)
        self.front = FrontAudio(caller_leg, ctx.call_later)
        self._stage_timer: TimerHandle | None = None
        self._announce_timer: TimerHandle | None = None

    @property
    def stage(self) -> Stage:
        return self.visit.stage

    @stage.setter
    def stage(self, stage: Stage) -> None:
        self.visit.stage = stage

    @property
    def queue(self) -> QueueInfo | None:
        """The queue the caller waits in (or was last taken from), as it was then."""
        return self.visit.queue

    @property
    def queue_id(self) -> UUID | None:
        return self.visit.queue_id

    @property
    def ever_answered(self) -> bool:
        return self.visit.ever_answered

    @ever_answered.setter
    def ever_answered(self, answered: bool) -> None:
        self.visit.ever_answered = answered

    # -- hooks for the agents' side (CentreSession) ----------------------------------------

    def _talk(self, at: datetime) -> None:
        """The caller and the party on ``b`` start talking."""
        raise NotImplementedError

    def _withdraw_rings(self, keep: UUID | None = None) -> None:
        """Stop ringing agents for this call (none ring before CentreSession)."""

    # -- start ---------------------------------------------------------------------------

    def start_front(self, destination: Target) -> None:
        """Answer the caller's leg ourselves (media only) and go to ``destination``."""
        self._initiate()
        self.a.respond(200)
        self._go(destination)

    def _go(self, target: Target) -> None:
        self._run_front(self.visit.go(target))

    def _route_note(self, target: Target) -> None:
        """The Call's Routed event for where the caller goes (only before any answer)."""
        self._run_front(self.visit.route_note(target))

    # -- the front flow's actions, performed ---------------------------------------------

    def _run_front(self, actions: Sequence[Any]) -> None:
        """Perform the actions of the call-centre flows (the front's, the offers')."""
        for action in actions:
            self._perform_front(action)

    def _perform_front(self, action: Any) -> None:
        match action:
            case flow.PlayMenu(prompt=prompt):
                self.front.play(self.centre.prompts.menu(prompt), self._menu_said)
            case flow.StopPrompt():
                self.front.stop_prompt()
            case flow.PlayMusic(name=name):
                self.front.music(self.centre.music.music(name))
            case flow.PlayPosition(position=position):
                self.front.play(self.centre.prompts.position(position), lambda: None)
            case act.StartTimer(timer=timer, seconds=seconds) if timer in _FRONT_TIMERS:
                self._start_front_timer(timer, seconds)
            case act.CancelTimer(timer=timer) if timer in _FRONT_TIMERS:
                self._cancel_front_timer(timer)
            case Submit(command=command):
                self._submit(command)
            case flow.WithdrawRings():
                self._withdraw_rings()
            case _:
                self._perform_move(action)

    def _perform_move(self, action: Any) -> None:
        """The front's actions that move the call: dial, talk, end."""
        match action:
            case flow.DialNumber(number=number):
                self._dial(self.centre.resolve_number(number))
            case flow.PlaceCallee(uri=uri):
                self._place_callee(uri)
            case flow.ClearCallee():
                self.b = None
            case flow.Talk():
                self._talk(now())
            case flow.EndAnswered(side=side, cause=cause):
                self._end_answered(side, cause)
            case flow.Goodbye(cause=cause):
                self._goodbye(cause)
            case flow.EndVisit(disposition=disposition, cause=cause, side=side,
                               sip_status=status):
                self._finish_front(disposition, cause, side, status)
            case _:
                self._run([action])  # a call flow action (Emit)

    def _start_front_timer(self, timer: Timer, seconds: float) -> None:
        def fired() -> None:
            self._set_front_timer(timer, None)  # it has fired: nothing left to cancel
            self._run_front(self.visit.timer_fired(timer))
        self._set_front_timer(timer, self.ctx.call_later(seconds, fired))

    def _set_front_timer(self, timer: Timer, handle: TimerHandle | None) -> None:
        if timer is Timer.KEY_WAIT:
            self._stage_timer = handle
        else:
            self._announce_timer = handle

    def _cancel_front_timer(self, timer: Timer) -> None:
        if timer is Timer.KEY_WAIT:
            self._cancel_stage_timer()
        elif self._announce_timer is not None:
            self._announce_timer.cancel()
            self._announce_timer = None

    def _submit(self, command: CentreCommand) -> None:
        """Run ``command`` on the call-centre lane; the outcome of those the flows
        follow back to them."""
        def done(outcome: Outcome[Any]) -> None:
            self._centre_done(CentreDone(command, outcome.ok, outcome.value, _error(outcome)))
        follows = isinstance(command, FOLLOWED)
        self.centre.link.submit(command.what(), command.run, done if follows else None)

    def _centre_done(self, done: CentreDone) -> None:
        if self.phase is not Phase.ENDED:  # nothing is heard after the call's end
            self._run_front(self.visit.centre_done(done))

    def _menu_said(self) -> None:
        self._run_front(self.visit.prompt_ended())

    def leg_dtmf(self, leg: Leg, digit: str) -> None:
        self._run_front(self.visit.key_pressed(leg, digit))

    # -- queue ---------------------------------------------------------------------------

    def _enter_queue(self, queue_id: UUID, transferred_from: UUID | None = None) -> None:
        self._run_front(self.visit.enter_queue(queue_id, transferred_from))

    def queue_left(self, event: Queue.CallOverflowed | Queue.CallTransferredOut) -> None:
        """The platform moved the waiting call (overflow, or a transfer of a waiting call)."""
        target = Target(TargetKind(event.target_kind), event.target_value)
        self._run_front(self.visit.queue_left(event.originator_id, target))

    # -- dialling a number (from a menu, an overflow, a blind transfer) --------------------

    def _dial(self, uri: str | None) -> None:
        self._run_front(self.visit.dial(uri))

    def _place_callee(self, uri: str) -> None:
        leg = self.ctx.new_leg(LegRole.CALLEE)
        leg.listener = self
        if leg.place(uri):
            self.b = leg
            return
        leg.detach()
        self._run_front(self.visit.callee_not_placed(leg.no_slot))

    def _dialled_state(self, leg: Leg) -> None:
        fact = state_fact(leg)
        if isinstance(fact, Ringing | Answered | Gone):
            self._run_front(self.visit.dialled(fact))

    def _caller_left_front(self) -> None:
        self._run_front(self.visit.caller_left())

    # -- ends ------------------------------------------------------------------------------

    def _goodbye(self, cause: str) -> None:
        """The platform ends the call: a short tone, then BYE."""
        self.front.play(self.centre.prompts.goodbye(),
                        lambda: self._finish_front(Disposition.FAILED, cause,
                                                   HangupSide.SYSTEM, None))

    def _finish_front(self, disposition: Disposition, cause: str, side: HangupSide,
                      sip_status: int | None) -> None:
        if self.phase is Phase.ENDED:
            return
        if self.ever_answered:
            self._end_answered(side, cause)
            return
        self._run(self.flow.finish(EndCall(self.call_id, now(), disposition, cause, side,
                                           sip_status)))
        self._end_all_but(None)

    def end_now(self, cause: str) -> None:
        if self.phase is not Phase.ENDED:
            self._run_front(self.visit.shutdown(cause))

    def _cancel_stage_timer(self) -> None:
        if self._stage_timer is not None:
            self._stage_timer.cancel()
            self._stage_timer = None


_FRONT_TIMERS = (Timer.KEY_WAIT, Timer.ANNOUNCE)


def _error(outcome: Outcome[Any]) -> str | None:
    return None if outcome.ok else str(outcome.error)
