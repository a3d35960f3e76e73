"""What a call-centre call's front (``application.b2bua.front.Front``) hears and
asks for, as plain values: the facts of the IVR beside ``application.b2bua.legs``,
and the actions its adapter (``adapters/sip/sessions/centre_front.py``) performs
beside ``application.b2bua.actions``; and the words it is told in (its stages,
what it needs of a queue). ``front`` re-exports them."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import Generic, Protocol, TypeVar

from application.b2bua import actions as act
from application.b2bua.centre_commands import Submit
from domain.addressing import DEFAULT_TENANT
from domain.call import Disposition, HangupSide

L = TypeVar("L", bound=Hashable)


class Stage(Enum):
    """Where the caller is (``front``'s docstring draws the ways between them)."""

    STARTING = "starting"
    IVR = "ivr"
    QUEUE = "queue"
    CONNECTING = "connecting"
    DIALLING = "dialling"
    ANNOUNCING = "announcing"  # a recording plays; the call ends after it
    LEAVING = "leaving"  # the caller left; the queue's answer to the enqueue is awaited
    TALKING = "talking"
    ENDED = "ended"


class QueueInfo(Protocol):
    """What the front needs of a queue (``adapters.sip.routing.directory.QueueSettings``)."""

    @property
    def key(self) -> str: ...
    @property
    def music_on_hold(self) -> str: ...
    @property
    def announce_position(self) -> bool: ...
    @property
    def record_calls(self) -> bool: ...
    @property
    def tenant(self) -> str: ...  # whose music it plays


# Facts of the front (beside application.b2bua.legs).


@dataclass(frozen=True)
class KeyPressed(Generic[L]):
    """A DTMF key from ``leg``."""

    leg: L
    digit: str


@dataclass(frozen=True)
class PromptEnded:
    """The menu prompt asked for (``PlayMenu``) has been played to its end."""


# What the front asks its adapter to do (beside application.b2bua.actions).


@dataclass(frozen=True)
class PlayMenu:
    """Play a menu's prompt (by name, ``tenant``'s) to the caller, then report
    ``PromptEnded`` (also when it cannot be played: the menu goes on)."""

    prompt: str
    tenant: str


@dataclass(frozen=True)
class PlayRecording:
    """Play ``tenant``'s recording ``name`` to the caller, then report
    ``recording_ended`` (whether it was played)."""

    name: str
    tenant: str


@dataclass(frozen=True)
class StopPrompt:
    """Stop the prompt being played (a key barges in)."""


@dataclass(frozen=True)
class PlayMusic:
    """Music under the caller's prompts (by name: the queue's music on hold, of
    ``tenant``, the queue's)."""

    name: str
    tenant: str = DEFAULT_TENANT


@dataclass(frozen=True)
class PlayPosition:
    """Announce the caller's place in the queue."""

    position: int


@dataclass(frozen=True)
class WithdrawRings:
    """Stop ringing agents for this call (it left its queue)."""


@dataclass(frozen=True)
class EndVisit:
    """The call ends before anyone talks to the caller (or, once answered, as an
    answered call ends: the adapter's flow knows); ``at``: when, if not now (an
    end held until the queue's answer keeps the time the caller left)."""

    disposition: Disposition
    cause: str
    side: HangupSide
    sip_status: int | None
    at: datetime | None = None

    def never_queued(self) -> EndVisit:
        """This end, held until the queue's answer, once the queue refused the call: a
        caller who left cancelled it (the queue never had it); a stopping worker's
        end stays failed."""
        if self.disposition is Disposition.ABANDONED:
            return replace(self, disposition=Disposition.CANCELLED, cause="originator_cancel")
        return self


@dataclass(frozen=True)
class DialNumber:
    """Call ``number`` through the worker's dialplan for the caller."""

    number: str


@dataclass(frozen=True)
class PlaceCallee:
    """Call ``uri`` for the caller (the callee of the call from now on); report
    ``callee_not_placed`` if no INVITE could be sent."""

    uri: str


@dataclass(frozen=True)
class ClearCallee:
    """The dialled party is gone: the call has no callee any more."""


@dataclass(frozen=True)
class Talk:
    """The dialled party answered: the caller talks to them from now."""


@dataclass(frozen=True)
class EndAnswered:
    """End the call that was answered once (``side``, ``cause``)."""

    side: HangupSide
    cause: str


@dataclass(frozen=True)
class Goodbye:
    """The platform ends the call: a short tone, then BYE; ``cause`` for its end."""

    cause: str


FrontAction = (act.Emit | act.StartTimer | act.CancelTimer | PlayMenu | PlayRecording
               | StopPrompt | PlayMusic | PlayPosition | WithdrawRings | Submit | DialNumber
               | PlaceCallee | ClearCallee | Talk | EndAnswered | Goodbye | EndVisit)
