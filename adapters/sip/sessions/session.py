"""One bridged call on pjsua2: the adapter between a call's legs and its flow.

The flow (``application.b2bua.plain.PlainCall``) decides; the session only
translates. Each pjsua2 callback on one of the call's legs becomes a fact for
the flow (``application.b2bua.legs``), and each action the flow returns is
performed here on pjsua2: responses and hang-ups on legs, new legs placed, the
conference bridge, music on hold, timers, RTP statistics, and the domain
commands put on the command sink. It runs on the pjsua2 thread only.

pjsua2 may call back into the session while the session is itself calling
pjsua2 (hanging up a leg reports DISCONNECTED at once): the flow has moved to
its next state before it returns its actions, so such a fact meets that state.

A call-centre call is the same session with a lane attached
(``centre_session.CentreCall``, by composition: nothing subclasses
``Session``). The lane takes over the steps it changes (a leg's state, keys,
the audio routes, the end) and calls back the plain steps it keeps; it reads
and sets the flow's state through the properties below.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import pjsua2 as pj

from adapters.media.stats import Rated
from adapters.sip.pjsua.legs import Leg, audio_of, state_fact
from adapters.sip.store.sink import CommandSink
from application import log_context
from application.b2bua import actions as act
from application.b2bua.legs import (
    Fact,
    InboundFacts,
    LegRole,
    MediaChanged,
    Placed,
    PlaceFailed,
    ReferFollowed,
    ReferReceived,
    ShutdownAsked,
    TimerFired,
)
from application.b2bua.legs import Timer as FlowTimer
from application.b2bua.plain import Phase, PlainCall, PlainCallSettings, now
from domain.call import HangupSide
from domain.call_commands import CallCommand, EndCall, RecordMediaQuality

# InboundFacts with the session's own names: the worker builds both.
__all__ = ["MEDIA_SAMPLE_INTERVAL", "AudioSource", "CallLane", "InboundFacts", "MediaMonitor",
           "Session", "SessionContext", "TimerHandle"]

log = logging.getLogger(__name__)

MEDIA_SAMPLE_INTERVAL = 5.0  # seconds between RTP statistics samples of a live call


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class AudioSource(Protocol):
    """Music on hold: something that can play into a leg's audio port."""

    def play_to(self, sink: pj.AudioMedia) -> None: ...
    def stop_to(self, sink: pj.AudioMedia) -> None: ...


class MediaMonitor(Protocol):
    """adapters.media.stats.StreamMonitor: per-leg RTP statistics of each call."""

    def sample(self, call_id: UUID, leg: Hashable, stat: pj.StreamStat | None) -> None: ...
    def worst(self, call_id: UUID) -> Rated | None: ...
    def forget(self, call_id: UUID) -> None: ...


class CallLane(Protocol):
    """A call-centre call's steps (``centre_session.CentreCall``), each replacing the
    session's step of that name; it calls back the plain ones it keeps (``plain_*``)."""

    def leg_state(self, leg: Leg) -> None: ...
    def key_pressed(self, leg: Leg, digit: str) -> None: ...
    def end_now(self, cause: str) -> None: ...
    def finish(self, end: EndCall, answered: bool) -> None: ...
    def end_all_but(self, keep: Leg | None) -> None: ...
    def bridge(self) -> None: ...
    def unbridge(self) -> None: ...
    def transfer_answered(self, transferor: Leg, new: Leg) -> None: ...
    def emitted(self, command: CallCommand) -> CallCommand: ...


@dataclass
class SessionContext:
    """What a session needs from its worker."""

    sink: CommandSink
    new_leg: Callable[[LegRole], Leg]
    call_later: Callable[[float, Callable[[], None]], TimerHandle]
    no_answer_timeout: float
    on_end: Callable[[Session], None]
    music_on_hold: AudioSource | None = None
    media: MediaMonitor | None = None
    retry_after: int = 5  # seconds, on our own 503s


class Session:
    def __init__(self, ctx: SessionContext, caller_leg: Leg, facts: InboundFacts) -> None:
        self.ctx = ctx
        self.facts = facts
        settings = PlainCallSettings(ctx.no_answer_timeout, ctx.retry_after)
        self.flow: PlainCall[Leg] = PlainCall(facts, caller_leg, settings, now)
        self.call_id: UUID = self.flow.call_id
        self._timer: TimerHandle | None = None  # no answer, then RTP sampling
        self._music_to: Leg | None = None
        self._leftover_timer: TimerHandle | None = None
        self._bridged: tuple[int, int] | None = None  # conference slots last connected
        self.lane: CallLane | None = None  # a call-centre call's (CentreCall attaches itself)
        caller_leg.listener = self

    # The flow's state (a call-centre call's lane moves it too).

    @property
    def phase(self) -> Phase:
        return self.flow.phase

    @phase.setter
    def phase(self, phase: Phase) -> None:
        self.flow.phase = phase

    @property
    def a(self) -> Leg:
        return self.flow.a

    @property
    def b(self) -> Leg | None:
        return self.flow.b

    @b.setter
    def b(self, leg: Leg | None) -> None:
        self.flow.b = leg

    @property
    def held_by(self) -> Leg | None:
        return self.flow.held_by

    def log_fields(self) -> AbstractContextManager[None]:
        """Bind this call's ids to every line logged inside (pjsip's own included),
        for whoever enters the session: a leg's callback, the worker, a timer."""
        return log_context.for_call(self.call_id, self.facts.tenant, self.facts.sip_call_id)

    # Start and stop.

    def start(self, target: str | None) -> None:
        self.run(self.flow.start(target))

    def initiate(self) -> None:
        self.run(self.flow.initiate())

    def end_now(self, cause: str) -> None:
        """End the call from our side (worker shutdown)."""
        if self.lane is not None:
            self.lane.end_now(cause)
            return
        self.run(self.flow.handle(ShutdownAsked(cause)))

    def end_answered(self, side: HangupSide, cause: str) -> None:
        self.run(self.flow.end_answered(side, cause))

    # Leg callbacks: facts for the flow.

    def leg_state(self, leg: Leg) -> None:
        if self.lane is not None:
            self.lane.leg_state(leg)
        else:
            self.plain_leg_state(leg)

    def plain_leg_state(self, leg: Leg) -> None:
        fact = state_fact(leg)
        if fact is not None:
            self.run(self.flow.handle(fact))

    def leg_media(self, leg: Leg) -> None:
        status = leg.audio_status()
        log.debug("call %s: %s media status %s", self.call_id, leg.label, status)
        self.run(self.flow.handle(MediaChanged(leg, audio_of(status))))

    def leg_transfer_request(self, leg: Leg, prm: pj.OnCallTransferRequestParam) -> None:
        """A REFER: refused, or followed on a new leg pjsua2 dials itself."""
        for action in self.flow.handle(ReferReceived(leg, prm.dstUri)):
            if isinstance(action, act.RefuseRefer):
                prm.statusCode = action.status
            elif isinstance(action, act.FollowRefer):
                new = self.ctx.new_leg(LegRole.CALLEE)
                new.listener = self
                prm.newCall = new.dialog
                self.run(self.flow.handle(ReferFollowed(leg, new, action.target)))

    def leg_dtmf(self, leg: Leg, digit: str) -> None:
        if self.lane is not None:
            self.lane.key_pressed(leg, digit)
            return
        log.debug("call %s: DTMF %s from the %s (not used on a plain call)", self.call_id,
                  digit, leg.role)

    def leg_stream_closing(self, leg: Leg, stream_index: int) -> None:
        # The last chance to read this stream's statistics (it is being destroyed).
        if self.ctx.media is not None and self.phase is Phase.ANSWERED:
            self.ctx.media.sample(self.call_id, leg, leg.stream_stat(stream_index))

    # The flow's actions, performed.

    def run(self, actions: list[act.Action[Leg]]) -> None:
        for action in actions:
            _PERFORM[type(action)](self, action)

    def _place(self, role: LegRole, target: str) -> None:
        leg = self.ctx.new_leg(LegRole(role.value))
        leg.listener = self
        placed: Fact[Leg] = Placed(leg)
        if not leg.place(target):
            leg.detach()
            placed = PlaceFailed(leg.no_slot)
        self.run(self.flow.handle(placed))

    def _start_timer(self, timer: FlowTimer, seconds: float) -> None:
        if timer is FlowTimer.NO_ANSWER:
            self._timer = self.ctx.call_later(seconds, self._no_answer)
        else:
            self._leftover_timer = self.ctx.call_later(seconds, self._end_leftover)

    def _no_answer(self) -> None:
        self._timer = None
        self.run(self.flow.handle(TimerFired(FlowTimer.NO_ANSWER)))

    def _end_leftover(self) -> None:
        self._leftover_timer = None
        self.run(self.flow.handle(TimerFired(FlowTimer.TRANSFEROR_GRACE)))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _transfer_answered(self, transferor: Leg, new: Leg) -> None:
        if self.lane is not None:
            self.lane.transfer_answered(transferor, new)
        else:
            self.plain_transfer_answered(new)

    def plain_transfer_answered(self, new: Leg) -> None:
        log.info("call %s: transfer to %s answered", self.call_id, new.label)

    def _finish(self, end: EndCall, answered: bool) -> None:
        if self.lane is not None:
            self.lane.finish(end, answered)
        else:
            self.plain_finish(end, answered)

    def plain_finish(self, end: EndCall, answered: bool) -> None:
        self._cancel_timer()
        self._stop_hold_music()
        if answered:
            self._report_media_quality(end.occurred_at)
        self.emit(end)
        self.ctx.on_end(self)

    def end_all_but(self, keep: Leg | None) -> None:
        if self.lane is not None:
            self.lane.end_all_but(keep)
        else:
            self.plain_end_all_but(keep)

    def plain_end_all_but(self, keep: Leg | None) -> None:
        if self._leftover_timer is not None:
            self._leftover_timer.cancel()
        for leg in self.flow.legs():
            if leg is not keep:
                leg.end()

    def emit(self, command: CallCommand) -> None:
        if self.lane is not None:
            command = self.lane.emitted(command)
        self.ctx.sink.put(command)

    # Media: bridge, hold music, statistics.

    def bridge(self) -> None:
        if self.lane is not None:
            self.lane.bridge()
        else:
            self._plain_bridge()

    def _plain_bridge(self) -> None:
        """Connect both parties' audio both ways, or the waiting party to music."""
        one, two = self.flow.parties()
        waiting = self.flow.waiting_party()
        if waiting is not None:
            self.play_hold_music(waiting)
            return
        audio_one = one.audio() if one is not None else None
        audio_two = two.audio() if two is not None else None
        if audio_one is not None and audio_two is not None:
            # Again after every media update: a re-INVITE may give a leg a new port.
            audio_one.startTransmit(audio_two)
            audio_two.startTransmit(audio_one)
            slots = (audio_one.getPortId(), audio_two.getPortId())
            if slots != self._bridged:
                self._bridged = slots
                log.info("call %s: audio bridged (conference slots %d <-> %d)", self.call_id,
                         *slots)

    def _unbridge(self) -> None:
        if self.lane is not None:
            self.lane.unbridge()
            return
        self._bridged = None
        audio_a = self.a.audio()
        audio_b = self.b.audio() if self.b is not None else None
        if audio_a is not None and audio_b is not None:
            audio_a.stopTransmit(audio_b)
            audio_b.stopTransmit(audio_a)

    def play_hold_music(self, leg: Leg) -> None:
        audio = leg.audio()
        if self.ctx.music_on_hold is None or audio is None:
            return
        self.ctx.music_on_hold.play_to(audio)  # again after a re-INVITE: its port may be new
        if self._music_to is not leg:
            log.info("call %s: hold music to the %s", self.call_id, leg.role)
        self._music_to = leg

    def _stop_hold_music(self) -> None:
        leg = self._music_to
        if leg is None or self.ctx.music_on_hold is None:
            return
        self._music_to = None
        audio = leg.audio()
        if audio is not None:
            self.ctx.music_on_hold.stop_to(audio)

    def start_sampling(self) -> None:
        """Sample RTP statistics from now on, unless already sampling (a talk resumed)."""
        if self.ctx.media is not None and self._timer is None:
            self._timer = self.ctx.call_later(MEDIA_SAMPLE_INTERVAL, self._sample_media)

    def _sample_media(self) -> None:
        self._timer = None
        if self.phase is Phase.ANSWERED:
            self._sample_live_legs()
            self._timer = self.ctx.call_later(MEDIA_SAMPLE_INTERVAL, self._sample_media)

    def _sample_live_legs(self) -> None:
        if self.ctx.media is None:
            return
        for leg in (self.a, self.b):
            audio = leg.audio_info() if leg is not None else None
            if leg is not None and audio is not None:
                self.ctx.media.sample(self.call_id, leg, leg.stream_stat(audio.index))

    def _report_media_quality(self, at: datetime) -> None:
        """The call's quality (its worst leg), reported before the call ends."""
        if self.ctx.media is None:
            return
        self._sample_live_legs()
        rated = self.ctx.media.worst(self.call_id)
        self.ctx.media.forget(self.call_id)
        if rated is None:
            return  # no RTP received on any leg: nothing to rate
        f = rated.figures
        self.emit(RecordMediaQuality(self.call_id, at, rated.mos, round(f.jitter_ms, 2),
                                      round(f.loss_pct, 2),
                                      None if f.rtt_ms is None else round(f.rtt_ms, 2)))


# How each of the flow's actions is performed (the methods are the
# session's, so a call-centre call's lane takes part).
_PERFORM: dict[type[Any], Callable[[Session, Any], None]] = {
    act.Emit: lambda s, a: s.emit(a.command),
    act.Respond: lambda _, a: a.leg.respond(a.status),
    act.HangUp: lambda _, a: a.leg.end(a.status, dict(a.headers) if a.headers else None),
    act.HangUpAllBut: lambda s, a: s.end_all_but(a.keep),
    act.Place: lambda s, a: s._place(a.role, a.target),
    act.Bridge: lambda s, _: s.bridge(),
    act.Unbridge: lambda s, _: s._unbridge(),
    act.StopHoldMusic: lambda s, _: s._stop_hold_music(),
    act.Hold: lambda _, a: a.leg.hold(),
    act.Unhold: lambda _, a: a.leg.unhold(),
    act.StartTimer: lambda s, a: s._start_timer(a.timer, a.seconds),
    act.CancelTimer: lambda s, _: s._cancel_timer(),
    act.SampleMedia: lambda s, _: s.start_sampling(),
    act.TransferAnswered: lambda s, a: s._transfer_answered(a.transferor, a.new),
    act.Finish: lambda s, a: s._finish(a.end, a.answered),
}
