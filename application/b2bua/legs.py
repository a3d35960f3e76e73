"""The SIP facts a call's flow is told: who called whom (``InboundFacts``, from
the INVITE), then what each of its legs reports.

A leg is whatever handle the adapter uses (``adapters.sip.pjsua.legs.Leg``; a fake
in unit tests): the flow only compares legs by identity and hands them back in
its actions. The adapter reads pjsua2's callbacks and reports each as one of
these facts; a callback that is none of them (a state the flow does not care
about) is not reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Generic, Protocol, TypeVar

from domain.addressing import DEFAULT_TENANT
from domain.call import Direction

L = TypeVar("L")


class LegRole(StrEnum):
    """What a leg is for (the pjsua2 adapter tags its legs with it too)."""

    CALLER = "caller"  # the inbound dialog we answer
    CALLEE = "callee"  # a dialog we place
    AGENT = "agent"  # a dialog we place to an agent's device (an offer)
    SUPERVISOR = "supervisor"  # a dialog we place to a supervisor's device


class Audio(Enum):
    """A leg's audio as its last SDP left it."""

    ACTIVE = "active"
    REMOTE_HOLD = "remote_hold"  # the far end put us on hold (sendonly/inactive)
    OTHER = "other"  # no media yet, local hold, or anything else


class Timer(Enum):
    """The flow's own timers (the adapter runs them and reports when they fire)."""

    NO_ANSWER = "no_answer"  # the callee has this long to answer
    TRANSFEROR_GRACE = "transferor_grace"  # a transferor may stay this long after
    KEY_WAIT = "key_wait"  # an IVR caller has this long to press a key
    ANNOUNCE = "announce"  # the next announcement of a waiting caller's position


@dataclass(frozen=True)
class Ringing(Generic[L]):
    """A provisional response (``status``: 180, 183...) on a leg we placed."""

    leg: L
    status: int


@dataclass(frozen=True)
class Answered(Generic[L]):
    """The leg's dialog is confirmed (200 OK and ACK)."""

    leg: L


@dataclass(frozen=True)
class Gone(Generic[L]):
    """The leg's dialog ended (BYE, CANCEL, a final error: ``status``, 0 for none)."""

    leg: L
    status: int


@dataclass(frozen=True)
class MediaChanged(Generic[L]):
    """An SDP offer/answer changed the leg's audio (hold, resume, a new port)."""

    leg: L
    audio: Audio


@dataclass(frozen=True)
class Placed(Generic[L]):
    """The INVITE of a leg the flow asked for (``actions.Place``) is on its way."""

    leg: L


@dataclass(frozen=True)
class PlaceFailed:
    """No INVITE could be sent; ``no_slot``: the worker had no call slot left."""

    no_slot: bool


@dataclass(frozen=True)
class ReferReceived(Generic[L]):
    """A party asked, by REFER, to be replaced by ``refer_to``."""

    leg: L
    refer_to: str


@dataclass(frozen=True)
class ReferFollowed(Generic[L]):
    """The adapter made ``new`` (an outbound leg) for an accepted REFER of ``leg``."""

    leg: L
    new: L
    target: str


@dataclass(frozen=True)
class TimerFired:
    timer: Timer


@dataclass(frozen=True)
class ShutdownAsked:
    """The worker stops: end the call from our side with ``cause``."""

    cause: str


Fact = (Ringing[L] | Answered[L] | Gone[L] | MediaChanged[L] | Placed[L] | PlaceFailed
        | ReferReceived[L] | ReferFollowed[L] | TimerFired | ShutdownAsked)


class KeyMethod:
    """Which of a leg's DTMF keys are key presses: a key is dropped only as the copy
    of one that came by the other method.

    A phone set to send DTMF "RFC 2833 + SIP INFO" sends every key both ways, and
    the SIP stack reports each copy (pjsua2's ``onDtmfDigit``, whose ``method`` says
    which). A key is the copy of an earlier one when the same digit came by another
    method within ``window_s`` (a SIP INFO arriving 0.5 s after its RFC 4733 event
    included) and that earlier key has no copy yet: one press is one key. Any other
    key is taken, so a phone that changes method within a call (a re-INVITE without
    telephone-event) keeps its keys. One per leg; ``method`` is the adapter's (any
    value), ``clock`` monotonic seconds."""

    def __init__(self, window_s: float = 1.5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self._uncopied: list[tuple[str, object, float]] = []  # keys taken, oldest first

    def take(self, digit: str, method: object) -> bool:
        """Whether ``digit``, which came by ``method``, is a key press."""
        at = self.clock()
        self._uncopied = [key for key in self._uncopied if at - key[2] <= self.window_s]
        for key in self._uncopied:
            if key[0] == digit and key[1] != method:
                self._uncopied.remove(key)  # copied once: a third one is a press again
                return False
        self._uncopied.append((digit, method, at))
        return True


def refer_target(refer_to: str) -> str:
    """The URI of a Refer-To value, without its name-addr angle brackets."""
    inner = refer_to.strip()
    if inner.startswith("<") and ">" in inner:
        inner = inner[1 : inner.index(">")]
    return inner


class NumberBook(Protocol):
    """The provisioned numbers (adapters/sip/routing/directory.py's Directory)."""

    def owns(self, did: str) -> bool: ...

    def tenant(self, did: str) -> str: ...


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
                   numbers: NumberBook | None, device_tenant: str | None = None,
                   ) -> InboundFacts:
        """The facts with the call's direction, trunk and tenant, from the numbers
        the tenants provisioned: a call TO one of them came in from outside
        (inbound, on that number). Otherwise, from a device the SIP edge
        authenticated (``device_tenant``: its tenant), the call is that tenant's:
        outbound on the caller's number when the tenant owns it, else internal.
        Without that (the edge does not authenticate devices), a call FROM a
        provisioned number (our number presented as the caller) goes out
        (outbound, on that number), and a call between two numbers nobody
        provisioned (phone to phone through the dialplan) is internal, of the
        default tenant."""
        if numbers is not None and numbers.owns(callee):
            return cls(sip_call_id, caller, callee, numbers.tenant(callee),
                       Direction.INBOUND, callee)
        owner = numbers.tenant(caller) if numbers is not None and numbers.owns(caller) else None
        if device_tenant is not None and owner != device_tenant:
            return cls(sip_call_id, caller, callee, device_tenant, Direction.INTERNAL)
        if owner is not None:
            return cls(sip_call_id, caller, callee, owner, Direction.OUTBOUND, caller)
        return cls(sip_call_id, caller, callee, DEFAULT_TENANT, Direction.INTERNAL)
