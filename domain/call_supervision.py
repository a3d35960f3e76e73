"""The Call aggregate's supervision commands: a mixin of ``domain.call.Call``, kept
apart so that module stays under 400 lines.

Only the decisions live here. The events they trigger stay nested in ``Call``
(``Call.SupervisionStarted``, ``Call.SupervisionEnded``), so their stored topics
and the types the relay publishes are what they were.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from domain.values import CONNECTED, CallStatus, SupervisionMode, enum_member, non_empty

__all__ = ["SupervisionCommands"]


class _Supervised(Protocol):
    """What the supervision commands read and trigger on the call."""

    status: CallStatus
    supervisors: dict[str, SupervisionMode]

    @property
    def SupervisionStarted(self) -> type[Any]: ...  # noqa: N802 - Call's event classes

    @property
    def SupervisionEnded(self) -> type[Any]: ...  # noqa: N802

    def _require(self, allowed: frozenset[CallStatus], action: str) -> None: ...

    def _trigger(self, event_class: Any, occurred_at: datetime, **facts: Any) -> None: ...


class SupervisionCommands:
    """``start_supervision`` and ``stop_supervision`` of a Call."""

    def start_supervision(self: _Supervised, supervisor: str, mode: SupervisionMode,
                          occurred_at: datetime) -> None:
        """A supervisor joins (or switches mode); the same mode again is a no-op."""
        self._require(CONNECTED, "supervise")
        checked = enum_member(SupervisionMode, mode)
        if self.supervisors.get(supervisor) is checked:
            return
        self._trigger(self.SupervisionStarted, occurred_at,
                      supervisor=non_empty("supervisor", supervisor), mode=checked.value)

    def stop_supervision(self: _Supervised, supervisor: str, occurred_at: datetime) -> None:
        if supervisor not in self.supervisors or self.status is CallStatus.ENDED:
            return  # not supervising, or the call's end already ended it
        self._trigger(self.SupervisionEnded, occurred_at, supervisor=supervisor)
