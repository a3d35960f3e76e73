"""Supervisors on a call-centre call: their device called, joining, switching
mode (monitor, whisper, barge), leaving.

A supervisor is on the call from the moment their device is called (a
``Watch`` not yet joined) and joins when it answers: ``SupervisionStarted``
is recorded then, and again on every mode switch while joined;
``SupervisionEnded`` when a joined device leaves. Each change re-routes the
call's audio (``Bridge``: the adapter's mixer asks ``joined`` who hears whom).

The API command behind a change is its cause: the request that called the
supervisor for their joining, the one being handled for a switch, the one
that took them off for their leaving (None: they hung up themselves).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

from application.b2bua import actions as act
from application.b2bua.plain import now
from application.call_control import AuditLink
from domain.call import SupervisionMode
from domain.call_commands import StartSupervision, StopSupervision

log = logging.getLogger(__name__)

L = TypeVar("L", bound=Hashable)


@dataclass
class Watch(Generic[L]):
    """A supervisor on the call (or being called to join it)."""

    supervisor: str
    device: str
    mode: SupervisionMode
    leg: L
    joined: bool = False
    joined_by: AuditLink | None = None  # the API command that called the supervisor
    left_by: AuditLink | None = None  # the one that took them off (None: they hung up)


class Supervision(Generic[L]):
    """The supervisors of one call, by supervisor id."""

    def __init__(self, call_id: UUID, clock: Callable[[], datetime] = now) -> None:
        self.call_id = call_id
        self.clock = clock
        self.watches: dict[str, Watch[L]] = {}

    def of(self, supervisor: str) -> Watch[L] | None:
        return self.watches.get(supervisor)

    def on_leg(self, leg: L) -> Watch[L] | None:
        return next((w for w in self.watches.values() if w.leg is leg), None)

    def joined(self) -> list[Watch[L]]:
        return [w for w in self.watches.values() if w.joined]

    # Requests.

    def calling(self, supervisor: str, device: str, mode: SupervisionMode, leg: L,
                joined_by: AuditLink | None) -> Watch[L]:
        """The supervisor's device is being called on ``leg``."""
        watch = Watch(supervisor, device, mode, leg, joined_by=joined_by)
        self.watches[supervisor] = watch
        return watch

    def switch(self, watch: Watch[L], mode: SupervisionMode,
               cause: AuditLink | None) -> list[act.Action[L]]:
        """A new mode for a supervisor on the call (recorded once joined)."""
        watch.mode = mode
        return self._changed(watch, cause) if watch.joined else []

    def leave(self, watch: Watch[L], left_by: AuditLink | None) -> list[act.Action[L]]:
        """Take the supervisor off: their leg's end records it (``device_gone``)."""
        watch.left_by = left_by
        return [act.HangUp(watch.leg)]

    # Facts of a supervisor's leg.

    def device_answered(self, watch: Watch[L], cause: AuditLink | None
                        ) -> list[act.Action[L]]:
        if watch.joined:
            return []
        watch.joined = True
        return self._changed(watch, cause)

    def device_gone(self, watch: Watch[L]) -> list[act.Action[L]]:
        self.watches.pop(watch.supervisor, None)
        actions: list[act.Action[L]] = []
        if watch.joined:
            actions.append(act.Emit(StopSupervision(self.call_id, self.clock(), watch.supervisor,
                                                    cause=watch.left_by)))
        return [*actions, act.Bridge()]

    def drop_all(self) -> list[L]:
        """Forget every supervisor (the call ends): the legs to hang up."""
        legs = [w.leg for w in self.watches.values()]
        self.watches.clear()
        return legs

    def _changed(self, watch: Watch[L], cause: AuditLink | None) -> list[act.Action[L]]:
        log.info("call %s: supervisor %s %s", self.call_id, watch.supervisor, watch.mode)
        return [act.Emit(StartSupervision(self.call_id, self.clock(), watch.supervisor,
                                          watch.mode, cause=cause or watch.joined_by)),
                act.Bridge()]
