"""The pjsua2 side of the test softphone (devtools/softphone.py): its calls and its
account, which report what happens as JSON lines (``emit``) and hand the rest to
the ``Phone`` that owns them."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

import pjsua2 as pj

if TYPE_CHECKING:
    from devtools.softphone import Phone

SRTP_USE = {"off": pj.PJMEDIA_SRTP_DISABLED, "optional": pj.PJMEDIA_SRTP_OPTIONAL,
            "mandatory": pj.PJMEDIA_SRTP_MANDATORY}
# Transport profiles of an encrypted stream (SDES keys or DTLS).
SECURE_PROTOS = {pj.PJMEDIA_TP_PROTO_RTP_SAVP, pj.PJMEDIA_TP_PROTO_RTP_SAVPF,
                 pj.PJMEDIA_TP_PROTO_DTLS_SRTP, pj.PJMEDIA_TP_PROTO_DTLS_SRTPF}


def emit(event: str, **facts: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, "t": time.time(), **facts}) + "\n")
    sys.stdout.flush()


class PhoneCall(pj.Call):  # type: ignore[misc]  # SWIG class, untyped
    def __init__(self, phone: Phone, account: pj.Account, call_id: int = pj.PJSUA_INVALID_ID,
                 ) -> None:
        super().__init__(account, call_id)
        self.phone = phone
        self.number = phone.next_number()
        self.recorder: pj.AudioMediaRecorder | None = None
        self.wired = False

    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802, ARG002
        info = self.getInfo()
        state = int(info.state)
        emit("state", call=self.number, state=info.stateText, status=int(info.lastStatusCode))
        if state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.phone.on_confirmed(self)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.phone.on_disconnected(self)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802, ARG002
        info = self.getInfo()
        for media in info.media:
            if media.type == pj.PJMEDIA_TYPE_AUDIO:
                emit("media", call=self.number, status=int(media.status),
                     srtp=self.encrypted(media.index))
                if media.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD):
                    self.phone.wire_audio(self, self.getAudioMedia(media.index))

    def encrypted(self, index: int) -> bool:
        """Whether the negotiated stream at ``index`` is SRTP (its transport profile)."""
        try:
            return int(self.getStreamInfo(index).proto) in SECURE_PROTOS
        except pj.Error:  # no stream (yet): nothing negotiated
            return False

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # noqa: N802
        emit("dtmf", call=self.number, digit=prm.digit, method=int(prm.method))


class PhoneAccount(pj.Account):  # type: ignore[misc]
    def __init__(self, phone: Phone) -> None:
        super().__init__()
        self.phone = phone

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:  # noqa: N802
        self.phone.on_incoming(PhoneCall(self.phone, self, prm.callId), prm)

    def onRegState(self, prm: pj.OnRegStateParam) -> None:  # noqa: N802
        emit("registration", status=int(prm.code), reason=str(prm.reason),
             expires=int(prm.expiration))
