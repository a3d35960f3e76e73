"""Tells what the platform is doing, one line per fact, for people watching a demo.

Follows the two event logs (calls, and the call centre) from the position they
had when it started, and prints queue entries, rings, answers, misses, ends and
recordings with short call numbers (#1, #2, ...). Reading only: it changes
nothing, and it polls (a demo does not need LISTEN/NOTIFY's milliseconds).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from application.follow import Backoff, Follower, domain_events, head, pages
from domain.agent import Agent
from domain.call import Call

log = logging.getLogger(__name__)
Say = Callable[[str], None]


class Narrator:
    def __init__(self, calls: Application[UUID], centre: Application[UUID], say: Say,
                 *, every_s: float = 0.5) -> None:
        self._apps = [calls, centre]
        self._say = say
        self._positions = [head(app.recorder) for app in self._apps]
        self._numbers: dict[UUID, int] = {}
        self._queued_at: dict[UUID, datetime] = {}
        self._answered_at: dict[UUID, datetime] = {}
        self._agents: dict[UUID, str] = {}
        # Polls: a demo does not need LISTEN/NOTIFY's milliseconds. A failed read is
        # logged and tried again a tick later, from the same positions.
        self._follower = Follower("narrator", self._step, tick_s=every_s,
                                  backoff=Backoff(every_s, every_s),
                                  on_failure=self._failed)

    def start(self) -> None:
        self._follower.start()

    def stop(self) -> None:
        self._follower.stop(5)

    def _step(self) -> bool:
        for index, app in enumerate(self._apps):
            self._read(index, app)
        return False

    @staticmethod
    def _failed(error: BaseException, _delay: float) -> None:
        log.error("narration failed; carrying on", exc_info=error)

    def _read(self, index: int, app: Application[UUID]) -> None:
        for page in pages(app.recorder, self._positions[index], page_size=500):
            for event in domain_events(app, page):
                self._tell(event)
            self._positions[index] = page[-1].id

    def _number(self, call_id: UUID) -> str:
        return f"#{self._numbers.setdefault(call_id, len(self._numbers) + 1)}"

    def _agent(self, agent_id: UUID) -> str:
        if agent_id not in self._agents:  # created before we started: ask the store once
            try:
                self._agents[agent_id] = self._apps[1].repository.get(agent_id).key
            except Exception:
                self._agents[agent_id] = str(agent_id)[:8]
        return self._agents[agent_id]

    def _tell(self, event: Any) -> None:
        line = self._line(event)
        if line:
            self._say(f"{event.occurred_at:%H:%M:%S} {line}")

    def _line(self, event: Any) -> str | None:
        if isinstance(event, Agent.Created):
            self._agents[event.originator_id] = event.key
            return None
        if isinstance(event, Agent.Event):
            return self._agent_line(event)
        if isinstance(event, Call.Event):
            return self._call_line(event)
        return None

    def _agent_line(self, event: Any) -> str | None:
        name = self._agent(event.originator_id)
        if isinstance(event, Agent.LoggedIn):
            return f"agent {name} logged in at {event.device_uri}"
        if isinstance(event, Agent.Reserved):
            return f"  call {self._number(event.call_id)}: ringing {name}"
        if isinstance(event, Agent.OfferMissed):
            return f"  call {self._number(event.call_id)}: {name} did not answer; back in the queue"
        if isinstance(event, Agent.CallEnded) and event.wrap_up_until is not None:
            return f"  {name} in wrap-up until {event.wrap_up_until:%H:%M:%S}"
        return None

    def _call_line(self, event: Any) -> str | None:
        number = self._number(event.originator_id)
        if isinstance(event, Call.Initiated):
            return f"call {number} from {event.caller} to {event.callee}"
        if isinstance(event, Call.Routed) and event.target.startswith("ivr:"):
            return f"  call {number}: IVR menu {event.target[4:]} (press 1 or 2)"
        if isinstance(event, Call.Queued):
            self._queued_at.setdefault(event.originator_id, event.occurred_at)
            return f"  call {number}: waiting in queue {event.queue}, hearing music"
        return self._outcome_line(number, event)

    def _outcome_line(self, number: str, event: Any) -> str | None:
        if isinstance(event, Call.AgentConnected):
            self._answered_at[event.originator_id] = event.occurred_at
            queued = self._queued_at.get(event.originator_id, event.occurred_at)
            wait = (event.occurred_at - queued).total_seconds()
            return f"  call {number}: {event.agent} answered after {wait:.1f} s waiting"
        if isinstance(event, Call.Ended):
            return f"call {number} ended: {event.disposition}{self._talk(event)}"
        if isinstance(event, Call.RecordingAvailable):
            return f"  call {number}: recording {event.ref} ({event.duration_s:.1f} s)"
        return None

    def _talk(self, event: Any) -> str:
        answered = self._answered_at.pop(event.originator_id, None)
        if answered is None:
            return ""
        return f", talked {(event.occurred_at - answered).total_seconds():.1f} s"
