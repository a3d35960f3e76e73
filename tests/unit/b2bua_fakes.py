"""Fake legs and a fake adapter for the call-flow unit tests (application.b2bua).

The fake adapter performs a flow's actions the way adapters/sip/sessions/session.py
does, minus pjsua2: it records them, turns ``Place`` and ``FollowRefer`` into
new fake legs (reported back as the real adapter reports them), and lists the
domain commands in the order they were emitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from application.b2bua import actions as act
from application.b2bua.legs import Fact, InboundFacts, Placed, PlaceFailed, ReferFollowed
from application.b2bua.plain import PlainCall, PlainCallSettings


@dataclass(frozen=True)
class QueueSettingsFake:
    """A queue's settings as the directory hands them (QueueSettings' shape)."""

    key: str
    music_on_hold: str = "default"
    announce_position: bool = False
    record_calls: bool = False
    tenant: str = "default"


@dataclass(eq=False)
class FakeLeg:
    """A leg handle: compared by identity, like adapters.sip.pjsua.legs.Leg."""

    name: str

    def __repr__(self) -> str:
        return self.name


class Clock:
    """Each reading is one second after the previous one."""

    def __init__(self) -> None:
        self.at = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


@dataclass
class FakeAdapter:
    call: PlainCall[FakeLeg]
    actions: list[act.Action[FakeLeg]] = field(default_factory=list)
    placed: list[FakeLeg] = field(default_factory=list)
    slots: int = 10  # legs the fake worker can still place

    def run(self, actions: list[act.Action[FakeLeg]]) -> None:
        for action in actions:
            self.actions.append(action)
            if isinstance(action, act.Place):
                self._place(action)
            elif isinstance(action, act.FollowRefer):
                new = FakeLeg(f"transfer-target#{len(self.placed)}")
                self.placed.append(new)
                self.run(self.call.handle(ReferFollowed(action.leg, new, action.target)))

    def _place(self, action: act.Place) -> None:
        if self.slots == 0:
            self.run(self.call.handle(PlaceFailed(no_slot=True)))
            return
        self.slots -= 1
        leg = FakeLeg(f"{action.role}#{len(self.placed)}")
        self.placed.append(leg)
        self.run(self.call.handle(Placed(leg)))

    def fact(self, fact: Fact[FakeLeg]) -> list[act.Action[FakeLeg]]:
        """Report ``fact``; the actions it took (those of any fact it led to included)."""
        start = len(self.actions)
        self.run(self.call.handle(fact))
        return self.actions[start:]

    @property
    def commands(self) -> list[object]:
        """The domain commands in order (a ``Finish`` stores the call's end)."""
        return [a.command if isinstance(a, act.Emit) else a.end for a in self.actions
                if isinstance(a, act.Emit | act.Finish)]

    def command_names(self) -> list[str]:
        return [type(c).__name__ for c in self.commands]


def make_call(target: str | None = "sip:bob@127.0.0.1", *, slots: int = 10
              ) -> tuple[FakeAdapter, FakeLeg]:
    """A started call from alice to 2001; the adapter and the caller's leg."""
    caller = FakeLeg("caller")
    facts = InboundFacts("sip-call-1@test", "alice", "2001")
    settings = PlainCallSettings(no_answer_timeout=30.0, retry_after=7)
    call = PlainCall(facts, caller, settings, Clock())
    adapter = FakeAdapter(call, slots=slots)
    adapter.run(call.start(target))
    return adapter, caller
