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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import pjsua2 as pj

from adapters.media.player import MusicLibrary
from adapters.media.prompts import Prompts
from adapters.media.recorder import RecordingStore
from adapters.sip.pjsua.legs import Leg
from adapters.sip.routing.directory import Directory, QueueSettings
from adapters.sip.sessions.front import FrontAudio
from adapters.sip.sessions.session import Session, SessionContext, TimerHandle
from adapters.sip.store.centre_link import CentreLink, Outcome
from application.b2bua import actions as act
from application.b2bua import front as flow
from application.b2bua.front import Front, Stage
from application.b2bua.inbound import InboundFacts
from application.b2bua.legs import LegRole, Timer
from application.b2bua.outcomes import NO_CAPACITY, NO_ROUTE, callee_failure
from application.b2bua.outcomes import Outcome as SipOutcome
from application.b2bua.plain import Phase, now
from application.call_control import ControlReply
from domain.addressing import Target, TargetKind
from domain.call import Disposition, HangupSide
from domain.call_commands import EndCall, QueueCall, RingCall
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
                                       centre.directory.describe, now)
        self.queue: QueueSettings | None = None
        self.queue_id: UUID | None = None
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

    def _run_front(self, actions: list[flow.FrontAction]) -> None:
        for action in actions:
            self._perform_front(action)

    def _perform_front(self, action: flow.FrontAction) -> None:
        match action:
            case flow.PlayMenu(prompt=prompt):
                self.front.play(self.centre.prompts.menu(prompt), self._menu_said)
            case flow.StopPrompt():
                self.front.stop_prompt()
            case act.StartTimer(timer=Timer.KEY_WAIT, seconds=seconds):
                self._stage_timer = self.ctx.call_later(seconds, self._key_wait_over)
            case act.CancelTimer(timer=Timer.KEY_WAIT):
                self._cancel_stage_timer()
            case flow.EnterQueue(queue_id=queue_id):
                self._enter_queue(queue_id)
            case flow.DialNumber(number=number):
                self._dial(self.centre.resolve_number(number))
            case flow.Goodbye(cause=cause):
                self._goodbye(cause)
            case _:
                self._run([action])  # a call flow action (Emit)

    def _menu_said(self) -> None:
        self._run_front(self.visit.prompt_ended())

    def _key_wait_over(self) -> None:
        self._stage_timer = None
        self._run_front(self.visit.timer_fired(Timer.KEY_WAIT))

    def leg_dtmf(self, leg: Leg, digit: str) -> None:
        self._run_front(self.visit.key_pressed(leg, digit))

    # -- queue ---------------------------------------------------------------------------

    def _enter_queue(self, queue_id: UUID, transferred_from: UUID | None = None) -> None:
        settings = self.centre.directory.queue(queue_id)
        key = settings.key if settings is not None else str(queue_id)
        self._route_note(Target.queue(queue_id))
        self.stage, self.queue, self.queue_id = Stage.QUEUE, settings, queue_id
        self._cancel_stage_timer()
        at = now()
        self._emit(QueueCall(self.call_id, at, key))
        call_id = self.call_id
        self.centre.link.submit(
            f"enqueue {call_id} in {key}",
            lambda s: s.enqueue_call(queue_id, call_id, 0, at, transferred_from),
            lambda outcome: self._enqueued(queue_id, outcome))
        self._hear_queue()

    def _enqueued(self, queue_id: UUID, outcome: Outcome[Any]) -> None:
        if outcome.ok or self.phase is Phase.ENDED or queue_id != self.queue_id:
            return
        log.error("call %s: the queue refused it: %s", self.call_id, outcome.error)
        self._goodbye("queue_refused")

    def _hear_queue(self) -> None:
        name = self.queue.music_on_hold if self.queue is not None else "default"
        self.front.music(self.centre.music.music(name))
        if self.queue is not None and self.queue.announce_position:
            self._schedule_announcement(1.0)

    def _schedule_announcement(self, delay: float) -> None:
        if self._announce_timer is not None:
            self._announce_timer.cancel()
        self._announce_timer = self.ctx.call_later(delay, self._ask_position)

    def _ask_position(self) -> None:
        self._announce_timer = None
        queue_id, call_id = self.queue_id, self.call_id
        if self.stage is not Stage.QUEUE or queue_id is None:
            return
        self.centre.link.submit(f"position of {call_id}",
                                lambda s: s.get(Queue, queue_id).position(call_id),
                                self._announce)

    def _announce(self, outcome: Outcome[int]) -> None:
        if self.stage is not Stage.QUEUE or not outcome.ok or outcome.value is None:
            return
        log.info("call %s: position %d announced", self.call_id, outcome.value)
        self.front.play(self.centre.prompts.position(outcome.value), lambda: None)
        self._schedule_announcement(self.centre.announce_every_s)

    def queue_left(self, event: Queue.CallOverflowed | Queue.CallTransferredOut) -> None:
        """The platform moved the waiting call (overflow, or a transfer of a waiting call)."""
        if self.stage not in (Stage.QUEUE, Stage.CONNECTING) \
                or event.originator_id != self.queue_id:
            return
        target = Target(TargetKind(event.target_kind), event.target_value)
        log.info("call %s: left its queue for %s", self.call_id, target)
        self._withdraw_rings()
        if target.kind is TargetKind.QUEUE:
            # The platform enqueued it there in the same transaction.
            settings = self.centre.directory.queue(target.aggregate_id)
            self.queue, self.queue_id = settings, target.aggregate_id
            key = settings.key if settings is not None else str(target.value)
            self._emit(QueueCall(self.call_id, now(), key))
            self._hear_queue()
        else:
            self.queue = self.queue_id = None
            self._go(target)


    # -- dialling a number (from a menu, an overflow, a blind transfer) --------------------

    def _dial(self, uri: str | None) -> None:
        self.stage = Stage.DIALLING
        self.front.music(self.centre.music.music("default"))
        leg = self.ctx.new_leg(LegRole.CALLEE) if uri is not None else None
        if leg is not None and uri is not None:
            leg.listener = self
            if leg.place(uri):
                self.b = leg
                return
            leg.detach()
        if uri is None or leg is None:
            self._dial_failed(NO_ROUTE, HangupSide.SYSTEM)
        else:
            self._dial_failed(NO_CAPACITY if leg.no_slot else callee_failure(0),
                              HangupSide.SYSTEM)

    def _dialled_state(self, leg: Leg) -> None:
        if leg.state == pj.PJSIP_INV_STATE_EARLY and leg.last_status in (180, 183):
            if not self.ever_answered:
                self._emit(RingCall(self.call_id, now()))
        elif leg.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self._talk(now())
        elif leg.disconnected:
            self.b = None
            self._dial_failed(callee_failure(leg.last_status), HangupSide.CALLEE)

    def _dial_failed(self, outcome: SipOutcome, side: HangupSide) -> None:
        if self.ever_answered:
            self._end_answered(HangupSide.SYSTEM, "transfer_failed")
        else:
            self._finish_front(outcome.disposition, outcome.hangup_cause, side,
                               outcome.relay_status)

    def _caller_left_front(self) -> None:
        if self.stage in (Stage.QUEUE, Stage.CONNECTING) and self.queue_id is not None:
            at, queue_id, call_id = now(), self.queue_id, self.call_id
            self.centre.link.submit(f"abandon {call_id}",
                                    lambda s: s.abandon_call(queue_id, call_id, at))
            disposition, cause = Disposition.ABANDONED, "caller_abandoned"
        else:
            disposition, cause = Disposition.CANCELLED, "originator_cancel"
        if self.ever_answered:  # back in a queue after a transfer: the call was answered
            self._end_answered(HangupSide.CALLER, cause)
        else:
            self._finish_front(disposition, cause, HangupSide.CALLER, None)

    # -- ends ------------------------------------------------------------------------------

    def _goodbye(self, cause: str) -> None:
        """The platform ends the call: a short tone, then BYE."""
        self.stage = Stage.STARTING
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
        if self.phase is Phase.ENDED:
            return
        if self.stage in (Stage.QUEUE, Stage.CONNECTING) and self.queue_id is not None:
            # No command says "the platform dropped it": leave the queue as abandoned.
            at, queue_id, call_id = now(), self.queue_id, self.call_id
            self.centre.link.submit(f"drop {call_id}",
                                    lambda s: s.abandon_call(queue_id, call_id, at))
        if self.ever_answered:
            self._end_answered(HangupSide.SYSTEM, cause)
        else:
            self._finish_front(Disposition.FAILED, cause, HangupSide.SYSTEM, 503)


    def _cancel_stage_timer(self) -> None:
        if self._stage_timer is not None:
            self._stage_timer.cancel()
            self._stage_timer = None
