"""What a call's flow asks its adapter to do, as plain values.

The adapter performs them in the order given. A flow has already moved to its
next state when it returns them: pjsua2 may report a fact while an action is
being performed (hanging up a leg reports it gone at once), and that fact must
meet the new state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from application.b2bua.legs import LegRole, Timer
from domain.call_commands import CallCommand, EndCall

L = TypeVar("L")


@dataclass(frozen=True)
class Emit:
    """Put a domain command on the call's command sink (stored in order)."""

    command: CallCommand


@dataclass(frozen=True)
class Respond(Generic[L]):
    """A provisional or final response to the caller's INVITE."""

    leg: L
    status: int


@dataclass(frozen=True)
class HangUp(Generic[L]):
    """BYE, CANCEL or a final error response, whatever the leg's dialog needs."""

    leg: L
    status: int | None = None
    headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class HangUpAllBut(Generic[L]):
    """Hang up every leg of the call except ``keep`` (None: every one)."""

    keep: L | None


@dataclass(frozen=True)
class Place:
    """Make a new leg of ``role`` and INVITE ``target``; report ``Placed`` or
    ``PlaceFailed`` back."""

    role: LegRole
    target: str


@dataclass(frozen=True)
class RefuseRefer:
    status: int


@dataclass(frozen=True)
class FollowRefer(Generic[L]):
    """Accept the REFER of ``leg``: make the outbound leg that calls ``target``,
    and report it back (``ReferFollowed``)."""

    leg: L
    target: str


@dataclass(frozen=True)
class Bridge:
    """Connect the parties' audio both ways, or the waiting party to music."""


@dataclass(frozen=True)
class Unbridge:
    """Stop the two parties hearing each other (one holds the other)."""


@dataclass(frozen=True)
class StopHoldMusic:
    pass


@dataclass(frozen=True)
class Hold(Generic[L]):
    """Put ``leg`` on hold (re-INVITE): the other party held the call."""

    leg: L


@dataclass(frozen=True)
class Unhold(Generic[L]):
    leg: L


@dataclass(frozen=True)
class StartTimer:
    """Report ``TimerFired(timer)`` in ``seconds`` (unless cancelled)."""

    timer: Timer
    seconds: float


@dataclass(frozen=True)
class CancelTimer:
    timer: Timer


@dataclass(frozen=True)
class SampleMedia:
    """Sample the legs' RTP statistics every few seconds while the call is answered."""


@dataclass(frozen=True)
class TransferAnswered(Generic[L]):
    """``new`` answered and replaced ``transferor`` (who hangs up itself)."""

    transferor: L
    new: L


@dataclass(frozen=True)
class Finish:
    """The call is over: stop its timers and music, report its media quality
    (``answered``: it was answered until now) and store ``end``."""

    end: EndCall
    answered: bool


Action = (Emit | Respond[L] | HangUp[L] | HangUpAllBut[L] | Place | RefuseRefer
          | FollowRefer[L] | Bridge | Unbridge | StopHoldMusic | Hold[L] | Unhold[L]
          | StartTimer | CancelTimer | SampleMedia | TransferAnswered[L] | Finish)
