"""A call-centre call before anyone talks to the caller: where the caller is
sent (a menu, a queue, a number, goodbye) and the IVR menus' keys, without
pjsua2 (the adapter is ``adapters/sip/sessions/centre_front.py``).

Stages of the caller's visit (``Stage``)::

    STARTING --go(target)--> IVR | QUEUE | DIALLING | (goodbye)
    IVR --menu prompt ended--> wait for a key (KEY_WAIT timer, the menu's timeout)
        --key, or KEY_WAIT fired--> ``IvrMenu.decide``: the same menu again
                                    (REPEAT), or go(its action)
    QUEUE --the queue refused the call--> (goodbye)
          --offer reserved--> ring the agent's device (several for ring-all)
          --agent 200 OK--> CONNECTING --accept_offer stored--> TALKING
          --agent rejects / rings out--> miss_offer, still QUEUE
          --caller hangs up, or the worker stops, before the queue answered the
            enqueue--> LEAVING
    LEAVING --the queue's answer--> ended (abandoned if it took the call, else cancelled;
            failed if the worker stopped)
            --the worker stops waiting (a second shutdown)--> ended as held
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

Entering a queue is one fact, the queue's (``Queue.CallEnqueued``, written by
the call-centre lane): the flow submits only ``Enqueue``. The call's own record
of it (``QueueCall``, the Call's ``Queued``) follows the committed outcome, with
the enqueue's time and queue key: it is emitted when ``CentreDone`` says the
queue took the call, never when the queue refused it. A move by the platform
(overflow, a waiting call transferred) follows the same rule: the queue's event,
committed with the enqueue in the next queue, is heard from the log
(``queue_left``) and only then is ``Queued`` emitted. A caller who hangs up
before the queue answered waits (``LEAVING``) for that answer, so that the
call's history has ``Queued`` before ``Ended`` whenever the queue had the call.
So does a call the worker stops in that moment (``shutdown``): the worker's drain
waits a bounded time for the answer, then ends it without.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import replace
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
from application.b2bua.front_actions import (
    ClearCallee,
    DialNumber,
    EndAnswered,
    EndVisit,
    FrontAction,
    Goodbye,
    KeyPressed,
    PlaceCallee,
    PlayMenu,
    PlayMusic,
    PlayPosition,
    PromptEnded,
    StopPrompt,
    Talk,
    WithdrawRings,
)
from application.b2bua.legs import Answered, Gone, Ringing, Timer
from application.b2bua.outcomes import (
    NO_ANSWER_TIMEOUT,
    NO_CAPACITY,
    NO_ROUTE,
    Outcome,
    callee_failure,
)
from application.b2bua.plain import now
from domain.addressing import Target, TargetKind
from domain.call import Disposition, HangupSide
from domain.call_commands import QueueCall, RingCall, RouteCall
from domain.ivr import IvrMenu

__all__ = [
    "ClearCallee", "DialNumber", "EndAnswered", "EndVisit", "Front", "FrontAction", "Goodbye",
    "KeyPressed", "PlaceCallee", "PlayMenu", "PlayMusic", "PlayPosition", "PromptEnded",
    "QueueInfo", "Stage", "StopPrompt", "Talk", "WithdrawRings",
]

log = logging.getLogger(__name__)

L = TypeVar("L", bound=Hashable)


class Stage(Enum):
    STARTING = "starting"
    IVR = "ivr"
    QUEUE = "queue"
    CONNECTING = "connecting"
    DIALLING = "dialling"
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


class Front(Generic[L]):
    """Where one call-centre caller is, and where the IVR sends them."""

    def __init__(self, call_id: UUID, caller: L, menus: Callable[[UUID], IvrMenu | None],
                 queues: Callable[[UUID], QueueInfo | None], describe: Callable[[Target], str],
                 announce_every_s: float = 20.0, clock: Callable[[], datetime] = now,
                 no_answer_s: float | None = None) -> None:
        self.call_id = call_id
        self.caller = caller
        self.menus = menus
        self.queues = queues
        self.describe = describe
        self.announce_every_s = announce_every_s
        self.no_answer_s = no_answer_s  # a dialled number has this long to answer
        self.clock = clock
        self.stage = Stage.STARTING
        self.queue: QueueInfo | None = None
        self.queue_id: UUID | None = None
        self.menu_id: UUID | None = None
        self.attempt = 1
        self.ever_answered = False  # someone answered for the platform once
        self.entering: Enqueue | None = None  # submitted, the queue's answer not heard yet
        self.leaving: EndVisit | None = None  # the caller's end, held until that answer

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
        if timer is Timer.NO_ANSWER and self.stage is Stage.DIALLING:
            log.info("call %s: the number dialled did not answer within %.0f s", self.call_id,
                     self.no_answer_s or 0.0)
            return self.dial_failed(NO_ANSWER_TIMEOUT, HangupSide.SYSTEM)
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
        self.entering = Enqueue(queue_id, self.call_id, self.clock(), key, transferred_from)
        # No QueueCall here: the call's Queued follows the queue's answer (entered).
        return [*actions, act.CancelTimer(Timer.KEY_WAIT), Submit(self.entering),
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
        if isinstance(command, Enqueue):
            return self.entered(command, done)
        if isinstance(command, AskPosition) and self.stage is Stage.QUEUE and done.ok \
                and isinstance(done.value, int):
            log.info("call %s: position %d announced", self.call_id, done.value)
            return [PlayPosition(done.value), *self._announce_in(self.announce_every_s)]
        return []

    def entered(self, command: Enqueue, done: CentreDone) -> list[FrontAction]:
        """The queue's answer to an ``Enqueue``: the call's ``Queued`` once the queue
        took the call (committed), a goodbye when it refused it; and the end of a
        caller who left meanwhile."""
        if command != self.entering:  # not the enqueue awaited (heard already)
            if not done.ok and command.queue_id == self.queue_id:
                return self.refused(done)
            return []
        self.entering = None
        held, self.leaving = self.leaving, None
        if done.ok:
            took: list[FrontAction] = [act.Emit(QueueCall(self.call_id, command.at,
                                                          command.key))]
            return took if held is None else [*took, held]
        if held is not None:  # the queue never had the call
            return [_never_queued(held)]
        return self.refused(done)

    def offered(self) -> list[FrontAction]:
        """The router offered the call (its reservation is heard from the log): the
        queue has it, so an enqueue still awaiting its outcome was committed.
        The adapter calls this before ringing, so ``Queued`` precedes ``Ringing``
        whichever of the outcome and the offer reaches the worker first."""
        if self.entering is None:
            return []
        return self.entered(self.entering, CentreDone(self.entering, True))

    def refused(self, done: CentreDone) -> list[FrontAction]:
        log.error("call %s: the queue refused it: %s", self.call_id, done.error)
        return self.goodbye("queue_refused")

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
        if self.no_answer_s is not None:  # before the placing, which may end the call
            actions.append(act.StartTimer(Timer.NO_ANSWER, self.no_answer_s))
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
        # The dial's no-answer timer, when it started one, stops with the answer or end.
        stop = [act.CancelTimer(Timer.NO_ANSWER)] if self.no_answer_s is not None else []
        if isinstance(fact, Answered):
            return [*stop, Talk()]
        return [*stop, ClearCallee(),
                *self.dial_failed(callee_failure(fact.status), HangupSide.CALLEE)]

    def dial_failed(self, outcome: Outcome, side: HangupSide) -> list[FrontAction]:
        if self.ever_answered:  # a blind transfer's target: the call was answered
            return [EndAnswered(HangupSide.SYSTEM, "transfer_failed")]
        return [EndVisit(outcome.disposition, outcome.hangup_cause, side, outcome.relay_status)]

    # Leaving before anyone talked to the caller.

    def _abandon(self, dropped: bool) -> Abandon | None:
        """The caller's leaving of their queue, if they are waiting in one."""
        if self.stage in (Stage.QUEUE, Stage.CONNECTING) and self.queue_id is not None:
            return Abandon(self.queue_id, self.call_id, self.clock(), dropped)
        return None

    def caller_left(self) -> list[FrontAction]:
        """The caller hung up: an abandon if they were waiting, else a cancel. If the
        queue has not answered the enqueue yet, the end waits for it (``entered``)."""
        if self.stage is Stage.LEAVING:
            return []  # the caller's leg reported again
        abandon = self._abandon(dropped=False)
        if abandon is None:
            return [EndVisit(Disposition.CANCELLED, "originator_cancel", HangupSide.CALLER,
                             None)]
        end = EndVisit(Disposition.ABANDONED, "caller_abandoned", HangupSide.CALLER, None)
        if self.entering is None:
            return [Submit(abandon), end]
        self.stage, self.leaving = Stage.LEAVING, replace(end, at=abandon.at)
        return [Submit(abandon)]

    def shutdown(self, cause: str) -> list[FrontAction]:
        """The worker stops. No command says "the platform dropped it": a waiting
        call leaves its queue as abandoned. If the queue has not answered the call's
        enqueue yet, the end waits for that answer (``LEAVING``), as a caller's who
        left does: ended at once, the call would miss the ``Queued`` of a queue that
        did take it. Asked again (the worker's drain waits no longer), a held end
        goes without the answer."""
        if self.leaving is not None:
            held, self.leaving, self.entering = self.leaving, None, None  # no answer now
            return [held]
        drop = self._abandon(dropped=True)
        end = EndVisit(Disposition.FAILED, cause, HangupSide.SYSTEM, 503)
        if drop is None:
            return [end]
        if self.entering is not None:
            log.info("call %s: the worker stops before its queue answered; the end waits "
                     "for the queue's answer", self.call_id)
            self.stage, self.leaving = Stage.LEAVING, replace(end, at=drop.at)
            return [Submit(drop)]
        return [Submit(drop), end]


def _never_queued(held: EndVisit) -> EndVisit:
    """A held end once the queue refused the call: a caller who left cancelled it
    (the queue never had it); a stopping worker's end stays failed."""
    if held.disposition is Disposition.ABANDONED:
        return replace(held, disposition=Disposition.CANCELLED, cause="originator_cancel")
    return held
