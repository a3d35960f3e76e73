"""What every log line of the current request, batch or call carries.

The fields are bound to context variables (structlog's), so any
``logging.getLogger(...)`` call made while they are bound, in this task or in a
thread it started with ``asyncio.to_thread``/``run_in_threadpool`` (which copy
the context), emits them: the formatter that dialtone.logs installs merges
them into each JSON line. Only the schema's names may be bound (see
docs/observability.md, Logs), so a stray field cannot smuggle a secret in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from uuid import UUID

import structlog

FIELDS = frozenset({"tenant", "call_id", "sip_call_id", "aggregate_id", "position",
                    "request_id"})
Value = str | int | None


def _checked(fields: dict[str, Value]) -> dict[str, str | int]:
    unknown = set(fields) - FIELDS
    if unknown:
        raise ValueError(f"not log context fields: {sorted(unknown)}")
    return {name: value for name, value in fields.items() if value is not None}


@contextmanager
def bound(**fields: Value) -> Iterator[None]:
    """Bind ``fields`` (None: left out) for the block; the previous values come back after."""
    with structlog.contextvars.bound_contextvars(**_checked(fields)):
        yield


def bind(**fields: Value) -> None:
    """Bind ``fields`` until the current context ends (a request's task, a thread's copy)."""
    structlog.contextvars.bind_contextvars(**_checked(fields))


def for_call(call_id: UUID, tenant: str | None = None,
             sip_call_id: str | None = None) -> AbstractContextManager[None]:
    """The fields of every line about one call (a B2BUA worker handling its SIP
    dialogs, timers and call-centre steps): its id, its tenant and SIP Call-ID."""
    return bound(call_id=str(call_id), tenant=tenant, sip_call_id=sip_call_id)
