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

The IVR and the choice of destination are decided here; the queue, the
offers and the talk are still the adapter's (``centre_front``,
``centre_session``), which moves ``stage`` for them.

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
from typing import Generic, TypeVar
from uuid import UUID

from application.b2bua import actions as act
from application.b2bua.legs import Timer
from application.b2bua.plain import now
from domain.addressing import Target, TargetKind
from domain.call_commands import RouteCall
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
class EnterQueue:
    queue_id: UUID


@dataclass(frozen=True)
class DialNumber:
    """Call ``number`` through the worker's dialplan for the caller."""

    number: str


@dataclass(frozen=True)
class Goodbye:
    """The platform ends the call: a short tone, then BYE; ``cause`` for its end."""

    cause: str


FrontAction = (act.Emit | act.StartTimer | act.CancelTimer | PlayMenu | StopPrompt
               | EnterQueue | DialNumber | Goodbye)


class Front(Generic[L]):
    """Where one call-centre caller is, and where the IVR sends them."""

    def __init__(self, call_id: UUID, caller: L, menus: Callable[[UUID], IvrMenu | None],
                 describe: Callable[[Target], str],
                 clock: Callable[[], datetime] = now) -> None:
        self.call_id = call_id
        self.caller = caller
        self.menus = menus
        self.describe = describe
        self.clock = clock
        self.stage = Stage.STARTING
        self.menu_id: UUID | None = None
        self.attempt = 1
        self.ever_answered = False  # someone answered for the platform once

    # Where the caller goes.

    def go(self, target: Target) -> list[FrontAction]:
        kind = target.kind
        if kind is TargetKind.QUEUE:
            return [EnterQueue(target.aggregate_id)]
        if kind is TargetKind.IVR:
            return self.enter_menu(target.aggregate_id, 1)
        if kind is TargetKind.NUMBER and target.value is not None:
            return [*self.route_note(target), DialNumber(target.value)]
        if kind is TargetKind.HANGUP:
            return [Goodbye("ivr_hangup")]
        return [Goodbye("recording_unavailable")]  # no announcement player yet

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
            return [Goodbye("unknown_menu")]
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
        return self.key(None) if timer is Timer.KEY_WAIT else []

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
