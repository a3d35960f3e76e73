"""One bridged call: the caller's leg, the callee's leg, and what happens between them.

The session turns SIP facts on either leg into (a) SIP actions on the other leg
(relay 18x and the answer, CANCEL/BYE the other side, propagate hold) and (b)
domain commands put on the command sink. It runs on the pjsua2 thread only.

pjsua2 may call back into the session while the session is itself calling
pjsua2 (hanging up a leg reports DISCONNECTED at once), so every transition
updates the session's state *before* touching a leg.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Protocol
from uuid import UUID

import pjsua2 as pj

from adapters.media.stats import Rated
from adapters.sip.commands import (
    AnswerCall,
    Command,
    CommandSink,
    EndCall,
    HoldCall,
    InitiateCall,
    RecordMediaQuality,
    ResumeCall,
    RingCall,
    RouteCall,
    TransferCall,
)
from adapters.sip.legs import AUDIO_ACTIVE, AUDIO_REMOTE_HOLD, Leg, LegRole
from application import log_context
from application.b2bua.outcomes import (
    NO_ANSWER_TIMEOUT,
    NO_CAPACITY,
    NO_ROUTE,
    Outcome,
    callee_failure,
)
from domain.addressing import DEFAULT_TENANT
from domain.call import Call, Direction, Disposition, HangupSide, TransferKind

log = logging.getLogger(__name__)

TRANSFEROR_GRACE = 5.0  # seconds a transferor may stay after its transfer is answered
MEDIA_SAMPLE_INTERVAL = 5.0  # seconds between RTP statistics samples of a live call


class Timer(Protocol):
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


@dataclass
class SessionContext:
    """What a session needs from its worker."""

    sink: CommandSink
    new_leg: Callable[[LegRole], Leg]
    call_later: Callable[[float, Callable[[], None]], Timer]
    no_answer_timeout: float
    on_end: Callable[[Session], None]
    music_on_hold: AudioSource | None = None
    media: MediaMonitor | None = None
    retry_after: int = 5  # seconds, on our own 503s


class Phase(Enum):
    ROUTING = "routing"
    ANSWERED = "answered"
    ENDED = "ended"


@dataclass(frozen=True)
class InboundFacts:
    sip_call_id: str
    caller: str
    callee: str
    tenant: str = DEFAULT_TENANT  # of the number dialled (the directory knows it)
    direction: Direction = Direction.INBOUND
    trunk: str | None = None  # the provisioned number the call came in (or goes out) on

    @classmethod
    def classified(cls, sip_call_id: str, caller: str, callee: str,
                   numbers: NumberBook | None) -> InboundFacts:
        """The facts with the call's direction, trunk and tenant, from the numbers
        the tenants provisioned: a call TO one of them came in from outside
        (inbound, on that number); a call FROM one of them (our number presented as
        the caller) goes out (outbound, on that number); a call between two
        numbers nobody provisioned (phone to phone through the dialplan) is
        internal, of the default tenant."""
        if numbers is not None and numbers.owns(callee):
            return cls(sip_call_id, caller, callee, numbers.tenant(callee),
                       Direction.INBOUND, callee)
        if numbers is not None and numbers.owns(caller):
            return cls(sip_call_id, caller, callee, numbers.tenant(caller),
                       Direction.OUTBOUND, caller)
        return cls(sip_call_id, caller, callee, DEFAULT_TENANT, Direction.INTERNAL)


class NumberBook(Protocol):
    """The provisioned numbers (adapters/sip/directory.py's Directory)."""

    def owns(self, did: str) -> bool: ...

    def tenant(self, did: str) -> str: ...


def now() -> datetime:
    return datetime.now(UTC)


def refer_target(refer_to: str) -> str:
    """The URI of a Refer-To value, without its name-addr angle brackets."""
    inner = refer_to.strip()
    if inner.startswith("<") and ">" in inner:
        inner = inner[1 : inner.index(">")]
    return inner


class Session:
    def __init__(self, ctx: SessionContext, caller_leg: Leg, facts: InboundFacts) -> None:
        self.ctx = ctx
        self.facts = facts
        self.call_id: UUID = Call.id_for(facts.sip_call_id)
        self.a: Leg = caller_leg
        self.b: Leg | None = None
        self.phase = Phase.ROUTING
        self.rang = False
        self.relayed: set[int] = set()
        self.held_by: Leg | None = None
        self.transfer: tuple[Leg, Leg] | None = None  # (transferor, new leg)
        self._timer: Timer | None = None
        self._music_to: Leg | None = None
        self._leftover: Leg | None = None  # a transferor still connected after its transfer
        self._leftover_timer: Timer | None = None
        self._bridged: tuple[int, int] | None = None  # conference slots last connected
        caller_leg.listener = self

    def log_fields(self) -> AbstractContextManager[None]:
        """Bind this call's ids to every line logged inside (pjsip's own included),
        for whoever enters the session: a leg's callback, the worker, a timer."""
        return log_context.for_call(self.call_id, self.facts.tenant, self.facts.sip_call_id)

    # Start.

    def start(self, target: str | None) -> None:
        self._initiate()
        self._route(target)

    def _initiate(self) -> None:
        f = self.facts
        self._emit(InitiateCall(self.call_id, now(), f.caller, f.callee, f.direction, f.trunk,
                                f.sip_call_id, f.tenant))

    def _route(self, target: str | None) -> None:
        f = self.facts
        if target is None:
            log.info("call %s: no route for %r: 404", self.call_id, f.callee)
            self._end_unanswered(NO_ROUTE, HangupSide.SYSTEM)
            return
        self._emit(RouteCall(self.call_id, now(), target))
        self._timer = self.ctx.call_later(self.ctx.no_answer_timeout, self._no_answer)
        self.b, no_slot = self._place(target)
        if self.b is None:
            self._end_unanswered(NO_CAPACITY if no_slot else callee_failure(0), HangupSide.SYSTEM)

    def _place(self, target: str) -> tuple[Leg | None, bool]:
        """The callee's leg, or None and whether pjsua had no call slot for it."""
        leg = self.ctx.new_leg(LegRole.CALLEE)
        leg.listener = self
        if not leg.place(target):
            leg.detach()
            return None, leg.no_slot
        return leg, False

    # Leg callbacks.

    def leg_state(self, leg: Leg) -> None:
        if self.phase is Phase.ENDED:
            return
        if self.transfer is not None and leg in self.transfer:
            self._transfer_leg_state(leg)
        elif leg is self.b:
            self._callee_state(leg)
        elif leg is self.a:
            self._caller_state(leg)

    def _callee_state(self, leg: Leg) -> None:
        state, status = leg.state, leg.last_status
        if state == pj.PJSIP_INV_STATE_EARLY and self.phase is Phase.ROUTING:
            self._relay_provisional(status)
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and self.phase is Phase.ROUTING:
            self._answered()
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            if self.phase is Phase.ANSWERED:
                self._end_answered(HangupSide.CALLEE, "normal_clearing")
            else:
                self._end_unanswered(callee_failure(status), HangupSide.CALLEE)

    def _caller_state(self, leg: Leg) -> None:
        if not leg.disconnected:
            return
        if self.phase is Phase.ANSWERED:
            self._end_answered(HangupSide.CALLER, "normal_clearing")
        else:
            cancelled = Outcome(Disposition.CANCELLED, "originator_cancel", 487)
            self._end_unanswered(cancelled, HangupSide.CALLER)

    def _relay_provisional(self, status: int) -> None:
        if status not in (180, 183) or status in self.relayed:
            return
        self.relayed.add(status)
        if not self.rang:
            self.rang = True
            self._emit(RingCall(self.call_id, now()))
        self.a.respond(status)

    def _answered(self) -> None:
        self.phase = Phase.ANSWERED
        self._cancel_timer()
        self._emit(AnswerCall(self.call_id, now()))
        self.a.respond(200)
        self._bridge()
        if self.ctx.media is not None:
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
        self._emit(RecordMediaQuality(self.call_id, at, rated.mos, round(f.jitter_ms, 2),
                                      round(f.loss_pct, 2),
                                      None if f.rtt_ms is None else round(f.rtt_ms, 2)))

    def _no_answer(self) -> None:
        self._timer = None
        if self.phase is Phase.ROUTING:
            log.info("call %s: no answer within %ss", self.call_id, self.ctx.no_answer_timeout)
            self._end_unanswered(NO_ANSWER_TIMEOUT, HangupSide.SYSTEM)

    # Ends.

    def _end_unanswered(self, outcome: Outcome, side: HangupSide) -> None:
        self._finish(EndCall(self.call_id, now(), outcome.disposition, outcome.hangup_cause,
                             side, outcome.relay_status))
        overloaded = outcome.relay_status == 503
        self.a.end(outcome.relay_status,
                   {"Retry-After": str(self.ctx.retry_after)} if overloaded else None)
        self._end_all_but(self.a)

    def _end_answered(self, side: HangupSide, cause: str) -> None:
        self._finish(EndCall(self.call_id, now(), Disposition.ANSWERED, cause, side, 200))
        self._end_all_but(None)

    def end_now(self, cause: str) -> None:
        """End the call from our side (worker shutdown)."""
        if self.phase is Phase.ANSWERED:
            self._end_answered(HangupSide.SYSTEM, cause)
        elif self.phase is Phase.ROUTING:
            self._end_unanswered(Outcome(Disposition.FAILED, cause, 503), HangupSide.SYSTEM)

    def _finish(self, end: EndCall) -> None:
        was_answered = self.phase is Phase.ANSWERED
        self.phase = Phase.ENDED
        self._cancel_timer()
        self._stop_hold_music()
        if was_answered:
            self._report_media_quality(end.occurred_at)
        self._emit(end)
        self.ctx.on_end(self)

    def _end_all_but(self, keep: Leg | None) -> None:
        if self._leftover_timer is not None:
            self._leftover_timer.cancel()
        legs = [self.a, self.b, self._leftover, *(self.transfer or ())]
        for leg in legs:
            if leg is not None and leg is not keep:
                leg.end()

    # Media: bridge, hold, statistics.

    def leg_media(self, leg: Leg) -> None:
        log.debug("call %s: %s media status %s", self.call_id, leg.label, leg.audio_status())
        if self.phase is Phase.ENDED:
            return
        if self.transfer is not None and leg is self.transfer[1]:
            self._bridge()
            return
        if self.phase is Phase.ANSWERED and leg in (self.a, self.b):
            self._track_hold(leg)
        self._bridge()

    def _track_hold(self, leg: Leg) -> None:
        status = leg.audio_status()
        other = self._other(leg)
        if status == AUDIO_REMOTE_HOLD and self.held_by is None:
            self.held_by = leg
            self._emit(HoldCall(self.call_id, now()))
            self._unbridge()
            if other is not None:
                other.hold()
        elif status == AUDIO_ACTIVE and self.held_by is leg:
            self.held_by = None
            self._emit(ResumeCall(self.call_id, now()))
            self._stop_hold_music()
            if other is not None:
                other.unhold()

    def _other(self, leg: Leg) -> Leg | None:
        return self.b if leg is self.a else self.a

    def _parties(self) -> tuple[Leg | None, Leg | None]:
        """The two legs whose audio should meet right now."""
        if self.transfer is not None:
            transferor, new = self.transfer
            return self._other(transferor), new
        return self.a, self.b

    def _bridge(self) -> None:
        """Connect both parties' audio both ways, or the waiting party to music."""
        one, two = self._parties()
        waiting = self._waiting_party()
        if waiting is not None:
            self._play_hold_music(waiting)
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

    def _waiting_party(self) -> Leg | None:
        """The party who should hear music: held, or being transferred."""
        if self.held_by is not None:
            return self._other(self.held_by)
        if self.transfer is not None:
            transferor, new = self.transfer
            if not new.confirmed:
                return self._other(transferor)
        return None

    def _unbridge(self) -> None:
        self._bridged = None
        audio_a = self.a.audio()
        audio_b = self.b.audio() if self.b is not None else None
        if audio_a is not None and audio_b is not None:
            audio_a.stopTransmit(audio_b)
            audio_b.stopTransmit(audio_a)

    def _play_hold_music(self, leg: Leg) -> None:
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

    def leg_dtmf(self, leg: Leg, digit: str) -> None:
        log.debug("call %s: DTMF %s from the %s (not used on a plain call)", self.call_id,
                  digit, leg.role)

    def leg_stream_closing(self, leg: Leg, stream_index: int) -> None:
        # The last chance to read this stream's statistics (it is being destroyed).
        if self.ctx.media is not None and self.phase is Phase.ANSWERED:
            self.ctx.media.sample(self.call_id, leg, leg.stream_stat(stream_index))

    # Blind transfer: REFER from either party.

    def leg_transfer_request(self, leg: Leg, prm: pj.OnCallTransferRequestParam) -> None:
        if self.phase is not Phase.ANSWERED or self.transfer is not None or self.held_by:
            log.info("call %s: REFER refused (%s)", self.call_id, self.phase.value)
            prm.statusCode = 603
            return
        new = self.ctx.new_leg(LegRole.CALLEE)
        new.listener = self
        prm.newCall = new.dialog
        self.transfer = (leg, new)
        target = refer_target(prm.dstUri)
        log.info("call %s: blind transfer by %s to %s", self.call_id, leg.role, target)
        self._emit(TransferCall(self.call_id, now(), TransferKind.BLIND, target))
        self._unbridge()
        self._bridge()  # the transferee hears music while the target rings

    def _transfer_leg_state(self, leg: Leg) -> None:
        assert self.transfer is not None
        transferor, new = self.transfer
        if leg is transferor:
            return  # the transferor leaving is expected: the call lives on
        if leg.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self._complete_transfer(transferor, new)
        elif leg.disconnected:
            self._fail_transfer(transferor, leg.last_status)

    def _complete_transfer(self, transferor: Leg, new: Leg) -> None:
        self._stop_hold_music()
        if transferor is self.a:
            self.a = new
        else:
            self.b = new
        self.transfer = None
        log.info("call %s: transfer to %s answered", self.call_id, new.label)
        # The transferor hangs up itself once the final NOTIFY arrives; only a
        # transferor that lingers is sent a BYE.
        self._leftover = transferor
        self._leftover_timer = self.ctx.call_later(TRANSFEROR_GRACE, self._end_leftover)
        self._bridge()

    def _end_leftover(self) -> None:
        leftover, self._leftover, self._leftover_timer = self._leftover, None, None
        if leftover is not None:
            leftover.end()

    def _fail_transfer(self, transferor: Leg, status: int) -> None:
        log.info("call %s: transfer target failed with %s", self.call_id, status)
        self.transfer = None
        self._stop_hold_music()
        if transferor.disconnected:
            self._end_answered(HangupSide.SYSTEM, "transfer_failed")
        else:
            self._bridge()

    # Plumbing.

    def _emit(self, command: Command) -> None:
        self.ctx.sink.put(command)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
