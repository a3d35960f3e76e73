"""A call-centre call before anyone talks to the caller: where the caller is
sent (a menu, a queue, a number, goodbye) and the IVR menus' keys, without
pjsua2 (the adapter is ``adapters/sip/sessions/centre_front.py``).

Stages of the caller's visit (``Stage``)::

    STARTING --go(target)--> IVR | QUEUE | DIALLING | ANNOUNCING | (goodbye)
    IVR --menu prompt ended--> wait for a key (KEY_WAIT timer, the menu's timeout)
        --key, or KEY_WAIT fired--> ``IvrMenu.decide``: the same menu again
                                    (REPEAT), or go(its action)
        --a menu entry past MAX_MENU_ENTRIES since the caller's last option
          chosen by a key--> (goodbye: ivr_loop)
    QUEUE --the queue refused the call--> (goodbye)
          --ANNOUNCE timer--> position asked and said; the timer runs while the
            caller waits (a failed question or a refused accept too)
          --offer reserved--> ring the agent's device (several for ring-all)
          --agent 200 OK--> CONNECTING --accept_offer stored--> TALKING
                                       --refused--> QUEUE (announcements restart)
          --agent rejects / rings out--> miss_offer, still QUEUE
          --overflow to a recording--> ANNOUNCING --played--> ended (recording_played)
          --caller hangs up, or the worker stops, before the queue answered the
            enqueue--> LEAVING
    LEAVING --the queue's answer--> ended (abandoned if it took the call, else cancelled;
            failed if the worker stopped)
            --the worker stops waiting (a second shutdown)--> ended as held
    DIALLING (a number: from a menu, an overflow or a blind transfer) --200--> TALKING
    TALKING --agent hangs up / caller hangs up--> ended (end_agent_call: wrap-up)
            --transfer to a queue--> QUEUE again (the call stays answered)

The IVR, the choice of destination, the wait in a queue (music, position
announcements, being moved by an overflow or a transfer, leaving) are decided
here, the dialling of a number in its part ``dialling.py``; the offers in
``offers.py``; the talk (audio, recording) is the adapter's (``centre_session``).

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
from typing import Generic, TypeVar
from uuid import UUID

from application.b2bua import actions as act
from application.b2bua.centre_commands import (
    Abandon,
    AskPosition,
    CentreDone,
    Enqueue,
    Submit,
)
from application.b2bua.dialling import Dialling
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
    PlayRecording,
    PromptEnded,
    QueueInfo,
    Stage,
    StopPrompt,
    Talk,
    WithdrawRings,
)
from application.b2bua.legs import Answered, Gone, Ringing, Timer
from application.b2bua.plain import now
from domain.addressing import DEFAULT_TENANT, Target, TargetKind
from domain.call import Disposition, HangupSide
from domain.call_commands import QueueCall, RouteCall
from domain.ivr import IvrMenu, IvrOutcome

__all__ = [
    "ClearCallee", "DialNumber", "EndAnswered", "EndVisit", "Front", "FrontAction", "Goodbye",
    "KeyPressed", "PlaceCallee", "PlayMenu", "PlayMusic", "PlayPosition", "PlayRecording",
    "PromptEnded", "QueueInfo", "Stage", "StopPrompt", "Talk", "WithdrawRings",
]

log = logging.getLogger(__name__)

# Menus one call may enter since the caller last chose an option by a key (a replay of
# the menu it is in is no entry): menus naming each other (a -> b -> a by default
# actions) would play for ever to a silent caller; one choosing by keys is not looping.
MAX_MENU_ENTRIES = 10

L = TypeVar("L", bound=Hashable)


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
        self.clock = clock
        self.dialling: Dialling[L] = Dialling(call_id, clock, no_answer_s)
        self.stage = Stage.STARTING
        self.queue: QueueInfo | None = None
        self.queue_id: UUID | None = None
        self.menu_id: UUID | None = None
        self.attempt = 1
        self.menu_entries = 0
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
        if kind is TargetKind.RECORDING and target.value is not None:  # a queue's overflow
            self.stage = Stage.ANNOUNCING
            tenant = self.queue.tenant if self.queue is not None else DEFAULT_TENANT
            return [PlayRecording(target.value, tenant)]
        return self.goodbye("ivr_hangup")  # HANGUP (a menu's REPEAT never comes here)

    def goodbye(self, cause: str) -> list[FrontAction]:
        self.stage = Stage.STARTING
        return [Goodbye(cause)]

    def recording_ended(self, played: bool) -> list[FrontAction]:
        """The recording asked for (``PlayRecording``) was played, or could not be."""
        if self.stage is not Stage.ANNOUNCING:
            return []
        if not played:
            return self.goodbye("recording_unavailable")
        return [EndVisit(Disposition.FAILED, "recording_played", HangupSide.SYSTEM, None)]

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
        if menu_id != self.menu_id or self.stage is not Stage.IVR:  # entered, not replayed
            self.menu_entries += 1
            if self.menu_entries > MAX_MENU_ENTRIES:
                log.warning("call %s: menu %s would be menu entry %d of the call (at most "
                            "%d): a loop of menus, goodbye", self.call_id, menu.key,
                            self.menu_entries, MAX_MENU_ENTRIES)
                return self.goodbye("ivr_loop")
        actions = self.route_note(Target.ivr(menu_id)) if menu_id != self.menu_id else []
        self.stage, self.menu_id, self.attempt = Stage.IVR, menu_id, attempt
        log.info("call %s: IVR %s, attempt %d", self.call_id, menu.key, attempt)
        return [*actions, act.CancelTimer(Timer.KEY_WAIT), PlayMenu(menu.prompt, menu.tenant)]

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
            return self.dialling.timed_out(self.ever_answered)
        return self.ask_position() if timer is Timer.ANNOUNCE else []

    def key(self, digit: str | None) -> list[FrontAction]:
        """A key (None: the timeout) on the current menu: ``IvrMenu.decide`` rules."""
        menu = self.menu()
        if menu is None or self.stage is not Stage.IVR:
            return []
        decision = menu.decide(digit, self.attempt)
        log.info("call %s: IVR %s key %s -> %s %s", self.call_id, menu.key, digit,
                 decision.outcome, decision.action.kind)
        if decision.outcome is IvrOutcome.SELECTED:
            self.menu_entries = 0  # the caller chose: no loop of menus so far
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
        if self.queue is None:
            return [PlayMusic("default")]
        return [PlayMusic(self.queue.music_on_hold, self.queue.tenant), *self._announce_in(1.0)]

    def _announce_in(self, seconds: float) -> list[act.CancelTimer | act.StartTimer]:
        """The next announcement of the caller's position (if the queue makes them)."""
        if self.queue is None or not self.queue.announce_position:
            return []
        return [act.CancelTimer(Timer.ANNOUNCE), act.StartTimer(Timer.ANNOUNCE, seconds)]

    def back_to_queue(self) -> list[act.CancelTimer | act.StartTimer]:
        """An agent's answer did not stand (``Offers.accepted``): the caller waits on,
        and their position is said again (an ANNOUNCE fired meanwhile asked nothing)."""
        self.stage = Stage.QUEUE
        return self._announce_in(self.announce_every_s)

    def ask_position(self) -> list[FrontAction]:
        if self.stage is not Stage.QUEUE or self.queue_id is None:
            return []
        return [Submit(AskPosition(self.queue_id, self.call_id))]

    def centre_done(self, done: CentreDone) -> list[FrontAction]:
        """A command's outcome (the adapter reports none once the call has ended)."""
        command = done.command
        if isinstance(command, Enqueue):
            return self.entered(command, done)
        if isinstance(command, AskPosition) and self.stage is Stage.QUEUE \
                and command.queue_id == self.queue_id:
            again = self._announce_in(self.announce_every_s)  # whatever the answer
            if done.ok and isinstance(done.value, int):
                log.info("call %s: position %d announced", self.call_id, done.value)
                return [PlayPosition(done.value), *again]
            log.warning("call %s: no position to announce (%s)", self.call_id, done.error)
            return [*again]
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
            return [held.never_queued()]
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
            actions: list[FrontAction] = [WithdrawRings(), *self.go(target)]  # (queue known)
            self.queue = self.queue_id = None
            return actions
        # The platform enqueued it there in the same transaction.
        settings = self.queues(target.aggregate_id)
        self.queue, self.queue_id = settings, target.aggregate_id
        key = settings.key if settings is not None else str(target.value)
        return [WithdrawRings(), act.Emit(QueueCall(self.call_id, self.clock(), key)),
                *self.hear_queue()]

    # Dialling a number (from a menu, an overflow, a blind transfer): ``Dialling``.

    def dial(self, uri: str | None) -> list[FrontAction]:
        """Call ``uri`` (None: the number has no route) while the caller hears music."""
        self.stage = Stage.DIALLING
        return self.dialling.dial(uri, self.ever_answered)

    def callee_not_placed(self, no_slot: bool) -> list[FrontAction]:
        return self.dialling.not_placed(no_slot, self.ever_answered)

    def dialled(self, fact: Ringing[L] | Answered[L] | Gone[L]) -> list[FrontAction]:
        """A fact of the dialled party's leg."""
        return self.dialling.dialled(fact, self.ever_answered)

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
