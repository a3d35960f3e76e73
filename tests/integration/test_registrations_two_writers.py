"""Two observers of the registrar on one event store (a rollout, a node cut off while
its replacement starts): neither stops the other from recording what it sees, and
each change is still recorded once (the store refuses a second write of a version)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.registrations import Held, RegistrationService
from dialtone.database import eventsourcing_env

pytestmark = pytest.mark.migrated_database

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def held(expires_in: timedelta) -> list[Held]:
    return [Held(tenant="default", aor="sip:desk-101@acme.test", contact="sip:desk-101@10.0.0.7",
                 user_agent="softphone", expires_at=T0 + expires_in)]


def kinds(service: RegistrationService) -> list[str]:
    device = service.device("sip:desk-101@acme.test", "default")
    assert device is not None
    return [type(e).__name__ for e in service.repository.event_store.get(device.id)]


def test_an_observer_behind_another_ones_record_still_records_what_it_sees(
        database_url: str) -> None:
    first = RegistrationService(env=eventsourcing_env(database_url))
    second = RegistrationService(env=eventsourcing_env(database_url))

    assert first.record(held(timedelta(minutes=5)), T0) > 0
    assert second.record([], T0 + timedelta(seconds=1)) == 1  # the phone unregistered
    # The first observer's view of the device is older than the second's event.
    assert first.record(held(timedelta(minutes=10)), T0 + timedelta(seconds=2)) == 1

    assert kinds(second) == ["Created", "Registered", "Unregistered", "Registered"]
    assert second.record(held(timedelta(minutes=10)), T0 + timedelta(seconds=3)) == 0


class RacedService(RegistrationService):
    """Another observer records between this one's read of a device and its save."""

    name = RegistrationService.name  # the same store (eventsourcing names it per class)
    other: RegistrationService | None = None

    def _device(self, device_id, held, at):  # type: ignore[no-untyped-def]
        device = super()._device(device_id, held, at)
        if self.other is not None:
            other, self.other = self.other, None
            other.record([], at)  # the phone unregistered, as the other one saw it
        return device


def test_an_observer_that_loses_a_race_decides_again_on_the_winners_record(
        database_url: str) -> None:
    first = RacedService(env=eventsourcing_env(database_url))
    second = RegistrationService(env=eventsourcing_env(database_url))
    assert first.record(held(timedelta(minutes=5)), T0) > 0
    first.other = second

    recorded = first.record(held(timedelta(minutes=10)), T0 + timedelta(seconds=2))

    assert recorded == 1
    assert kinds(second) == ["Created", "Registered", "Unregistered", "Registered"]
