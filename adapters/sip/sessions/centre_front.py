"""A call-centre call before anyone talks to the caller, on pjsua2: the
platform answers the caller's leg, then IVR menus, a queue with music on hold
and position announcements, or a number being dialled.

Where the caller goes and the IVR's keys are decided by the flow
(``application.b2bua.front.Front``: its stages are documented there);
``CentreFront`` performs its actions (prompts, music, timers, dialling) on the
call's ``Session``, with ``FrontAudio`` (what the caller hears meanwhile). It
is a part of ``centre_session.CentreCall``, which runs every action of the
call-centre flows and hands the front's here; it adds the agents (offers, the
talk, supervisors, recording).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import pjsua2 as pj

from adapters.media.player import MusicLibrary, PromptPlayer
from adapters.media.prompts import Prompt, Prompts
from adapters.media.recorder import RecordingStore
from adapters.sip.pjsua.legs import Leg, state_fact
from adapters.sip.routing.directory import Directory
from adapters.sip.sessions.session import AudioSource, Session, TimerHandle
from adapters.sip.store.centre_link import CentreLink
from application.b2bua import actions as act
from application.b2bua import front as flow
from application.b2bua.front import Front, QueueInfo, Stage
from application.b2bua.legs import Answered, Gone, LegRole, Ringing, Timer
from application.b2bua.plain import Phase, now
from application.call_control import ControlReply
from domain.addressing import Target, TargetKind
from domain.call import Disposition, HangupSide
from domain.call_commands import EndCall
from domain.queue import Queue

log = logging.getLogger(__name__)


__all__ = ["CentreContext", "CentreFront", "FrontAudio", "Stage"]


Later = Callable[[float, Callable[[], None]], TimerHandle]


class FrontAudio:
    """What a caller hears while the platform, not a person, holds the line:
    prompts (one at a time, interruptible) and music on hold underneath.

    The caller's audio port may not exist yet when a prompt is asked for (media
    comes up with the SDP answer, or with the ACK of a late offer), and a
    re-INVITE may give it a new port: ``refresh`` (called on every media change)
    connects what should be playing to the port the leg has now. A prompt's end
    is timed from its known length, starting when it really starts playing.
    """

    def __init__(self, leg: Leg, call_later: Later) -> None:
        self._leg = leg
        self._later = call_later
        self._music: AudioSource | None = None  # wanted
        self._music_on: tuple[AudioSource, int] | None = None  # playing, to which bridge slot
        self._pending: tuple[Prompt, Callable[[], None], Callable[[], None]] | None = None
        self._prompt: PromptPlayer | None = None
        self._prompt_timer: TimerHandle | None = None

    @property
    def prompting(self) -> bool:
        return self._prompt is not None or self._pending is not None

    def play(self, prompt: Prompt, then: Callable[[], None],
             failed: Callable[[], None] | None = None) -> None:
        """Play ``prompt`` (music pauses), then call ``then``; ``failed`` (default:
        ``then``) if pjsua2 cannot play it."""
        self.stop_prompt()
        self._pending = (prompt, then, failed or then)
        self.refresh()

    def skip(self, then: Callable[[], None]) -> None:
        """No prompt to play after all: ``then`` at once, as the next timer callback
        (not inside the action being performed), unless a prompt is stopped first."""
        self.stop_prompt()
        self._call_soon(then)

    def music(self, source: AudioSource | None) -> None:
        self._music = source
        self.refresh()

    def stop_prompt(self) -> None:
        self._pending = None
        if self._prompt_timer is not None:
            self._prompt_timer.cancel()
            self._prompt_timer = None
        if self._prompt is not None:
            self._prompt.stop()
            self._prompt = None

    def silence(self) -> None:
        """Stop everything (the caller is about to talk to someone, or leave)."""
        self.stop_prompt()
        self._music = None
        self._apply_music(None)

    def refresh(self) -> None:
        audio = self._leg.audio()
        if audio is None:
            return  # no media yet: done again from the next media callback
        if self._pending is not None:
            self._start_prompt(audio)
        self._apply_music(None if self._prompt is not None else (self._music, audio))

    def _start_prompt(self, audio: pj.AudioMedia) -> None:
        assert self._pending is not None
        prompt, then, failed = self._pending
        self._pending = None
        self._apply_music(None)
        try:
            self._prompt = PromptPlayer(prompt.path, audio, self._later)
        except pj.Error as error:
            log.error("cannot play %s: %s", prompt.path, error.info())
            self._call_soon(failed)
            return

        def ended() -> None:
            self._prompt_timer = None
            if self._prompt is not None:
                self._prompt.stop()
                self._prompt = None
            self.refresh()  # the music comes back
            then()
        self._prompt_timer = self._later(prompt.seconds, ended)

    def _call_soon(self, then: Callable[[], None]) -> None:
        # Held where the prompt's end timer is: a key (stop_prompt) cancels it, or the
        # next menu's key wait would start early, during that menu's prompt.
        def due() -> None:
            self._prompt_timer = None
            then()
        self._prompt_timer = self._later(0.0, due)

    def _apply_music(self, wanted: tuple[AudioSource | None, pj.AudioMedia] | None) -> None:
        source, audio = wanted if wanted is not None else (None, None)
        slot = int(audio.getPortId()) if audio is not None else -1
        if self._music_on is not None and (source, slot) != self._music_on:
            playing, _ = self._music_on
            current = self._leg.audio()
            if current is not None:
                playing.stop_to(current)
            self._music_on = None
        if source is not None and audio is not None:
            source.play_to(audio)
            self._music_on = (source, slot)


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


class CentreFront:
    """The caller's way before an agent or a number answers, on the call's ``Session``."""

    def __init__(self, session: Session, centre: CentreContext,
                 run: Callable[[Sequence[Any]], None]) -> None:
        self.session = session
        self.centre = centre
        self._run = run  # CentreCall.run: performs any call-centre flow's actions
        # Where the caller is and where the IVR sends them: the flow's.
        self.visit: Front[Leg] = Front(session.call_id, session.a, centre.directory.menu,
                                       centre.directory.queue, centre.directory.describe,
                                       centre.announce_every_s, now,
                                       no_answer_s=session.ctx.no_answer_timeout)
        self.audio = FrontAudio(session.a, session.ctx.call_later)
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
    def ever_answered(self) -> bool:
        return self.visit.ever_answered

    @ever_answered.setter
    def ever_answered(self, answered: bool) -> None:
        self.visit.ever_answered = answered

    # -- start ---------------------------------------------------------------------------

    def start(self, destination: Target) -> None:
        """Answer the caller's leg ourselves (media only) and go to ``destination``."""
        self.session.initiate()
        self.session.a.respond(200)
        self._run(self.visit.go(destination))

    # -- the front flow's actions, performed ---------------------------------------------

    def perform(self, action: Any) -> bool:
        """Perform one of the front's actions (False: not one of them)."""
        prompts = self.centre.prompts
        match action:
            case flow.PlayMenu(prompt=prompt, tenant=tenant):
                self._say(lambda: prompts.menu(prompt, tenant), self._menu_said)
            case flow.PlayRecording(name=name, tenant=tenant):
                self._say(lambda: prompts.recording(name, tenant), self._recording_played,
                          self._recording_failed)
            case flow.StopPrompt():
                self.audio.stop_prompt()
            case flow.PlayMusic(name=name, tenant=tenant):
                self.audio.music(self.centre.music.music(name, tenant))
            case flow.PlayPosition(position=position):
                self._say(lambda: prompts.position(position), lambda: None)
            case act.StartTimer(timer=timer, seconds=seconds) if timer in _FRONT_TIMERS:
                self._start_front_timer(timer, seconds)
            case act.CancelTimer(timer=timer) if timer in _FRONT_TIMERS:
                self._cancel_front_timer(timer)
            case _:
                return self._perform_move(action)
        return True

    def _perform_move(self, action: Any) -> bool:
        """The front's actions that move the call: dial, end."""
        match action:
            case flow.DialNumber(number=number):
                self.dial(self.centre.resolve_number(number))
            case flow.PlaceCallee(uri=uri):
                self._place_callee(uri)
            case flow.ClearCallee():
                self.session.b = None
            case flow.EndAnswered(side=side, cause=cause):
                self.session.end_answered(side, cause)
            case flow.Goodbye(cause=cause):
                self._goodbye(cause)
            case flow.EndVisit(disposition=disposition, cause=cause, side=side,
                               sip_status=status, at=at):
                self.finish(disposition, cause, side, status, at)
            case _:
                return False
        return True

    def _start_front_timer(self, timer: Timer, seconds: float) -> None:
        self._cancel_front_timer(timer)  # a replaced handle left armed would fire too

        def fired() -> None:
            self._set_front_timer(timer, None)  # it has fired: nothing left to cancel
            self._run(self.visit.timer_fired(timer))
        self._set_front_timer(timer, self.session.ctx.call_later(seconds, fired))

    def _set_front_timer(self, timer: Timer, handle: TimerHandle | None) -> None:
        if timer in _STAGE_TIMERS:  # one at a time: a menu's key wait, a number's ringing
            self._stage_timer = handle
        else:
            self._announce_timer = handle

    def _cancel_front_timer(self, timer: Timer) -> None:
        if timer in _STAGE_TIMERS:
            self.cancel_stage_timer()
        elif self._announce_timer is not None:
            self._announce_timer.cancel()
            self._announce_timer = None

    def _say(self, make: Callable[[], Prompt | None], then: Callable[[], None],
             failed: Callable[[], None] | None = None) -> None:
        """Play the prompt ``make`` gives, then ``then``. None, or a file that cannot
        be read or written, goes on as a prompt pjsua2 cannot play does: ``failed``
        (default ``then``) is called, so the caller is never left in silence."""
        try:
            prompt = make()
        except (OSError, ValueError) as error:
            log.error("call %s: no prompt to play: %s", self.session.call_id, error)
            prompt = None
        if prompt is None:
            self.audio.skip(failed or then)
        else:
            self.audio.play(prompt, then, failed)

    def _menu_said(self) -> None:
        self._run(self.visit.prompt_ended())

    def _recording_played(self) -> None:
        self._run(self.visit.recording_ended(played=True))

    def _recording_failed(self) -> None:
        self._run(self.visit.recording_ended(played=False))

    # -- queue ---------------------------------------------------------------------------

    def enter_queue(self, queue_id: UUID, transferred_from: UUID | None = None) -> None:
        self._run(self.visit.enter_queue(queue_id, transferred_from))

    def queue_left(self, event: Queue.CallOverflowed | Queue.CallTransferredOut) -> None:
        """The platform moved the waiting call (overflow, or a transfer of a waiting call)."""
        target = Target(TargetKind(event.target_kind), event.target_value)
        self._run(self.visit.queue_left(event.originator_id, target))

    # -- dialling a number (from a menu, an overflow, a blind transfer) --------------------

    def dial(self, uri: str | None) -> None:
        self._run(self.visit.dial(uri))

    def _place_callee(self, uri: str) -> None:
        leg = self.session.ctx.new_leg(LegRole.CALLEE)
        leg.listener = self.session
        if leg.place(uri):
            self.session.b = leg
            return
        leg.detach()
        self._run(self.visit.callee_not_placed(leg.no_slot))

    def dialled_state(self, leg: Leg) -> None:
        fact = state_fact(leg)
        if isinstance(fact, Ringing | Answered | Gone):
            self._run(self.visit.dialled(fact))

    def caller_left(self) -> None:
        self._run(self.visit.caller_left())

    # -- ends ------------------------------------------------------------------------------

    def _goodbye(self, cause: str) -> None:
        """The platform ends the call: a short tone, then BYE."""
        self._say(self.centre.prompts.goodbye,
                  lambda: self.finish(Disposition.FAILED, cause, HangupSide.SYSTEM, None))

    def finish(self, disposition: Disposition, cause: str, side: HangupSide,
               sip_status: int | None, at: datetime | None = None) -> None:
        session = self.session
        if session.phase is Phase.ENDED:
            return
        if self.ever_answered:
            session.end_answered(side, cause)
            return
        session.run(session.flow.finish(EndCall(session.call_id, at or now(), disposition,
                                                cause, side, sip_status)))
        session.end_all_but(None)

    def close(self) -> None:
        """The call ends: no more stages, timers or sound."""
        self.stage = Stage.ENDED
        self.cancel_stage_timer()
        if self._announce_timer is not None:
            self._announce_timer.cancel()
        self.audio.silence()

    def cancel_stage_timer(self) -> None:
        if self._stage_timer is not None:
            self._stage_timer.cancel()
            self._stage_timer = None


_STAGE_TIMERS = (Timer.KEY_WAIT, Timer.NO_ANSWER)
_FRONT_TIMERS = (*_STAGE_TIMERS, Timer.ANNOUNCE)
