"""The one pjsua2 Endpoint of a worker process, and the loop that owns it.

pjsua2's threading rule, as measured here: one thread owns the library. The
Endpoint is created with no SIP worker threads (``threadCnt=0``) and every
callback delivered on the main thread (``mainThreadOnly``); that thread polls
``libHandleEvents`` and runs this module's timers between polls, so all SIP
state lives on one thread and needs no locks.
"""

from __future__ import annotations

import contextvars
import heapq
import itertools
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import pjsua2 as pj

log = logging.getLogger(__name__)
pj_log = logging.getLogger("pjsip")

# Measured on the pjsua2-python 2.15.1.post1 wheel: pjsua silently clamps
# maxCalls to 4 (its compile-time PJSUA_MAX_CALLS), whatever is configured; a
# fifth call fails with PJ_ETOOMANY and a fifth INVITE gets pjsua's own
# stateless 486. So one process holds at most 4 legs: scale is by processes.
PJSUA_MAX_CALLS = 4

_PJ_LEVELS = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}


class _LogWriter(pj.LogWriter):  # type: ignore[misc]  # SWIG class, untyped
    """Sends pjsip's log lines to Python logging (under the ``pjsip`` logger)."""

    def write(self, entry: pj.LogEntry) -> None:
        pj_log.log(_PJ_LEVELS.get(entry.level, logging.DEBUG), "%s", entry.msg.rstrip())


@dataclass(frozen=True)
class EndpointConfig:
    host: str = "127.0.0.1"
    port: int = 5070
    max_calls: int = PJSUA_MAX_CALLS
    rtp_port: int = 0  # 0: derived from the SIP port so workers side by side never collide
    rtp_port_range: int = 40  # 4 legs x (RTP, RTCP), with room for pjsua to rotate
    pj_log_level: int = 2
    user_agent: str = "dialtone-b2bua"

    @property
    def rtp_base(self) -> int:
        if self.rtp_port:
            return self.rtp_port
        # 10000 + a block per SIP port, so workers side by side rarely share one
        # (pjsua moves on to the next port when a bind fails anyway). The blocks
        # end below 30000, under the kernel's ephemeral range (32768-60999): a port
        # chosen there for SIP (bind to port 0) never meets a worker's RTP.
        return 10000 + (self.port % 500) * self.rtp_port_range


def offer_srtp(media: pj.AccountMediaConfig) -> None:
    """SRTP with SDES keys (RFC 4568) when the peer asks for it, plain RTP otherwise.

    Optional, not mandatory: a caller offering ``a=crypto`` gets an encrypted leg
    and a caller with plain RTP still gets a call; our own offers (the leg to an
    agent) carry ``a=crypto`` in ``RTP/AVP``, which a plain phone ignores. Secure
    signalling is not required (0) because the keys reach a worker over the
    private UDP hop from Kamailio, which terminates the caller's TLS (docs/edge.md,
    TLS and SRTP); pjsua's default (1) would refuse SRTP on that hop."""
    media.srtpUse = pj.PJMEDIA_SRTP_OPTIONAL
    media.srtpSecureSignaling = 0


@dataclass(order=True)
class _Timer:
    due: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    # The log context (a call's ids) of whoever set the timer, as asyncio does.
    context: contextvars.Context = field(default_factory=contextvars.copy_context,
                                         compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True
        self.callback = _nothing  # a cancelled timer must not keep its session alive


def _nothing() -> None:
    return None


class Waker:
    """Wakes the pjsua2 thread out of ``libHandleEvents`` from another thread.

    pjsua2 offers no wake-up call, but pjsip's poll returns as soon as its SIP
    socket is readable: a CRLF keep-alive datagram (RFC 5626 3.5.1) sent to our
    own port does that, and pjsip drops it without a log line. Measured: the
    poll returns within a millisecond instead of at its 500 ms cap."""

    KEEPALIVE = b"\r\n\r\n"

    def __init__(self, host: str, port: int) -> None:
        self._address = (host, port)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def __call__(self) -> None:
        try:
            self._socket.sendto(self.KEEPALIVE, self._address)
        except OSError:
            log.warning("cannot wake the pjsua2 thread; it polls again within 500 ms")

    def close(self) -> None:
        self._socket.close()


class EventLoop:
    """Timers for the pjsua2 thread; ``poll`` runs pjsip events then due timers,
    and callbacks other threads ``post`` (they wake the poll)."""

    def __init__(self, endpoint: pj.Endpoint, waker: Callable[[], None] | None = None,
                 posted: deque[Callable[[], None]] | None = None) -> None:
        self._endpoint = endpoint
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        self._soon: list[Callable[[], None]] = []
        # Appended by other threads (``post``); may be handed in so that posts
        # made before the loop exists are kept.
        self._posted: deque[Callable[[], None]] = deque() if posted is None else posted
        self._waker = waker

    def post(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the pjsua2 thread soon; safe from any thread."""
        self._posted.append(callback)  # deque.append is atomic
        if self._waker is not None:
            self._waker()

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(time.monotonic() + delay, next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after the current pjsua2 callback has returned."""
        self._soon.append(callback)

    def clear(self) -> None:
        """Forget every pending timer and deferred call (at shutdown)."""
        self._timers.clear()
        self._soon.clear()
        self._posted.clear()

    def poll(self, max_wait_ms: int = 500) -> None:
        # pjsip returns as soon as a packet arrives and the wait never passes
        # the next timer, so the cap only bounds how late a stop request is
        # seen; measured idle CPU: ~3% at 10 ms, ~1% at 500 ms per worker.
        wait = max_wait_ms
        if self._soon or self._posted:
            wait = 0
        elif self._timers:
            wait = max(0, min(wait, int((self._timers[0].due - time.monotonic()) * 1000)))
        self._endpoint.libHandleEvents(wait)
        self._run_posted()
        self._run_soon()
        self._run_due()

    def _run_posted(self) -> None:
        for _ in range(len(self._posted)):  # what is there now; later posts wake us again
            _guarded(self._posted.popleft())

    def _run_soon(self) -> None:
        soon, self._soon = self._soon, []
        for callback in soon:
            _guarded(callback)

    def _run_due(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0].due <= now:
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.context.run(_guarded, timer.callback)


def _guarded(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:
        log.exception("timer callback failed")


class EndpointError(RuntimeError):
    """pjsua2 could not start (port in use, bad address, ...)."""


class _Endpoint(pj.Endpoint):  # type: ignore[misc]  # SWIG class, untyped
    """Tells the worker about INVITEs pjsua refused by itself: one that had a
    call slot (bad SDP, no common codec) had its media transport created and
    closed too, which the worker's key budget must count."""

    def __init__(self, on_rejected: Callable[[int, int], None] | None) -> None:
        super().__init__()
        self._on_rejected = on_rejected

    def onRejectedIncomingCall(self, prm: pj.OnRejectedIncomingCallParam) -> None:  # noqa: N802
        if self._on_rejected is None:
            return
        try:
            self._on_rejected(int(prm.callId), int(prm.statusCode))
        except Exception:
            log.exception("rejected-call hook failed")


def create_endpoint(config: EndpointConfig,
                    on_rejected: Callable[[int, int], None] | None = None,
                    ) -> tuple[pj.Endpoint, _LogWriter]:
    """A started Endpoint with one UDP transport and the null audio device.
    ``on_rejected(call_id, status)``: pjsua refused an INVITE itself (call_id
    is ``PJSUA_INVALID_ID`` when it had no call slot, so no transport)."""
    endpoint = _Endpoint(on_rejected)
    endpoint.libCreate()
    try:
        writer = _start(endpoint, config)
    except pj.Error as error:
        endpoint.libDestroy()
        raise EndpointError(f"cannot start SIP on udp:{config.host}:{config.port}: "
                            f"{error.info()}") from None
    log.info("pjsua2 %s listening on udp:%s:%d", endpoint.libVersion().full,
             config.host, config.port)
    return endpoint, writer


def _start(endpoint: pj.Endpoint, config: EndpointConfig) -> _LogWriter:
    ep_config = pj.EpConfig()
    ua = ep_config.uaConfig
    ua.threadCnt = 0
    ua.mainThreadOnly = True
    ua.maxCalls = min(config.max_calls, PJSUA_MAX_CALLS)
    ua.userAgent = config.user_agent
    writer = _LogWriter()
    ep_config.logConfig.writer = writer
    ep_config.logConfig.level = config.pj_log_level
    ep_config.logConfig.consoleLevel = config.pj_log_level
    ep_config.logConfig.decor = 0  # Python logging adds time and level
    media = ep_config.medConfig
    media.noVad = True  # keep RTP (and so RTCP statistics) flowing during silence
    media.sndClockRate = 8000
    media.clockRate = 8000
    # Call legs, music players, prompts and recorders all take bridge ports.
    media.maxMediaPorts = PJSUA_MAX_CALLS * 2 + 24
    endpoint.libInit(ep_config)
    transport = pj.TransportConfig()
    transport.port = config.port
    transport.boundAddress = config.host
    endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    endpoint.audDevManager().setNullDev()
    endpoint.libStart()
    return writer
