"""A call-centre call before anyone talks to the caller: where the caller is
sent (a menu, a queue, a number, goodbye) and the IVR menus' keys, without
pjsua2 (the adapter is ``adapters/sip/sessions/centre_front.py``).

Stages of the caller's visit (``Stage``)::

    STARTING --go(target)--> IVR | QUEUE | DIALLING | (goodbye)
    IVR --menu prompt ended--> wait for a key (KEY_WAIT timer, the menu's timeout)
        --key, or KEY_WAIT fired--> ``IvrMenu.decide``: the same menu again
                                    (REPEAT), or go(its action)
    QUEUE --offer reserved--> ring the agent's device (several for ring-all)
          --agent 200 OK--> CONNECTING --accept_offer stored--> TALKING
          --agent rejects / rings out--> miss_offer, still QUEUE
    DIALLING (a number: from a menu, an overflow or a blind transfer) --200--> TALKING
    TALKING --agent hangs up / caller hangs up--> ended (end_agent_call: wrap-up)
            --transfer to a queue--> QUEUE again (the call stays answered)

The IVR, the choice of destination, the wait in a queue (music, position
announcements, being moved by an overflow or a transfer, leaving) and the
dialling of a number are decided here; the offers in ``offers.py``; the talk
(audio, recording) is the adapter's (``centre_session``).

Convention (see ``domain.call.Call.enter_queue``): answering the caller's leg
to play prompts and music is not ``answer_call``; only the agent's (or
callee's) 200 OK is. So a caller who hangs up while queued ends ``abandoned``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Generic, Protocol, TypeVar
from uuid import UUID

from application.b2bua import actions as act
from application.b2bua.centre_commands import (
    Abandon,
    AskPosition,
    CentreDone,
    Enqueue,
    Submit,
)
from application.b2bua.legs import Answered, Gone, Ringing, Timer
from application.b2bua.outcomes import NO_CAPACITY, NO_ROUTE, Outcome, callee_failure
from application.b2bua.plain import now
from domain.addressing import Target, TargetKind
from domain.call import Disposition, HangupSide
from domain.call_commands import QueueCall, RingCall, RouteCall
from domain.ivr import IvrMenu

log = logging.getLogger(__name__)

L = TypeVar("L", bound=Hashable)


class Stage(Enum):
    STARTING = "starting"
    IVR = "ivr"
    QUEUE = "queue"
    CONNECTING = "connecting"
    DIALLING = "dialling"
    TALKING = "talking"
    ENDED = "ended"


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
    """Play a menu's prompt (by name) to the caller, then report ``PromptEnded``."""

    prompt: str


@dataclass(frozen=True)
class StopPrompt:
    """Stop the prompt being played (a key barges in)."""


@dataclass(frozen=True)
class PlayMusic:
    """Music under the caller's prompts (by name: the queue's music on hold)."""

    name: str


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
    answered call ends: the adapter's flow knows)."""

    disposition: Disposition
    cause: str
    side: HangupSide
    sip_status: int | None


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


FrontAction = (act.Emit | act.StartTimer | act.CancelTimer | PlayMenu | StopPrompt | PlayMusic
               | PlayPosition | WithdrawRings | Submit | DialNumber | PlaceCallee | ClearCallee
               | Talk | EndAnswered | Goodbye | EndVisit)


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


class Front(Generic[L]):
    """Where one call-centre caller is, and where the IVR sends them."""

    def __init__(self, call_id: UUID, caller: L, menus: Callable[[UUID], IvrMenu | None],
                 queues: Callable[[UUID], QueueInfo | None], describe: Callable[[Target], str],
                 announce_every_s: float = 20.0, clock: Callable[[], datetime] = now) -> None:
        self.call_id = call_id
        self.caller = caller
        self.menus = menus
        self.queues = queues
        self.describe = describe
        self.announce_every_s = announce_every_s
        self.clock = clock
        self.stage = Stage.STARTING
        self.queue: QueueInfo | None = None
        self.queue_id: UUID | None = None
        self.menu_id: UUID | None = None
        self.attempt = 1
        self.ever_answered = False  # someone answered for the platform once

    # Where the caller goes.

    def go(self, target: Target) -> list[FrontAction]:
        kind = target.kind
        if kind is TargetKind.QUEUE:
            return self.enter_queue(target.aggregate_id)
        if kind is TargetKind.IVR:
            return self.enter_menu(target.aggregate_id, 1)
        if kind is TargetKind.NUMBER and target.value is not None:
            return [*self.route_note(target), DialNumber(target.value)]
        if kind is TargetKind.HANGUP:
            return self.goodbye("ivr_hangup")
        return self.goodbye("recording_unavailable")  # no announcement player yet

    def goodbye(self, cause: str) -> list[FrontAction]:
        self.stage = Stage.STARTING
        return [Goodbye(cause)]

    def route_note(self, target: Target) -> list[FrontAction]:
        """The Call's Routed event for where the caller goes (only before any answer)."""
        if self.ever_answered:
            return []
        return [act.Emit(RouteCall(self.call_id, self.clock(), self.describe(target)))]

    # The IVR.

    def enter_menu(self, menu_id: UUID, attempt: int) -> list[FrontAction]:
        menu = self.menus(menu_id)
        if menu is None:
            log.error("call %s: IVR menu %s unknown to this worker", self.call_id, menu_id)
            return self.goodbye("unknown_menu")
        actions = self.route_note(Target.ivr(menu_id)) if menu_id != self.menu_id else []
        self.stage, self.menu_id, self.attempt = Stage.IVR, menu_id, attempt
        log.info("call %s: IVR %s, attempt %d", self.call_id, menu.key, attempt)
        return [*actions, act.CancelTimer(Timer.KEY_WAIT), PlayMenu(menu.prompt)]

    def menu(self) -> IvrMenu | None:
        return self.menus(self.menu_id) if self.menu_id is not None else None

    def prompt_ended(self) -> list[FrontAction]:
        """The menu has been said: the caller has the menu's timeout to press a key."""
        menu = self.menu()
        if menu is None or self.stage is not Stage.IVR:
            return []
        return [act.StartTimer(Timer.KEY_WAIT, menu.timeout_s)]

    def key_pressed(self, leg: L, digit: str) -> list[FrontAction]:
        if leg is not self.caller or self.stage is not Stage.IVR:
            return []
        return self.key(digit)

    def timer_fired(self, timer: Timer) -> list[FrontAction]:
        if timer is Timer.KEY_WAIT:
            return self.key(None)
        return self.ask_position() if timer is Timer.ANNOUNCE else []

    def key(self, digit: str | None) -> list[FrontAction]:
        """A key (None: the timeout) on the current menu: ``IvrMenu.decide`` rules."""
        menu = self.menu()
        if menu is None or self.stage is not Stage.IVR:
            return []
        decision = menu.decide(digit, self.attempt)
        log.info("call %s: IVR %s key %s -> %s %s", self.call_id, menu.key, digit,
                 decision.outcome, decision.action.kind)
        barge_in: list[FrontAction] = [act.CancelTimer(Timer.KEY_WAIT), StopPrompt()]
        if decision.action.kind is TargetKind.REPEAT:
            return [*barge_in, *self.enter_menu(menu.id, decision.next_attempt)]
        return [*barge_in, *self.go(decision.action)]

    # Waiting in a queue.

    def enter_queue(self, queue_id: UUID, transferred_from: UUID | None = None
                    ) -> list[FrontAction]:
        settings = self.queues(queue_id)
        key = settings.key if settings is not None else str(queue_id)
        actions = self.route_note(Target.queue(queue_id))
        self.stage, self.queue, self.queue_id = Stage.QUEUE, settings, queue_id
        at = self.clock()
        return [*actions, act.CancelTimer(Timer.KEY_WAIT),
                act.Emit(QueueCall(self.call_id, at, key)),
                Submit(Enqueue(queue_id, self.call_id, at, key, transferred_from)),
                *self.hear_queue()]

    def hear_queue(self) -> list[FrontAction]:
        name = self.queue.music_on_hold if self.queue is not None else "default"
        actions: list[FrontAction] = [PlayMusic(name)]
        if self.queue is not None and self.queue.announce_position:
            actions += self._announce_in(1.0)
        return actions

    def _announce_in(self, seconds: float) -> list[FrontAction]:
        return [act.CancelTimer(Timer.ANNOUNCE), act.StartTimer(Timer.ANNOUNCE, seconds)]

    def ask_position(self) -> list[FrontAction]:
        if self.stage is not Stage.QUEUE or self.queue_id is None:
            return []
        return [Submit(AskPosition(self.queue_id, self.call_id))]

    def centre_done(self, done: CentreDone) -> list[FrontAction]:
        """A command's outcome (the adapter reports none once the call has ended)."""
        command = done.command
        if isinstance(command, Enqueue) and not done.ok and command.queue_id == self.queue_id:
            log.error("call %s: the queue refused it: %s", self.call_id, done.error)
            return self.goodbye("queue_refused")
        if isinstance(command, AskPosition) and self.stage is Stage.QUEUE and done.ok \
                and isinstance(done.value, int):
            log.info("call %s: position %d announced", self.call_id, done.value)
            return [PlayPosition(done.value), *self._announce_in(self.announce_every_s)]
        return []

    def queue_left(self, from_queue: UUID, target: Target) -> list[FrontAction]:
        """The platform moved the waiting call (overflow, or a transfer of a waiting call)."""
        if self.stage not in (Stage.QUEUE, Stage.CONNECTING) or from_queue != self.queue_id:
            return []
        log.info("call %s: left its queue for %s", self.call_id, target)
        if target.kind is not TargetKind.QUEUE:
            self.queue = self.queue_id = None
            return [WithdrawRings(), *self.go(target)]
        # The platform enqueued it there in the same transaction.
        settings = self.queues(target.aggregate_id)
        self.queue, self.queue_id = settings, target.aggregate_id
        key = settings.key if settings is not None else str(target.value)
        return [WithdrawRings(), act.Emit(QueueCall(self.call_id, self.clock(), key)),
                *self.hear_queue()]

    # Dialling a number (from a menu, an overflow, a blind transfer).

    def dial(self, uri: str | None) -> list[FrontAction]:
        """Call ``uri`` (None: the number has no route) while the caller hears music."""
        self.stage = Stage.DIALLING
        actions: list[FrontAction] = [PlayMusic("default")]
        if uri is None:
            return [*actions, *self.dial_failed(NO_ROUTE, HangupSide.SYSTEM)]
        return [*actions, PlaceCallee(uri)]

    def callee_not_placed(self, no_slot: bool) -> list[FrontAction]:
        return self.dial_failed(NO_CAPACITY if no_slot else callee_failure(0),
                                HangupSide.SYSTEM)

    def dialled(self, fact: Ringing[L] | Answered[L] | Gone[L]) -> list[FrontAction]:
        """A fact of the dialled party's leg."""
        if isinstance(fact, Ringing):
            if fact.status in (180, 183) and not self.ever_answered:
                return [act.Emit(RingCall(self.call_id, self.clock()))]
            return []
        if isinstance(fact, Answered):
            return [Talk()]
        return [ClearCallee(), *self.dial_failed(callee_failure(fact.status), HangupSide.CALLEE)]

    def dial_failed(self, outcome: Outcome, side: HangupSide) -> list[FrontAction]:
        if self.ever_answered:  # a blind transfer's target: the call was answered
            return [EndAnswered(HangupSide.SYSTEM, "transfer_failed")]
        return [EndVisit(outcome.disposition, outcome.hangup_cause, side, outcome.relay_status)]

    # Leaving before anyone talked to the caller.

    def _leave_queue(self, dropped: bool) -> list[FrontAction]:
        if self.stage in (Stage.QUEUE, Stage.CONNECTING) and self.queue_id is not None:
            return [Submit(Abandon(self.queue_id, self.call_id, self.clock(), dropped))]
        return []

    def caller_left(self) -> list[FrontAction]:
        """The caller hung up: an abandon if they were waiting, else a cancel."""
        left = self._leave_queue(dropped=False)
        if left:
            return [*left, EndVisit(Disposition.ABANDONED, "caller_abandoned",
                                    HangupSide.CALLER, None)]
        return [EndVisit(Disposition.CANCELLED, "originator_cancel", HangupSide.CALLER, None)]

    def shutdown(self, cause: str) -> list[FrontAction]:
        """The worker stops. No command says "the platform dropped it": a waiting
        call leaves its queue as abandoned."""
        return [*self._leave_queue(dropped=True),
                EndVisit(Disposition.FAILED, cause, HangupSide.SYSTEM, 503)]
