"""The B2BUA worker: one pjsua2 process bridging inbound calls to dialplan targets.

Run ``B2BUAWorker.run(stop)`` on the thread that should own pjsua2 (usually
the main thread); it returns once ``stop`` is set and every call is torn down.
Domain commands leave through the ``sink`` (the storage thread's buffer), so
the SIP side never waits on the database.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from uuid import UUID

import pjsua2 as pj

from adapters.media.player import MusicLibrary
from adapters.media.prompts import Prompts
from adapters.sip.pjsua.admission import (
    HeldInvite,
    KeyBudget,
    device_tenant,
    dialled_number,
    is_trusted,
    uri_user,
)
from adapters.sip.pjsua.endpoint import (
    PJSUA_MAX_CALLS,
    EventLoop,
    Waker,
    create_endpoint,
    offer_srtp,
)
from adapters.sip.pjsua.legs import Leg
from adapters.sip.sessions import centre_actions
from adapters.sip.sessions.centre_front import CentreContext
from adapters.sip.sessions.centre_session import CentreCall
from adapters.sip.sessions.session import (
    AudioSource,
    InboundFacts,
    MediaMonitor,
    Session,
    SessionContext,
    TimerHandle,
)
from adapters.sip.store.sink import CommandSink
from adapters.sip.wiring import CentreWiring, Router, WorkerConfig
from application import log_context, metrics
from application.b2bua.legs import LegRole
from application.call_control import REPLY_CHANNEL, ControlReply, ControlRequest
from application.routing_view import OfferChange
from domain.call import Direction
from domain.queue import Queue

log = logging.getLogger(__name__)



GC_INTERVAL = 5.0  # seconds between garbage collections on the pjsua2 thread


class _Account(pj.Account):  # type: ignore[misc]  # SWIG class, untyped
    def __init__(self, on_incoming: Callable[[pj.OnIncomingCallParam], None]) -> None:
        super().__init__()
        self._on_incoming = on_incoming

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802
        try:
            self._on_incoming(prm)
        except Exception:
            log.exception("incoming call handling failed")


class B2BUAWorker:
    def __init__(
        self,
        config: WorkerConfig,
        router: Router,
        sink: CommandSink,
        *,
        overloaded: Callable[[], bool] = lambda: False,
        music_on_hold: Callable[[], AudioSource | None] = lambda: None,
        media: MediaMonitor | None = None,
        centre: CentreWiring | None = None,
        alive: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self._alive = alive  # called each turn of the pjsua2 loop (a heartbeat's tick)
        self.router = router
        self.sink = sink
        self.overloaded = overloaded
        self._make_music = music_on_hold
        self._media = media
        self._centre = centre
        self._centre_ctx: CentreContext | None = None
        self.legs: set[Leg] = set()
        self.sessions: set[Session] = set()
        self._by_call: dict[UUID, Session] = {}
        # Read by the follower thread (set membership is atomic under the GIL).
        self._owned: set[UUID] = set()
        self._posted: deque[Callable[[], None]] = deque()
        self._waker = Waker(config.endpoint.host, config.endpoint.port)
        self.refused = 0
        self.busy = 0  # INVITEs pjsua answered 486 itself (every slot taken)
        # pjsua's real call slots (legs): its own clamp, or fewer if configured.
        self.slots = min(config.endpoint.max_calls, PJSUA_MAX_CALLS)
        self.budget = KeyBudget(self.slots)
        # INVITEs left unanswered until the ioqueue has room to close their calls.
        self._held: deque[HeldInvite] = deque()
        self._held_timer: TimerHandle | None = None
        self.ready = threading.Event()
        metrics.watch_b2bua(lambda: len(self.sessions), lambda: len(self.legs),
                            config.max_bridged_calls, self.slots)

    def post(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the pjsua2 thread soon; safe from any thread."""
        self._posted.append(callback)
        self._waker()

    # Lifecycle, on the pjsua2 thread.

    def run(self, stop: threading.Event) -> None:
        endpoint, writer = create_endpoint(self.config.endpoint, self._pjsua_rejected)
        loop = EventLoop(endpoint, self._waker, self._posted)
        account = self._create_account()
        self._ctx = SessionContext(
            sink=self.sink, new_leg=lambda role: self._new_leg(account, role),
            call_later=loop.call_later, no_answer_timeout=self.config.no_answer_timeout,
            on_end=self._session_ended, music_on_hold=self._make_music(), media=self._media,
            retry_after=self.config.retry_after)
        self._centre_ctx = self._centre_context()
        self._account = account
        # pjsua2 objects must die on this thread; the cyclic garbage collector
        # may run on any thread, so it runs here, on a timer, instead.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        gc.collect()
        gc.freeze()  # start-up objects live for ever: keep periodic collections cheap
        next_gc = time.monotonic() + GC_INTERVAL
        self.ready.set()
        drained = False
        try:
            while not stop.is_set():
                loop.poll()
                self._alive()
                if time.monotonic() >= next_gc:
                    self._sweep()
                    gc.collect()
                    next_gc = time.monotonic() + GC_INTERVAL
            drained = self._drain(loop)
        finally:
            if gc_was_enabled:
                gc.enable()
            self._ctx.music_on_hold = None
            if self._centre_ctx is not None:
                self._centre_ctx.music.close()
            self._centre_ctx = None
            self.sessions.clear()
            self._by_call.clear()
            self.legs.clear()
            loop.clear()
            # Every Leg must be gone before libDestroy: a pjsua2 Call destroyed
            # after it asserts inside pjsua and aborts the process.
            gc.collect()
            account.shutdown()
            del self._account
            # pjsua's shutdown sleeps a fixed second for messages still to go out;
            # with every call ended there are none, so skip it (it was most of a
            # worker's stop time). Calls the drain left get that second for their BYEs.
            endpoint.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK if drained else 0)
            self._waker.close()
            del writer
            log.info("b2bua on port %d stopped", self.config.endpoint.port)

    def _centre_context(self) -> CentreContext | None:
        wiring = self._centre
        if wiring is None:
            return None
        return CentreContext(
            link=wiring.link, directory=wiring.directory, resolve_number=self.router.resolve,
            prompts=Prompts(wiring.media_dir),
            music=MusicLibrary(wiring.media_dir, wiring.default_music),
            reply=self._reply, free_legs=self._free_legs,
            recordings=wiring.recordings, announce_every_s=wiring.announce_every_s)

    def _free_legs(self) -> int:
        """Legs the call centre may place now (supervisor, transfer): a free
        pjsua slot, and room in the key budget for the leg to close."""
        if not self.budget.has_room(len(self.legs)):
            return 0
        return self.slots - len(self.legs)

    def _create_account(self) -> _Account:
        ep = self.config.endpoint
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:b2bua@{ep.host}:{ep.port}"
        rtp = cfg.mediaConfig.transportConfig
        rtp.port = ep.rtp_base
        rtp.portRange = ep.rtp_port_range
        rtp.boundAddress = ep.host
        offer_srtp(cfg.mediaConfig)
        account = _Account(self._incoming)
        account.create(cfg, True)
        return account

    def _drain(self, loop: EventLoop) -> bool:
        """End every call, let the BYEs/CANCELs go out; True when every leg is gone. Half the
        grace on, calls left (holding their end for their queue's answer: front.py) end."""
        for _ in range(2):
            for session in list(self.sessions):
                with session.log_fields():
                    session.end_now("worker_shutdown")
            while self._held:
                self._answer_one_held(self._held.popleft(), "worker stopping")
            until = time.monotonic() + self.config.shutdown_grace / 2
            while self.legs and time.monotonic() < until:
                loop.poll()
        return not self.legs

    # Legs.

    def _new_leg(self, account: pj.Account, role: LegRole, call_id: int = pj.PJSUA_INVALID_ID
                 ) -> Leg:
        leg = Leg(account, self, role, call_id)
        self.legs.add(leg)
        return leg

    def release(self, leg: Leg) -> None:
        if leg in self.legs:
            self.legs.discard(leg)
            self.budget.closed()  # its RTP/RTCP keys are on the ioqueue's closing list

    def _sweep(self) -> None:
        """Give back the slot of any leg pjsua no longer knows, if its
        DISCONNECTED callback was lost: seen inactive on two sweeps in a row."""
        for leg in list(self.legs):
            if leg.is_active():
                leg.inactive_sweeps = 0
                continue
            leg.inactive_sweeps += 1
            if leg.inactive_sweeps >= 2:
                log.warning("leg %s is gone without a DISCONNECTED callback; released",
                            leg.label)
                leg.detach()

    # Inbound INVITEs.

    def _incoming(self, prm: pj.OnIncomingCallParam) -> None:
        leg = self._new_leg(self._account, LegRole.CALLER, prm.callId)
        assert leg.dialog is not None  # just created
        # Judged now, held or not: reading the packet's source is not acting on
        # the call, and a held INVITE must get the answer it would have got.
        source = prm.rdata.srcAddress
        trusted = is_trusted(source, self.config.trusted_sources)
        if self._held or not self.budget.has_room(len(self.legs)):
            # Acting now (even refusing) closes this call's transport while the
            # ioqueue's closing list is full: hold it, its slot too (see admission).
            self._hold(HeldInvite(leg, source, trusted))
            return
        if not trusted:
            self._forbid(leg, source)
            return
        info = leg.dialog.getInfo()
        centre = self._centre_ctx
        callee = dialled_number(prm.rdata.wholeMsg)
        device = device_tenant(prm.rdata.wholeMsg) if self.config.device_auth else None
        facts = InboundFacts.classified(info.callIdString, uri_user(info.remoteUri), callee,
                                        centre.directory if centre else None, device)
        if self.config.device_auth and device is None and facts.direction != Direction.INBOUND:
            self._forbid(leg, source, "a call to none of our numbers from no device"
                         " the edge authenticated")  # 403 even when full: not "come back"
            return
        reason = self._refusal()
        if reason is not None:
            self._refuse(leg, reason, info.callIdString)
            return
        destination = centre.directory.destination(facts.callee) if centre else None
        if centre is not None and destination is not None:
            front = Session(self._ctx, leg, facts)
            lane = CentreCall(front, centre)  # the call-centre part, attached to the session
            self._register(front)
            with front.log_fields():
                lane.start(destination)
            return
        session = Session(self._ctx, leg, facts)
        self._register(session)
        deactivated = centre is not None and centre.directory.owns(facts.callee)  # refused: 404
        with session.log_fields():
            session.start(None if deactivated else self.router.resolve(facts.callee))

    def _pjsua_rejected(self, call_id: int, status: int) -> None:
        if call_id == pj.PJSUA_INVALID_ID:
            self.busy += 1  # no slot: pjsua's stateless 486, no transport was made
        else:
            self.budget.closed()  # e.g. 488: its transport was made and closed
        log.info("INVITE refused by pjsua itself with %d", status)
        metrics.sip_final_response(status)  # no Leg was made for it: counted here

    def _forbid(self, leg: Leg, source: str, why: str = "not a trusted source") -> None:
        """403 to an INVITE not from the edge, or not from a device it vouches for:
        no routing, no call stored (docs/edge.md); never 503, which invites it back."""
        log.warning("INVITE from %s refused with 403: %s", source, why)
        leg.respond(403)

    def _refuse(self, leg: Leg, reason: str, sip_call_id: str = "") -> None:
        self.refused += 1
        with log_context.bound(sip_call_id=sip_call_id or None):  # no call is made for it
            log.warning("INVITE %s refused with 503: %s", sip_call_id or leg.label, reason)
        # answer(), not hangup(): only answer() puts our headers on the response.
        leg.respond(503, {"Retry-After": str(self.config.retry_after)})

    def _hold(self, held: HeldInvite) -> None:
        self._held.append(held)
        if self._held_timer is None:
            self._held_timer = self._ctx.call_later(self.budget.recheck_in(len(self.legs)),
                                                    self._answer_held)

    def _answer_held(self) -> None:
        """Answer held INVITEs, oldest first, as far as the key budget allows."""
        self._held_timer = None
        while self._held and self.budget.has_room(len(self.legs)):
            self._answer_one_held(self._held.popleft(), "INVITE burst: ioqueue keys still closing")
        if self._held:
            self._held_timer = self._ctx.call_later(self.budget.recheck_in(len(self.legs)),
                                                    self._answer_held)

    def _answer_one_held(self, held: HeldInvite, reason: str) -> None:
        """What it would have got unheld: 403 when not from the edge (never
        "come back later"), else 503 + Retry-After (``reason``)."""
        if held.leg.disconnected:  # a caller who CANCELled is answered by pjsua
            return
        if not held.trusted:
            self._forbid(held.leg, held.source, "not a trusted source (held in a burst)")
        else:
            self._refuse(held.leg, reason)

    def _register(self, session: Session) -> None:
        self.sessions.add(session)
        self._by_call[session.call_id] = session
        self._owned.add(session.call_id)

    def _session_ended(self, session: Session) -> None:
        self.sessions.discard(session)
        if self._by_call.get(session.call_id) is session:
            del self._by_call[session.call_id]
            self._owned.discard(session.call_id)

    def _refusal(self) -> str | None:
        # This INVITE's own leg is already counted; its callee leg is not yet,
        # and must find a pjsua slot (PJ_ETOOMANY otherwise).
        if len(self.legs) + 1 > min(self.slots, 2 * self.config.max_bridged_calls) \
                or len(self.sessions) >= self.config.max_bridged_calls:
            return f"at capacity ({self.config.max_bridged_calls} calls)"
        if self.overloaded():
            return "event store backlog above its limit"
        return None

    # The follower thread's news about our calls (FollowerListener), handed to
    # the pjsua2 thread.

    def owns(self, call_id: UUID) -> bool:
        return call_id in self._owned

    def offer_changed(self, change: OfferChange) -> None:
        self.post(lambda: self._centre_call(change.call_id, lambda s: s.offer_changed(change)))

    def queue_left(self, event: Queue.CallOverflowed | Queue.CallTransferredOut) -> None:
        self.post(lambda: self._centre_call(event.call_id, lambda s: s.queue_left(event)))

    def control_requested(self, request: ControlRequest) -> None:
        self.post(lambda: self._control(request))

    def _centre_call(self, call_id: UUID, act: Callable[[CentreCall], None]) -> None:
        session = self._by_call.get(call_id)
        lane = session.lane if session is not None else None
        if isinstance(lane, CentreCall):
            with lane.session.log_fields():
                act(lane)

    def _control(self, request: ControlRequest) -> None:
        session = self._by_call.get(request.call_id)
        lane = session.lane if session is not None else None
        if not isinstance(lane, CentreCall):
            state = "ended" if session is None else "not a call-centre call"
            self._reply(ControlReply(request.request_id, 409,
                                     f"call {request.call_id} is {state}"))
            return
        # The API request's id on the worker's lines about it too (one id to grep).
        with lane.session.log_fields(), log_context.bound(request_id=request.origin or None):
            self._reply(centre_actions.handle(lane, request))

    def _reply(self, reply: ControlReply) -> None:
        if self._centre is not None:
            self._centre.link.notify(REPLY_CHANNEL, reply.encode())
