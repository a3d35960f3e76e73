"""Call control: how a request about a live call (supervise it, transfer it)
reaches the B2BUA worker that holds the call, and how its answer comes back.

The channel is PostgreSQL's LISTEN/NOTIFY, on the database every process
already shares. The API sends a ``ControlRequest`` on ``REQUEST_CHANNEL``;
every worker listens, and only the worker that owns the call acts and
answers with a ``ControlReply`` (same ``request_id``) on ``REPLY_CHANNEL``.

Why not a control HTTP endpoint per worker plus an ownership table: a worker
is then reachable wherever the database is (no extra port to publish, route or
secure per worker, behind Kamailio or not); there is no ownership row to keep
right when a worker crashes (its calls die with it, and nobody answers for
them); and a request is one NOTIFY plus one reply. The costs: every worker
wakes for every request (supervisor actions are rare), and a NOTIFY payload is
limited to 8000 bytes (these are a few hundred).

Statuses follow HTTP: 202 accepted (the worker acts now; the Call's events
record what happened), 200 done, 404 not there (no such supervisor), 409 the
call's state forbids it, 422 a bad argument, 503 the worker cannot (no free
call slot). A request nobody answers is about a call no live worker holds.

Audit. The API records each control command in ``audit_log`` (``api.auth.audit``)
with the request's own id in the row's detail (``"control"``) and its HTTP
request id (``origin``, X-Request-ID-derived). The events the worker later
stores because of the request (``SupervisionStarted`` when the device answers,
``Transferred``, ...) carry an ``AuditLink`` to that row, and once they are
stored the worker adds their store positions to it (``adapters.sip.store.audit_links``),
as the API does for the events it stores itself. Only ids travel: no secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

REQUEST_CHANNEL = "dialtone_call_control"
REPLY_CHANNEL = "dialtone_call_control_reply"
MAX_PAYLOAD = 8000  # PostgreSQL's NOTIFY limit, in bytes


class Action(StrEnum):
    SUPERVISE = "supervise"  # args: supervisor, mode, device
    UNSUPERVISE = "unsupervise"  # args: supervisor
    TRANSFER = "transfer"  # args: kind (blind|attended), target_kind, target_value
    COMPLETE_TRANSFER = "complete_transfer"  # connect the caller to the consulted party
    CANCEL_TRANSFER = "cancel_transfer"  # drop the consulted party, back to the caller


@dataclass(frozen=True)
class AuditLink:
    """Which audit row the events a control request causes belong to: the row of
    the API command on call ``call_id`` whose detail names ``control_id`` (unique:
    a new id per request) and whose request id is ``request_id`` (the caller's
    X-Request-ID, which alone need not be unique)."""

    call_id: UUID
    control_id: str
    request_id: str


@dataclass(frozen=True)
class ControlRequest:
    request_id: str  # this request's own id, new for each: the reply names it
    call_id: UUID
    action: Action
    args: dict[str, str] = field(default_factory=dict)
    origin: str = ""  # the HTTP request id of the API command ("": none, no audit row)

    def encode(self) -> str:
        return _encode({"request_id": self.request_id, "call_id": str(self.call_id),
                        "action": self.action.value, "args": self.args,
                        "origin": self.origin})

    @classmethod
    def decode(cls, payload: str) -> ControlRequest:
        data = json.loads(payload)
        return cls(str(data["request_id"]), UUID(data["call_id"]), Action(data["action"]),
                   {str(k): str(v) for k, v in dict(data.get("args", {})).items()},
                   str(data.get("origin", "")))

    @property
    def audit(self) -> AuditLink | None:
        """The audit row of the API command behind this request, if there is one."""
        if not self.origin:
            return None
        return AuditLink(self.call_id, self.request_id, self.origin)


@dataclass(frozen=True)
class ControlReply:
    request_id: str
    status: int
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> str:
        return _encode({"request_id": self.request_id, "status": self.status,
                        "detail": self.detail, "data": self.data})

    @classmethod
    def decode(cls, payload: str) -> ControlReply:
        data = json.loads(payload)
        return cls(str(data["request_id"]), int(data["status"]), str(data.get("detail", "")),
                   dict(data.get("data", {})))


def _encode(message: dict[str, Any]) -> str:
    text = json.dumps(message, separators=(",", ":"))
    if len(text.encode()) > MAX_PAYLOAD:
        raise ValueError(f"control message of {len(text)} bytes exceeds NOTIFY's limit")
    return text
