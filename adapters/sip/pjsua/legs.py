"""One SIP dialog of a bridged call.

A ``Leg`` is a plain Python handle; the pjsua2 ``Call`` behind it (``_Dialog``)
lives exactly as long as pjsua's call slot. Why the split, as measured here:
pjsua2's ``~Call()`` clears the user data of, and hangs up, whatever call now
holds its slot number. A Call object that outlives its DISCONNECTED callback
(because a session still refers to it) is destroyed after pjsua has reused the
slot for a new call, and silently kills that new call. So the handle drops its
Call in the DISCONNECTED callback itself, where pjsua2 allows the object to be
deleted (it dies when the callback returns), while sessions keep the harmless
handle as long as they like.

pjsua2 calls the Call's methods from C++ (SWIG directors); a Python exception
escaping one would unwind through pjsip's C code, so every callback is guarded
and only logs.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import pjsua2 as pj

from application import metrics
from application.b2bua.legs import Answered, Audio, Fact, Gone, KeyMethod, LegRole, Ringing

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., None])

AUDIO_ACTIVE = pj.PJSUA_CALL_MEDIA_ACTIVE
AUDIO_REMOTE_HOLD = pj.PJSUA_CALL_MEDIA_REMOTE_HOLD
AUDIO_LOCAL_HOLD = pj.PJSUA_CALL_MEDIA_LOCAL_HOLD
DISCONNECTED = int(pj.PJSIP_INV_STATE_DISCONNECTED)
CONFIRMED = int(pj.PJSIP_INV_STATE_CONFIRMED)
EARLY = int(pj.PJSIP_INV_STATE_EARLY)
# pjlib's PJ_ETOOMANY (PJ_ERRNO_START_STATUS + 10): what makeCall fails with when
# every pjsua call slot is taken (legs still closing count). Not exported by SWIG.
PJ_ETOOMANY = 70010


@dataclass(frozen=True)
class AudioInfo:
    index: int
    status: int
    conf_slot: int


class LegListener(Protocol):
    def leg_state(self, leg: Leg) -> None: ...
    def leg_media(self, leg: Leg) -> None: ...
    def leg_transfer_request(self, leg: Leg, prm: pj.OnCallTransferRequestParam) -> None: ...
    def leg_stream_closing(self, leg: Leg, stream_index: int) -> None: ...
    def leg_dtmf(self, leg: Leg, digit: str) -> None: ...
    def log_fields(self) -> contextlib.AbstractContextManager[None]: ...


class LegHost(Protocol):
    def release(self, leg: Leg) -> None: ...


def guarded(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: _Dialog, *args: Any) -> None:
        # The call's ids on every line logged from here (taken before the
        # callback: a disconnected leg drops its listener).
        listener = self.leg.listener
        with listener.log_fields() if listener is not None else contextlib.nullcontext():
            try:
                method(self, *args)
            except Exception:
                log.exception("leg %s: %s failed", self.leg.label, method.__name__)

    return wrapper  # type: ignore[return-value]


class _Dialog(pj.Call):  # type: ignore[misc]  # SWIG class, untyped
    """The pjsua2 Call of one leg; forwards every callback to the leg."""

    def __init__(self, leg: Leg, account: pj.Account, call_id: int) -> None:
        super().__init__(account, call_id)
        self.leg = leg

    @guarded
    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802, ARG002 - pjsua2 API
        self.leg.on_state()

    @guarded
    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802, ARG002
        self.leg.on_media()

    @guarded
    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:  # noqa: N802
        self.leg.on_transfer_request(prm)

    @guarded
    def onStreamDestroyed(self, prm: pj.OnStreamDestroyedParam) -> None:  # noqa: N802
        self.leg.on_stream_closing(prm.streamIdx)

    @guarded
    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # noqa: N802
        # Both RFC 4733 telephone-events and SIP INFO (application/dtmf-relay)
        # arrive here (pjsua answers the INFO itself); a phone may send each key
        # both ways, so the leg drops a key's copy by the other method (KeyMethod).
        self.leg.on_dtmf(str(prm.digit), int(prm.method))


class Leg:
    def __init__(self, account: pj.Account, host: LegHost, role: LegRole,
                 call_id: int = pj.PJSUA_INVALID_ID) -> None:
        self.host = host
        self.role = role
        self.listener: LegListener | None = None
        self.disconnected = False
        self.confirmed = False
        self.state = int(pj.PJSIP_INV_STATE_NULL)
        self.last_status = 0
        self.inactive_sweeps = 0  # see B2BUAWorker._sweep
        self.no_slot = False  # ``place`` failed because pjsua had no call slot
        self.label = f"{role}#{call_id}"
        self._call: _Dialog | None = _Dialog(self, account, call_id)
        self._invited_at = time.monotonic()  # a caller's leg is made when its INVITE arrives
        self._final_counted = False  # a caller's final response is counted once (metrics)
        self.keys = KeyMethod()  # a key sent both ways (RFC 4733, SIP INFO) is one key

    @property
    def dialog(self) -> pj.Call | None:
        """The pjsua2 Call while its slot is ours (for pjsua2 APIs that need it)."""
        return self._call

    # Callbacks from the dialog.

    def on_state(self) -> None:
        try:
            self._read_state()
            if self.listener is not None:
                self.listener.leg_state(self)
        finally:
            # Whatever failed above, a dead dialog's slot must be given back.
            if self.disconnected:
                self.detach()

    def _read_state(self) -> None:
        try:
            info = self._live().getInfo()
        except (pj.Error, LookupError):
            # pjsua already tore the session down (e.g. after our final
            # response to an INVITE we refused): that is a disconnection.
            self.state = DISCONNECTED
        else:
            self.label = f"{self.role}#{info.id}"
            self.state, self.last_status = int(info.state), int(info.lastStatusCode)
        self.confirmed = self.confirmed or self.state == CONFIRMED
        self.disconnected = self.state == DISCONNECTED
        if self.disconnected and not self.confirmed:  # pjsua's own (487 to a CANCEL...)
            self._count_final(self.last_status)

    def on_media(self) -> None:
        if self.listener is not None:
            self.listener.leg_media(self)

    def on_transfer_request(self, prm: pj.OnCallTransferRequestParam) -> None:
        if self.listener is None:
            prm.statusCode = 603
            return
        self.listener.leg_transfer_request(self, prm)

    def on_stream_closing(self, stream_index: int) -> None:
        if self.listener is not None:
            self.listener.leg_stream_closing(self, stream_index)

    def on_dtmf(self, digit: str, method: int) -> None:
        if not self.keys.take(digit, method):
            log.debug("leg %s: DTMF %s by method %d dropped (a copy of a key sent both "
                      "ways)", self.label, digit, method)
            return
        if self.listener is not None:
            self.listener.leg_dtmf(self, digit)

    def detach(self) -> None:
        """Drop the pjsua2 Call (it is destroyed when the current callback
        returns) and give the slot back to the host."""
        self.disconnected = True
        self.listener = None
        self._call = None
        self.host.release(self)

    # Actions. Each swallows pjsua2 errors of a dialog that is already going
    # away, which is a normal race in SIP (BYE crossing BYE).

    def place(self, target: str) -> bool:
        try:
            self._live().makeCall(target, pj.CallOpParam(True))
        except (pj.Error, LookupError) as error:
            self.no_slot = isinstance(error, pj.Error) and int(error.status) == PJ_ETOOMANY
            log.warning("leg %s: cannot call %s: %s", self.label, target, _reason(error))
            return False
        return True

    def respond(self, status: int, headers: dict[str, str] | None = None) -> None:
        """A provisional or final response to the INVITE we received."""
        self._count_final(status)
        prm = _op(status, headers)
        self._safely("answer", lambda call: call.answer(prm))

    def end(self, status: int | None = None, headers: dict[str, str] | None = None) -> None:
        """BYE, CANCEL or a final error response, whatever the dialog's state needs
        (``headers`` go on a final response only)."""
        if self.disconnected:
            return
        prm = _op(status, headers)
        if not self.confirmed:
            self._count_final(status or 603)  # pjsua's hangup of an unanswered INVITE: 603
        if headers and self.role is LegRole.CALLER and not self.confirmed:
            # Only answer() puts our headers on a final response to an INVITE.
            self._safely("answer", lambda call: call.answer(prm))
        else:
            self._safely("hangup", lambda call: call.hangup(prm))

    def hold(self) -> None:
        self._safely("hold", lambda call: call.setHold(pj.CallOpParam(True)))

    def unhold(self) -> None:
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        self._safely("unhold", lambda call: call.reinvite(prm))

    def _count_final(self, status: int) -> None:
        """Count the final response to an inbound INVITE (metrics), once per caller leg."""
        if self.role is not LegRole.CALLER or self._final_counted or status < 200:
            return
        self._final_counted = True
        metrics.sip_final_response(status)
        if status < 300:
            metrics.invite_answered(self._invited_at)

    def is_active(self) -> bool:
        return self._call is not None and bool(self._call.isActive())

    # Media.

    def audio(self) -> pj.AudioMedia | None:
        """The leg's audio port in the conference bridge, once media is up."""
        media = self.audio_info()
        if media is None or media.conf_slot < 0 or self._call is None:
            return None
        return self._call.getAudioMedia(media.index)

    def audio_status(self) -> int | None:
        media = self.audio_info()
        return None if media is None else media.status

    def audio_info(self) -> AudioInfo | None:
        if self.disconnected or self._call is None:
            return None
        # Keep ``info`` referenced while reading its media: SWIG's vector items
        # point into the CallInfo and read freed memory once it is collected.
        info = self._call.getInfo()
        for media in info.media:
            if media.type == pj.PJMEDIA_TYPE_AUDIO:
                return AudioInfo(int(media.index), int(media.status), int(media.audioConfSlot))
        return None

    def stream_stat(self, stream_index: int) -> pj.StreamStat | None:
        if self._call is None:
            return None
        try:
            return self._call.getStreamStat(stream_index)
        except pj.Error:
            return None  # no stream (yet, or any more)

    def _live(self) -> _Dialog:
        if self._call is None:
            raise LookupError(f"leg {self.label} has no dialog any more")
        return self._call

    def _safely(self, what: str, action: Callable[[_Dialog], None]) -> None:
        if self._call is None:
            return
        try:
            action(self._call)
        except pj.Error as error:
            log.warning("leg %s: %s failed: %s", self.label, what, error.info())


def state_fact(leg: Leg) -> Fact[Leg] | None:
    """What a state callback of ``leg`` tells the call's flow (None: nothing it follows)."""
    if leg.disconnected:
        return Gone(leg, leg.last_status)
    if leg.state == CONFIRMED:
        return Answered(leg)
    if leg.state == EARLY:
        return Ringing(leg, leg.last_status)
    return None


def audio_of(status: int | None) -> Audio:
    """A leg's audio status (``Leg.audio_status``) as the call's flow knows it."""
    if status == AUDIO_ACTIVE:
        return Audio.ACTIVE
    return Audio.REMOTE_HOLD if status == AUDIO_REMOTE_HOLD else Audio.OTHER


def _reason(error: Exception) -> str:
    return str(error.info()) if isinstance(error, pj.Error) else str(error)


def _op(status: int | None, headers: dict[str, str] | None) -> pj.CallOpParam:
    prm = pj.CallOpParam(True)
    if status is not None:
        prm.statusCode = status
    for name, value in (headers or {}).items():
        header = pj.SipHeader()
        header.hName, header.hValue = name, value
        prm.txOption.headers.append(header)
    return prm
