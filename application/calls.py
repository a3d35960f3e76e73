"""CallService: the application service that drives Call aggregates.

Persistence is chosen by environment, as eventsourcing does it: with no
``PERSISTENCE_MODULE`` the events live in memory (POPO, for unit tests); pass
``env=dialtone.database.eventsourcing_env(dsn)`` for the PostgreSQL store.

Aggregate cache. Live calls stay in an LRU cache so a command does not reload
the call's history. Fast-forward is off: the process that drives a call (the
B2BUA worker holding its SIP dialog) is its only writer, so the cache is
authoritative and a command costs no read. A stale entry can never write wrong
history: the store's unique (id, version) key rejects the save with
``IntegrityError``, the entry is evicted, and the next command reloads.
Override with ``AGGREGATE_CACHE_FASTFORWARD=y`` where several processes write
the same calls.

Commands change the cached call in place (no deep copy per command, which cost
half the CPU of a command in bench/event_store.py). That is safe because a
refused command changes nothing (every rule runs before its event), and a save
that fails or a batch abandoned by an exception evicts every call it touched,
so the cache never keeps a change the store does not have. ``get_call``
returns a copy, never the cached object.

Group commit. ``with service.batch():`` makes every command issued by this
thread inside the block stage its call instead of saving it; at the end of the
block all new events of all staged calls are saved in ONE transaction (all or
nothing). Batches are per thread (thread-local), so several threads may each
run their own batches on one service. The SIP adapter drives the service from
one thread; any caller must drive a given call from one thread at a time
(otherwise the second writer gets ``IntegrityError``, never a corrupt history).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from copy import deepcopy
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application

from domain.call import Call, CallNotFound
from domain.errors import DomainError
from domain.values import Direction, Disposition, HangupSide, TransferKind

__all__ = ["CallBatch", "CallNotFound", "CallService"]


class CallBatch:
    """The calls changed inside one ``with service.batch()`` block."""

    def __init__(self) -> None:
        self._calls: dict[UUID, Call] = {}

    def get(self, call_id: UUID) -> Call | None:
        return self._calls.get(call_id)

    def add(self, call: Call) -> None:
        self._calls[call.id] = call

    @property
    def calls(self) -> list[Call]:
        return list(self._calls.values())

    @property
    def pending_event_count(self) -> int:
        return sum(len(call.pending_events) for call in self._calls.values())


class CallService(Application[UUID]):
    env: ClassVar[dict[str, str]] = {
        # Enough for every call in progress on a busy worker, plus recent ones.
        "AGGREGATE_CACHE_MAXSIZE": "20000",
        # The cache is authoritative and commands change it in place (see the
        # module docstring for why both are safe).
        "AGGREGATE_CACHE_FASTFORWARD": "n",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "n",
    }

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._batches = threading.local()

    # Commands: one per Call command, each applied through _update/_stage.

    def initiate_call(
        self,
        *,
        caller: str,
        callee: str,
        direction: Direction,
        trunk: str | None,
        sip_call_id: str,
        occurred_at: datetime,
    ) -> UUID:
        """The call's id; a retransmitted INVITE finds the call and adds nothing."""
        call_id = Call.id_for(sip_call_id)
        if self._find(call_id) is None:
            self._stage(Call.initiate(caller=caller, callee=callee, direction=direction,
                                      trunk=trunk, sip_call_id=sip_call_id,
                                      occurred_at=occurred_at))
        return call_id

    def route_call(self, call_id: UUID, target: str, occurred_at: datetime) -> None:
        self._update(call_id, lambda call: call.route(target, occurred_at))

    def ring_call(self, call_id: UUID, occurred_at: datetime) -> None:
        self._update(call_id, lambda call: call.ring(occurred_at))

    def answer_call(self, call_id: UUID, occurred_at: datetime) -> None:
        self._update(call_id, lambda call: call.answer(occurred_at))

    def hold_call(self, call_id: UUID, occurred_at: datetime) -> None:
        self._update(call_id, lambda call: call.hold(occurred_at))

    def resume_call(self, call_id: UUID, occurred_at: datetime) -> None:
        self._update(call_id, lambda call: call.resume(occurred_at))

    def transfer_call(
        self, call_id: UUID, kind: TransferKind, target: str, occurred_at: datetime
    ) -> None:
        self._update(call_id, lambda call: call.transfer(kind, target, occurred_at))

    def end_call(
        self,
        call_id: UUID,
        *,
        disposition: Disposition,
        hangup_cause: str,
        hangup_side: HangupSide,
        sip_status: int | None,
        occurred_at: datetime,
    ) -> None:
        self._update(call_id, lambda call: call.end(
            disposition=disposition, hangup_cause=hangup_cause, hangup_side=hangup_side,
            sip_status=sip_status, occurred_at=occurred_at,
        ))

    def get_call(self, call_id: UUID) -> Call:
        """A copy of the call as this thread sees it (in a batch, with its staged
        changes); changing the copy changes nothing."""
        call = self._find(call_id)
        if call is None:
            raise CallNotFound(f"no call {call_id}")
        return deepcopy(call)

    # Group commit.

    @contextmanager
    def batch(self) -> Iterator[CallBatch]:
        """Save every call changed in the block in one transaction at its end.

        An exception escaping the block discards the whole batch, so catch a
        command's DomainError inside the block to keep the others (a refused
        command leaves its call unchanged). A nested block joins the outer one.
        """
        outer = self._current_batch()
        if outer is not None:
            yield outer
            return
        batch = CallBatch()
        self._batches.current = batch
        try:
            yield batch
        except BaseException:
            self._evict(batch.calls)
            raise
        finally:
            self._batches.current = None
        self._save_calls(batch.calls)

    # The one path shared by batched and unbatched commands.

    def _update(self, call_id: UUID, command: Callable[[Call], None]) -> None:
        call = self._find(call_id)
        if call is None:
            raise CallNotFound(f"no call {call_id}")
        try:
            command(call)
        except DomainError:
            raise  # refused before any change: the call is intact
        except BaseException:
            self._evict([call])  # a half-applied change must not stay cached
            raise
        self._stage(call)

    def _stage(self, call: Call) -> None:
        batch = self._current_batch()
        if batch is None:
            self._save_calls([call])
        else:
            batch.add(call)

    def _find(self, call_id: UUID) -> Call | None:
        batch = self._current_batch()
        staged = batch.get(call_id) if batch is not None else None
        if staged is not None:
            return staged
        try:
            call: Any = self.repository.get(call_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(call, Call):
            raise CallNotFound(f"{call_id} is a {type(call).__name__}, not a call")
        return call

    def _save_calls(self, calls: list[Call]) -> None:
        if not any(call.pending_events for call in calls):
            return  # idempotent repeats only: no empty transaction
        try:
            self.save(*calls)
        except BaseException:
            # IntegrityError (a stale call), a lost connection, ...: the store
            # has none of these changes, so the cache must not keep them.
            self._evict(calls)
            raise

    def _evict(self, calls: list[Call]) -> None:
        cache = self.repository.cache
        if cache is None:
            return
        for call in calls:
            with suppress(KeyError):
                cache.get(call.id, evict=True)

    def _current_batch(self) -> CallBatch | None:
        batch: CallBatch | None = getattr(self._batches, "current", None)
        return batch
