"""A scriptable pjsua2 softphone, run as its own process (one Endpoint per process):
the simulated agents, callers and supervisors of the tests and of ``dialtone demo``.

It plays as an agent, a caller or a supervisor: answers incoming calls after a
delay (or rejects them, or lets them ring), plays a tone of its own frequency
into every call, records what it hears to one WAV per call, sends DTMF (RFC
4733 or SIP INFO), holds, hangs up. Commands arrive on stdin, one per line;
what happens leaves on stdout as JSON lines (``{"event": ..., "t": unix time}``),
so a test or the demo drives it with ``devtools.phones``.

With ``--tls-ca FILE`` it also has a SIP over TLS transport, the server checked
against that CA, used for URIs with ``;transport=tls``; ``--srtp optional`` or
``mandatory`` makes its calls offer and accept SRTP (SDES keys), and each
``media`` event says whether the stream is encrypted (``"srtp": true``).
``--codec PCMU/8000`` offers and accepts that codec alone.

Commands: ``dial URI``, ``dtmf DIGITS [rfc|info]``, ``answer``, ``hangup``,
``hold``, ``unhold``, ``register``, ``unregister``, ``quit``. With no live call, a
command that needs one is reported as ``{"event": "error"}``.

With ``--registrar`` it registers as ``user@--domain`` there (digest auth with the
password from ``$DIALTONE_SIP_PASSWORD``, never from argv), and reports each
outcome as ``{"event": "registration", "status": <SIP code>, "expires": s}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import wave
from pathlib import Path
from typing import Any

import pjsua2 as pj

from adapters.media.tones import write_wav
from devtools.softphone_sip import SRTP_USE, PhoneAccount, PhoneCall, emit

MAX_CALLS = 4
class Phone:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.calls: dict[int, PhoneCall] = {}
        self.timers: list[tuple[float, Any]] = []
        self.commands: queue.Queue[str] = queue.Queue()
        self.stopping = False
        self._numbers = 0
        self.tone: pj.AudioMediaPlayer | None = None

    def next_number(self) -> int:
        self._numbers += 1
        return self._numbers

    # Start-up.

    def start(self) -> None:
        a = self.args
        self.ep = pj.Endpoint()
        self.ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = MAX_CALLS
        cfg.uaConfig.userAgent = f"dialtone-softphone/{a.user}"
        cfg.logConfig.level = a.pj_log_level
        cfg.logConfig.consoleLevel = a.pj_log_level
        cfg.medConfig.noVad = True
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        self.ep.libInit(cfg)
        if a.codec:
            self._only_codec(a.codec)
        transport = pj.TransportConfig()
        transport.port = a.port
        transport.boundAddress = "127.0.0.1"
        self.ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        if a.tls_ca:
            self._tls_transport()
        self.ep.audDevManager().setNullDev()
        self.ep.libStart()
        acc = pj.AccountConfig()
        acc.idUri = self.uri
        if a.registrar:
            self._registration(acc)
        rtp = acc.mediaConfig.transportConfig
        # Above the workers' blocks (10000-29999), below the ephemeral range.
        rtp.port = a.rtp_port or (30000 + (a.port % 100) * 20)
        rtp.portRange = 20
        rtp.boundAddress = "127.0.0.1"
        acc.mediaConfig.srtpUse = SRTP_USE[a.srtp]
        # Over TLS, pjsua's default: SRTP keys only in TLS-protected signalling.
        acc.mediaConfig.srtpSecureSignaling = 1 if a.tls_ca else 0
        self.account = PhoneAccount(self)
        self.account.create(acc, True)
        if a.tone:
            path = Path(a.workdir) / f"tone-{a.tone}.wav"
            write_wav(path, [(float(a.tone), 2.0)])
            self.tone = pj.AudioMediaPlayer()
            self.tone.createPlayer(str(path), 0)

    def _registration(self, acc: pj.AccountConfig) -> None:
        """Register as user@domain at the registrar, answering its digest challenge
        with the password from the environment (any realm: the registrar's)."""
        a = self.args
        acc.idUri = f"sip:{a.user}@{a.domain}"
        acc.regConfig.registrarUri = a.registrar
        acc.regConfig.timeoutSec = a.reg_expires
        acc.regConfig.retryIntervalSec = 0  # a refusal is reported, not retried
        acc.regConfig.registerOnAdd = True
        password = os.environ.get("DIALTONE_SIP_PASSWORD", "")
        acc.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", a.user, 0, password))

    def _only_codec(self, name: str) -> None:
        """Disable every codec but ``name`` (priority 0: neither offered nor accepted)."""
        for codec in self.ep.codecEnum2():
            self.ep.codecSetPriority(codec.codecId,
                                     255 if codec.codecId.startswith(name) else 0)

    def _tls_transport(self) -> None:
        """SIP over TLS (an ephemeral listening port), verifying the server's
        certificate against ``--tls-ca``; chosen for ``;transport=tls`` URIs."""
        transport = pj.TransportConfig()
        transport.port = 0
        transport.boundAddress = "127.0.0.1"
        tls = transport.tlsConfig
        tls.CaListFile = self.args.tls_ca
        tls.method = pj.PJSIP_TLSV1_2_METHOD
        tls.verifyServer = True
        self.ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, transport)

    @property
    def uri(self) -> str:
        return f"sip:{self.args.user}@127.0.0.1:{self.args.port}"

    # Calls.

    def on_incoming(self, call: PhoneCall, prm: pj.OnIncomingCallParam) -> None:
        info = call.getInfo()
        self.calls[call.number] = call
        emit("incoming", call=call.number, remote=info.remoteUri, local=info.localUri,
             sip_call_id=info.callIdString)
        a = self.args
        if a.reject:
            self._respond(call, a.reject)
            return
        self._respond(call, 180)
        if a.answer_after >= 0:
            self.later(a.answer_after, lambda: self._respond(call, 200))
        del prm

    def _respond(self, call: PhoneCall, status: int) -> None:
        if call.number not in self.calls:
            return
        prm = pj.CallOpParam(True)
        prm.statusCode = status
        try:
            call.answer(prm)
        except pj.Error as error:
            emit("error", what=f"answer {status}", reason=error.info())

    def on_confirmed(self, call: PhoneCall) -> None:
        if self.args.hangup_after > 0:
            self.later(self.args.hangup_after, lambda: self.hangup(call.number))
        if self.args.send_dtmf:
            self.later(self.args.dtmf_delay, lambda: self.dtmf(self.args.send_dtmf, "rfc"))

    def on_disconnected(self, call: PhoneCall) -> None:
        self.calls.pop(call.number, None)
        if self.args.quit_after_call and not self.calls:
            self.later(0.5, lambda: setattr(self, "stopping", True))  # the recording first
        if call.recorder is not None:
            call.recorder = None  # the WAV header is completed on the bridge's next ticks
            self._report_recording(self._record_path(call), call.number, 100)
        # Dropped from ``calls`` here, the pjsua2 Call dies when this callback
        # returns: in its own DISCONNECTED callback (see adapters/sip/pjsua/legs.py).

    def _report_recording(self, path: Path, number: int, checks: int) -> None:
        try:
            with wave.open(str(path)):
                emit("recorded", call=number, path=str(path))
        except (OSError, EOFError, wave.Error):
            if checks > 0:
                self.later(0.05, lambda: self._report_recording(path, number, checks - 1))
            else:
                emit("error", what=f"recording {path} never completed")

    def wire_audio(self, call: PhoneCall, audio: pj.AudioMedia) -> None:
        if self.tone is not None:
            self.tone.startTransmit(audio)
        if self.args.record_dir and call.recorder is None:
            path = self._record_path(call)
            path.parent.mkdir(parents=True, exist_ok=True)
            call.recorder = pj.AudioMediaRecorder()
            call.recorder.createRecorder(str(path))
        if call.recorder is not None:
            audio.startTransmit(call.recorder)

    def _record_path(self, call: PhoneCall) -> Path:
        return Path(self.args.record_dir) / f"{self.args.user}-call{call.number}.wav"

    # Commands.

    def run_command(self, line: str) -> None:
        words = line.split()
        if not words:
            return
        verb, rest = words[0], words[1:]
        if verb == "quit":
            self.stopping = True
        elif verb == "dial":
            self.dial(rest[0])
        elif verb == "dtmf":
            self.dtmf(rest[0], rest[1] if len(rest) > 1 else "rfc")
        elif verb == "hangup":
            self.hangup(int(rest[0]) if rest else None)
        elif verb == "answer":
            self._on_latest(lambda c: self._respond(c, 200))
        elif verb == "hold":
            self._on_latest(lambda c: c.setHold(pj.CallOpParam(True)))
        elif verb == "unhold":
            self._on_latest(self._unhold)
        elif verb in ("register", "unregister"):
            self._set_registration(renew=verb == "register")
        else:
            emit("error", what=f"unknown command {verb!r}")

    def dial(self, uri: str) -> None:
        call = PhoneCall(self, self.account)
        self.calls[call.number] = call
        try:
            call.makeCall(uri, pj.CallOpParam(True))
        except pj.Error as error:
            self.calls.pop(call.number, None)
            emit("error", what=f"dial {uri}", reason=error.info())
            return
        emit("dialled", call=call.number, uri=uri, sip_call_id=call.getInfo().callIdString)

    def dtmf(self, digits: str, method: str) -> None:
        def send(call: PhoneCall) -> None:
            prm = pj.CallSendDtmfParam()
            prm.digits = digits
            prm.method = (pj.PJSUA_DTMF_METHOD_SIP_INFO if method == "info"
                          else pj.PJSUA_DTMF_METHOD_RFC2833)
            call.sendDtmf(prm)
            emit("dtmf_sent", call=call.number, digits=digits, method=method)
        self._on_latest(send)

    def hangup(self, number: int | None = None) -> None:
        call = self.calls.get(number) if number is not None else self._latest()
        if call is not None:
            try:
                call.hangup(pj.CallOpParam(True))
            except pj.Error as error:
                emit("error", what="hangup", reason=error.info())

    def _set_registration(self, *, renew: bool) -> None:
        try:
            self.account.setRegistration(renew)
        except pj.Error as error:
            emit("error", what="register" if renew else "unregister", reason=error.info())

    @staticmethod
    def _unhold(call: PhoneCall) -> None:
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        call.reinvite(prm)

    def _latest(self) -> PhoneCall | None:
        return self.calls[max(self.calls)] if self.calls else None

    def _on_latest(self, action: Any) -> None:
        call = self._latest()
        if call is None:
            emit("error", what="no call")
            return
        try:
            action(call)
        except pj.Error as error:
            emit("error", what="call action", reason=error.info())

    # The loop.

    def later(self, delay: float, action: Any) -> None:
        self.timers.append((time.monotonic() + delay, action))

    def loop(self) -> None:
        deadline = time.monotonic() + self.args.lifetime
        while not self.stopping and time.monotonic() < deadline:
            self.ep.libHandleEvents(10)
            while not self.commands.empty():
                self.run_command(self.commands.get_nowait())
            now = time.monotonic()
            due = [t for t in self.timers if t[0] <= now]
            self.timers = [t for t in self.timers if t[0] > now]
            for _, action in due:
                action()

    def shutdown(self) -> None:
        for number in list(self.calls):  # no local variable may hold a Call (below)
            with contextlib.suppress(pj.Error):
                self.calls[number].hangup(pj.CallOpParam(True))
        end = time.monotonic() + 2
        while self.calls and time.monotonic() < end:
            self.ep.libHandleEvents(20)
        # Every Call must be gone before libDestroy (after it, one asserts in pjsua and
        # aborts us); a call whose far end died is still up here, held by timers too.
        self.calls.clear()
        self.timers.clear()
        self.tone = None
        self.account.shutdown()
        self.ep.libDestroy()


def login(args: argparse.Namespace, uri: str) -> None:
    """Log the agent in with this phone as its device, through the HTTP API."""
    if not args.api.startswith(("http://", "https://")):
        raise SystemExit(f"--api must be an http(s) URL, got {args.api!r}")
    body = json.dumps({"device_uri": uri}).encode()
    headers = {"Content-Type": "application/json"}
    token = os.environ.get("DIALTONE_API_TOKEN")  # a key or access token; never in argv
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        f"{args.api}/v1/agents/{args.agent}/login", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    emit("login", agent=args.agent, status=status)


def read_stdin(commands: queue.Queue[str]) -> None:
    for line in sys.stdin:
        commands.put(line.strip())
    commands.put("quit")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--user", default="phone")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rtp-port", type=int, default=0)
    p.add_argument("--answer-after", type=float, default=0.5,
                   help="seconds from the INVITE to 200 OK; negative: never answer")
    p.add_argument("--reject", type=int, default=0, help="answer every INVITE with this status")
    p.add_argument("--hangup-after", type=float, default=0.0, help="seconds after answer")
    p.add_argument("--tone", type=float, default=0.0, help="play this frequency (Hz)")
    p.add_argument("--record-dir", default="")
    p.add_argument("--dial", default="", help="call this URI at start")
    p.add_argument("--quit-after-call", action="store_true", help="exit when no call is left")
    p.add_argument("--send-dtmf", default="", help="digits sent once a call is confirmed")
    p.add_argument("--dtmf-delay", type=float, default=1.0)
    p.add_argument("--api", default="", help="log in through this dialtone API base URL "
                   "(credential: $DIALTONE_API_TOKEN)")
    p.add_argument("--agent", default="", help="the agent key to log in as")
    p.add_argument("--registrar", default="", help="register there, e.g. sip:127.0.0.1:5060 "
                   "(password: $DIALTONE_SIP_PASSWORD)")
    p.add_argument("--domain", default="", help="the SIP domain to register in (the realm)")
    p.add_argument("--reg-expires", type=int, default=300, help="registration lifetime asked (s)")
    p.add_argument("--tls-ca", default="", help="add a SIP over TLS transport trusting "
                   "this CA (PEM) for servers' certificates")
    p.add_argument("--srtp", choices=sorted(SRTP_USE), default="off",
                   help="SRTP (SDES) in calls: off, optional or mandatory")
    p.add_argument("--codec", default="", help="only this codec, e.g. PCMU/8000")
    p.add_argument("--workdir", default=".")
    p.add_argument("--lifetime", type=float, default=600.0, help="exit after this many seconds")
    p.add_argument("--pj-log-level", type=int, default=1)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    phone = Phone(args)
    signal.signal(signal.SIGTERM, lambda *_: setattr(phone, "stopping", True))
    phone.start()
    threading.Thread(target=read_stdin, args=(phone.commands,), daemon=True).start()
    emit("ready", uri=phone.uri)
    if args.api and args.agent:
        login(args, phone.uri)
    if args.dial:
        phone.dial(args.dial)
    try:
        phone.loop()
    finally:
        phone.shutdown()
        emit("stopped")


if __name__ == "__main__":
    main()
