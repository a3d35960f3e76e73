"""One SIP dialog of a bridged call: a pjsua2 Call that forwards its callbacks.

pjsua2 calls these methods from C++ (SWIG directors); a Python exception
escaping one would unwind through pjsip's C code, so every callback is guarded
and only logs. A Leg holds no call logic: it tells its listener (the session)
and its host (the worker that keeps the reference alive until DISCONNECTED).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import pjsua2 as pj

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., None])

AUDIO_ACTIVE = pj.PJSUA_CALL_MEDIA_ACTIVE
AUDIO_REMOTE_HOLD = pj.PJSUA_CALL_MEDIA_REMOTE_HOLD
AUDIO_LOCAL_HOLD = pj.PJSUA_CALL_MEDIA_LOCAL_HOLD


@dataclass(frozen=True)
class AudioInfo:
    index: int
    status: int
    conf_slot: int


class LegRole(StrEnum):
    CALLER = "caller"  # the inbound dialog we answer
    CALLEE = "callee"  # a dialog we place


class LegListener(Protocol):
    def leg_state(self, leg: Leg, info: pj.CallInfo) -> None: ...
    def leg_media(self, leg: Leg) -> None: ...
    def leg_transfer_request(self, leg: Leg, prm: pj.OnCallTransferRequestParam) -> None: ...
    def leg_stream_closing(self, leg: Leg, stream_index: int) -> None: ...


class LegHost(Protocol):
    def release(self, leg: Leg) -> None: ...


def guarded(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: Leg, *args: Any) -> None:
        try:
            method(self, *args)
        except Exception:
            log.exception("leg %s: %s failed", self.label, method.__name__)

    return wrapper  # type: ignore[return-value]


class Leg(pj.Call):  # type: ignore[misc]  # SWIG class, untyped
    def __init__(self, account: pj.Account, host: LegHost, role: LegRole,
                 call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.host = host
        self.role = role
        self.listener: LegListener | None = None
        self.disconnected = False
        self.confirmed = False
        self.last_status = 0
        self.label = f"{role}#{call_id}"

    @guarded
    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802, ARG002 - pjsua2 API
        info = self.getInfo()
        self.label = f"{self.role}#{info.id}"
        self.last_status = info.lastStatusCode
        if info.state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.confirmed = True
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.disconnected = True
        try:
            if self.listener is not None:
                self.listener.leg_state(self, info)
        finally:
            if self.disconnected:
                self.host.release(self)

    @guarded
    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802, ARG002
        if self.listener is not None:
            self.listener.leg_media(self)

    @guarded
    def onCallTransferRequest(self, prm: pj.OnCallTransferRequestParam) -> None:  # noqa: N802
        if self.listener is None:
            prm.statusCode = 603
            return
        self.listener.leg_transfer_request(self, prm)

    @guarded
    def onStreamDestroyed(self, prm: pj.OnStreamDestroyedParam) -> None:  # noqa: N802
        if self.listener is not None:
            self.listener.leg_stream_closing(self, prm.streamIdx)

    # Helpers the session uses; each swallows pjsua2 errors of a dialog that is
    # already going away, which is a normal race in SIP (BYE crossing BYE).

    def audio(self) -> pj.AudioMedia | None:
        """The leg's audio port in the conference bridge, once media is up."""
        media = self._audio_info()
        if media is None or media.conf_slot < 0:
            return None
        return self.getAudioMedia(media.index)

    def audio_status(self) -> int | None:
        media = self._audio_info()
        return None if media is None else int(media.status)

    def _audio_info(self) -> AudioInfo | None:
        if self.disconnected:
            return None
        # Keep ``info`` referenced while reading its media: SWIG's vector items
        # point into the CallInfo and read freed memory once it is collected.
        info = self.getInfo()
        for media in info.media:
            if media.type == pj.PJMEDIA_TYPE_AUDIO:
                return AudioInfo(int(media.index), int(media.status), int(media.audioConfSlot))
        return None

    def respond(self, status: int, headers: dict[str, str] | None = None) -> None:
        """A provisional or final response to the INVITE we received."""
        prm = _op(status, headers)
        self._safely("answer", lambda: self.answer(prm))

    def end(self, status: int | None = None, headers: dict[str, str] | None = None) -> None:
        """BYE, CANCEL or a final error response, whatever the dialog's state needs."""
        if self.disconnected:
            return
        prm = _op(status, headers)
        self._safely("hangup", lambda: self.hangup(prm))

    def hold(self) -> None:
        self._safely("hold", lambda: self.setHold(pj.CallOpParam(True)))

    def unhold(self) -> None:
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        self._safely("unhold", lambda: self.reinvite(prm))

    def _safely(self, what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except pj.Error as error:
            log.warning("leg %s: %s failed: %s", self.label, what, error.info())


def _op(status: int | None, headers: dict[str, str] | None) -> pj.CallOpParam:
    prm = pj.CallOpParam(True)
    if status is not None:
        prm.statusCode = status
    for name, value in (headers or {}).items():
        header = pj.SipHeader()
        header.hName, header.hValue = name, value
        prm.txOption.headers.append(header)
    return prm
