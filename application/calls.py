"""CallService: the application service that drives Call aggregates.

Persistence is chosen by environment, as eventsourcing does it: with no
``PERSISTENCE_MODULE`` the events live in memory (POPO, for unit tests); pass
``env=dialtone.database.eventsourcing_env(dsn)`` for the PostgreSQL store.

Group commit. ``with service.batch():`` makes every command issued by this
thread inside the block stage its call; at the end of the block all new events
of all staged calls are saved in ONE transaction (all or nothing). A command
issued outside a block runs in a batch of its own, so both paths are the same
code. Batches are per thread (thread-local): several threads may each run
their own batches on one service, but a given call must be driven by one
thread at a time (the SIP adapter drives the service from one storage thread).
A second concurrent writer gets ``IntegrityError``, never a corrupt history.

Aggregate cache. Live calls stay in an LRU cache, so a command does not reload
the call's history. Fast-forward is off: the process that drives a call (the
B2BUA worker holding its SIP dialog) is its only writer, so the cache is
authoritative and a command costs no read. Override with
``AGGREGATE_CACHE_FASTFORWARD=y`` where several processes write the same calls.

Commands change the cached call in place: a deep copy per command cost half
the CPU of a command (bench/event_store.py). What keeps the cache true to the
store is the batch's bookkeeping, whatever happens:
- a refused command (DomainError) changes nothing: every rule runs before its
  event is triggered;
- a batch whose save fails, or whose block raises, puts every call it touched
  back in its state from before the batch (a cheap snapshot: a call's
  attributes are immutable values or lists or dicts of them). So retrying the same
  commands produces the same event versions; after an ambiguous commit error
  the retry is refused with ``IntegrityError`` if the first attempt had in fact
  committed, which proves it did (adapters/sip/store/storage.py relies on this);
- a save refused with ``IntegrityError`` (another writer got there first)
  evicts the batch's calls, so the next command reloads them from the store.
``get_call`` returns a copy, never the cached object.

Initiate without a read. Looking up a new Call-ID in the store costs a round
trip and a fifth of a command's CPU, and the answer is nearly always "not
there": the process that saw the first INVITE still has the call cached, and
the SIP stack absorbs retransmissions anyway. So with a cache, an uncached
Call-ID is initiated at once; if the store does have it (a restarted worker
seeing a retransmitted INVITE), the save is refused with ``IntegrityError`` and
the Call-ID is remembered as suspect, so that retrying the same commands reads
the store first and finds the call (idempotent as promised). An
``initiate_call`` outside a batch retries by itself; a ``batch()`` is retried
by its caller, as for any ``IntegrityError`` (the SIP storage thread does).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from copy import deepcopy
from dataclasses import MISSING, fields
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Recording

from application.metrics import event_append
from application.tracing import store_commit_span
from domain.call import Call, CallNotFound
from domain.call_commands import COMMANDS, CallCommand, InitiateCall, fact_names

__all__ = ["CallBatch", "CallNotFound", "CallService", "by_command", "method_name"]


def by_command(command: type[CallCommand]) -> Callable[..., None]:
    """A ``CallService`` method ``(call_id, *facts, occurred_at, *optional facts)``
    that builds ``command`` and handles it: the per-command methods earlier callers
    use (``end_call``, ``route_call``...) are these, made for every registered
    command by ``_add_per_command_methods``, not code of their own. Facts may also
    be given by keyword; wrong ones fail as the command's ``__init__``."""
    names = fact_names(command)
    defaults = {f.name for f in fields(command) if f.default is not MISSING}
    required = [name for name in names[1:] if name not in defaults]
    order = (*required, names[0], *(name for name in names if name in defaults))
    count = len(required) + 1  # occurred_at (the first fact) comes after the required ones

    def method(self: CallService, call_id: UUID, *args: Any, **kwargs: Any) -> None:
        if len(args) == count and not kwargs:  # the usual call: required facts by position
            self.handle(command(call_id, args[-1], *args[:-1]))
            return
        if len(args) > len(order):
            raise TypeError(f"{command.__name__} takes {len(order)} facts, got {len(args)}")
        self.handle(command(call_id=call_id, **dict(zip(order, args, strict=False)), **kwargs))

    method.__name__ = method.__qualname__ = method_name(command)
    method.__doc__ = f"``handle({command.__name__}(call_id, ...))``: facts {', '.join(order)}."
    return method


def method_name(command: type[CallCommand]) -> str:
    """The service method of a command value: its class name in snake case
    (``EndCall`` -> ``end_call``, ``RecordMediaQuality`` -> ``record_media_quality``)."""
    return _CAMEL_BOUNDARY.sub("_", command.__name__).lower()


_CAMEL_BOUNDARY = re.compile(r"(?<!^)(?=[A-Z])")


class CallBatch:
    """The calls touched inside one ``with service.batch()`` block."""

    def __init__(self) -> None:
        self._calls: dict[UUID, Call] = {}
        self._before: dict[UUID, dict[str, Any]] = {}
        self._new: set[UUID] = set()
        # What the batch's save recorded (each event's store position), once saved.
        self.recordings: list[Recording[UUID]] = []

    def get(self, call_id: UUID) -> Call | None:
        return self._calls.get(call_id)

    def track(self, call: Call) -> None:
        """Stage a stored call, remembering its state in case the batch fails."""
        self._before[call.id] = call_state(call)
        self._calls[call.id] = call

    def add_new(self, call: Call) -> None:
        self._calls[call.id] = call
        self._new.add(call.id)

    @property
    def new_call_ids(self) -> set[UUID]:
        return set(self._new)

    def restore(self) -> None:
        """Put every stored call back as it was before the batch."""
        for call_id, state in self._before.items():
            vars(self._calls[call_id]).clear()
            vars(self._calls[call_id]).update(state)

    @property
    def calls(self) -> list[Call]:
        return list(self._calls.values())

    @property
    def pending_event_count(self) -> int:
        return sum(len(call.pending_events) for call in self._calls.values())


def call_state(call: Call) -> dict[str, Any]:
    """A snapshot of the call's attributes: values are immutable (str, datetime,
    enum, timedelta, tuples) or lists or dicts of immutable items, so copying
    the containers is enough (tests/unit/test_call_service_cache.py checks that
    this holds for every kind of call state)."""
    state = vars(call).copy()
    for name, value in state.items():
        if isinstance(value, (list, dict)):
            state[name] = value.copy()
    return state


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
        # Call ids whose optimistic initiate was refused: read the store first.
        # (set operations are atomic under the GIL; threads share it safely)
        self._suspects: set[UUID] = set()

    # Commands: values of domain.call_commands, each run by handle().

    def handle(self, command: CallCommand) -> None:
        """Run one command: find its call (staged, cached or stored), let the
        aggregate decide, and save, in the current batch if there is one (else
        in a batch of its own). Raises CallNotFound, or the DomainError by which
        the aggregate refused it (the call is then unchanged)."""
        if isinstance(command, InitiateCall):
            self._initiate(command)
        else:
            self._update(command.call_id, command.apply_to)

    def initiate_call(self, **facts: Any) -> UUID:
        """``handle(InitiateCall(...))`` given InitiateCall's facts by keyword
        (caller, callee, direction, trunk, sip_call_id, occurred_at[, tenant]);
        the call's id. A retransmitted INVITE finds the call and adds nothing."""
        if "sip_call_id" not in facts:
            raise TypeError("initiate_call() missing keyword argument 'sip_call_id'")
        command = InitiateCall(call_id=Call.id_for(facts["sip_call_id"]), **facts)
        self.handle(command)
        return command.call_id

    # The per-command methods of earlier callers (``end_call``...): one per value of
    # domain.call_commands.COMMANDS, added below by _add_per_command_methods.
    if TYPE_CHECKING:
        def __getattr__(self, name: str) -> Callable[..., None]: ...

    def get_call(self, call_id: UUID) -> Call:
        """A copy of the call as this thread sees it (in a batch, with its staged
        changes); changing the copy changes nothing."""
        batch = self._current_batch()
        call = (batch.get(call_id) if batch is not None else None) or self._load(call_id)
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
            self._save(batch)
        except IntegrityError:
            self._evict(batch.calls)
            self._suspects.update(batch.new_call_ids)
            raise
        except BaseException:
            batch.restore()
            raise
        finally:
            self._batches.current = None

    # Internals.

    def _initiate(self, command: InitiateCall) -> None:
        call_id = command.call_id
        owns_batch = self._current_batch() is None
        for attempt in (1, 2):
            try:
                with self.batch() as batch:
                    if not self._exists(call_id, batch):
                        batch.add_new(command.create())
                return
            except IntegrityError:
                if not owns_batch or attempt == 2:
                    raise  # the caller retries its batch (see the module docstring)

    def _update(self, call_id: UUID, command: Callable[[Call], None]) -> None:
        with self.batch() as batch:
            call = self._find(call_id, batch)
            if call is None:
                raise CallNotFound(f"no call {call_id}")
            command(call)

    def _exists(self, call_id: UUID, batch: CallBatch) -> bool:
        """Is there such a call? Without a cache (or for a suspect id) the store
        says; with one, an uncached id is taken to be new (module docstring)."""
        cache = self.repository.cache
        if cache is None or call_id in self._suspects:
            found = self._find(call_id, batch) is not None
            self._suspects.discard(call_id)  # only once the store has answered
            return found
        if batch.get(call_id) is not None:
            return True
        try:
            cache.get(call_id)
        except KeyError:
            return False
        return True

    def _find(self, call_id: UUID, batch: CallBatch) -> Call | None:
        """The call staged in the batch, else loaded and staged, else None."""
        call = batch.get(call_id)
        if call is None:
            call = self._load(call_id)
            if call is not None:
                batch.track(call)
        return call

    def _load(self, call_id: UUID) -> Call | None:
        try:
            call: Any = self.repository.get(call_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(call, Call):
            raise CallNotFound(f"{call_id} is a {type(call).__name__}, not a call")
        return call

    def _save(self, batch: CallBatch) -> None:
        changed = [call for call in batch.calls if call.pending_events]
        if changed:  # idempotent repeats only: no empty transaction
            events = sum(len(c.pending_events) for c in changed)
            with event_append(self.name, events), store_commit_span(self.name, events):
                batch.recordings = self.save(*changed)

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


def _add_per_command_methods() -> None:
    """Give CallService a method per registered command (not ``initiate_call``,
    written above: it returns the new call's id), so that a new command value
    needs no line here."""
    for command in COMMANDS:
        if command is not InitiateCall:
            setattr(CallService, method_name(command), by_command(command))


_add_per_command_methods()
