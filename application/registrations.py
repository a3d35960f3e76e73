"""Device registrations as domain events (issue 14 §1).

The registrar (Kamailio) keeps every binding in Redis; this service is told what
the registrar holds now (``record``, fed by adapters/registrar/bindings.py) and
records in DeviceRegistration aggregates what changed since: registered,
refreshed, unregistered (gone before its expiry) or expired (its expiry passed).

Why observe the registrar's store rather than have Kamailio call the platform on
each REGISTER: the store is the truth the calls are routed by, so what is recorded
converges on it whatever was missed (the platform down, a Kamailio restarted, an
HTTP call lost); and an expiry is seen when it happens, which usrloc in database
mode 3 reports to no event route. The cost is latency: a change is recorded at
the next observation (seconds).

Its own event store (not the call centre's): registrations are not call-centre
configuration, and the call centre's log is relayed to Kafka by kinds it knows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from application import metrics
from domain.device import DeviceRegistration
from domain.values import utc_instant

__all__ = ["Held", "RegistrationService"]

_PAGE = 500
_CREATED = [get_topic(DeviceRegistration.Created)]
_ATTEMPTS = 3  # reads and saves of one device when other observers keep winning


@dataclass(frozen=True)
class Held:
    """One binding the registrar holds: ``aor`` reachable at ``contact`` until
    ``expires_at``."""

    tenant: str
    aor: str
    contact: str
    user_agent: str
    expires_at: datetime


class RegistrationService(Application[UUID]):
    name = "Registrations"
    # One observer normally; a second one is survived (_record_device), and the
    # cache's reads fast-forward to what the other recorded (eventsourcing's default).
    env = {"AGGREGATE_CACHE_MAXSIZE": "20000"}  # noqa: RUF012 - eventsourcing's class setting

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self._bound: set[UUID] | None = None  # devices with a binding; read at first use

    def record(self, held: Iterable[Held], now: datetime) -> int:
        """Everything the registrar holds at ``now``: record each change since the last
        call (a binding past its expiry counts as not held). Returns how many events
        were recorded."""
        at = utc_instant(now)
        current: dict[UUID, list[Held]] = {}
        for binding in held:
            if utc_instant(binding.expires_at) > at:
                current.setdefault(DeviceRegistration.id_for(binding.aor, binding.tenant),
                                   []).append(binding)
        bound = self._devices_bound()
        return sum(self._record_device(device_id, current.get(device_id, []), at, bound)
                   for device_id in sorted(bound | set(current)))

    def device(self, aor: str, tenant: str) -> DeviceRegistration | None:
        try:
            found: DeviceRegistration = self.repository.get(
                DeviceRegistration.id_for(aor, tenant))
        except AggregateNotFoundError:
            return None
        return found

    # -- helpers --------------------------------------------------------------------

    def _record_device(self, device_id: UUID, held: list[Held], at: datetime,
                       bound: set[UUID]) -> int:
        """Bring one device's record in line with ``held``; how many events that took.
        Another observer recording the same device first (a rollout, a node cut off
        while its replacement runs) makes the store refuse this save: decide again on
        the record as it now is, which the read fast-forwards to."""
        for attempt in range(_ATTEMPTS):
            device = self._device(device_id, held, at)
            if device is None:
                bound.discard(device_id)
                return 0
            _apply(device, held, at)
            try:
                saved = self.save(device) if device.pending_events else []
            except IntegrityError:
                if attempt + 1 == _ATTEMPTS:
                    raise
                continue
            (bound.add if device.bindings else bound.discard)(device_id)
            metrics.registration_events(type(r.domain_event).__name__ for r in saved)
            return len(saved)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _device(self, device_id: UUID, held: list[Held],
                at: datetime) -> DeviceRegistration | None:
        """The device's record; a new one if the registrar holds it for the first time,
        None if it holds nothing and no record exists."""
        try:
            found: DeviceRegistration = self.repository.get(device_id)
        except AggregateNotFoundError:
            if not held:
                return None
            return DeviceRegistration.create(held[0].aor, tenant=held[0].tenant, occurred_at=at)
        return found

    def _devices_bound(self) -> set[UUID]:
        """Devices recorded with a binding: those the registrar may since have dropped.
        Read once from this store's log, then kept up to date by ``record``."""
        if self._bound is None:
            ids: set[UUID] = set()
            start = 1
            while True:
                page = self.recorder.select_notifications(start, _PAGE, topics=_CREATED)
                ids.update(UUID(str(n.originator_id)) for n in page)
                if len(page) < _PAGE:
                    break
                start = page[-1].id + 1
            self._bound = {i for i in ids if self._has_bindings(i)}
        return self._bound

    def _has_bindings(self, device_id: UUID) -> bool:
        device: DeviceRegistration = self.repository.get(device_id)
        return bool(device.bindings)


def _apply(device: DeviceRegistration, held: list[Held], at: datetime) -> None:
    """Bring the record in line with what the registrar holds of it."""
    seen = {b.contact for b in held}
    for binding in held:
        device.observe(binding.contact, binding.user_agent, binding.expires_at, at)
    for contact in [c for c in device.bindings if c not in seen]:
        device.gone(contact, at)
