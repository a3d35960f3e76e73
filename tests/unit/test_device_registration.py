"""DeviceRegistration (domain/device.py) and RegistrationService.record
(application/registrations.py): what the registrar holds, turned into registered,
refreshed, unregistered and expired events, each change recorded once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.registrations import Held, RegistrationService
from domain.device import DeviceRegistration
from domain.errors import IllegalTransition, InvalidValue

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
AOR, CONTACT = "sip:desk-101@acme.test", "sip:desk-101@10.0.0.7:5060"


def names(device: DeviceRegistration) -> list[str]:
    return [type(e).__name__ for e in device.collect_events()]


def test_a_binding_is_registered_refreshed_and_observing_it_again_is_a_no_op() -> None:
    device = DeviceRegistration.create(AOR, tenant="acme", occurred_at=T0)
    device.observe(CONTACT, "phone/1", T0 + timedelta(seconds=300), T0)
    device.observe(CONTACT, "phone/1", T0 + timedelta(seconds=300), T0)
    device.observe(CONTACT, "phone/1", T0 + timedelta(seconds=400), T0 + timedelta(seconds=100))

    assert names(device) == ["Created", "Registered", "Refreshed"]
    [binding] = device.live(T0 + timedelta(seconds=399))
    assert (binding.contact, binding.user_agent) == (CONTACT, "phone/1")
    assert device.live(T0 + timedelta(seconds=400)) == []


def test_a_binding_gone_early_is_unregistered_and_one_gone_late_is_expired() -> None:
    device = DeviceRegistration.create(AOR, tenant="acme", occurred_at=T0)
    device.observe(CONTACT, "phone/1", T0 + timedelta(seconds=60), T0)
    device.observe("sip:desk-101@10.0.0.8", "phone/2", T0 + timedelta(seconds=60), T0)

    device.gone(CONTACT, T0 + timedelta(seconds=10))
    device.gone("sip:desk-101@10.0.0.8", T0 + timedelta(seconds=60))
    device.gone(CONTACT, T0 + timedelta(seconds=70))  # nothing left to drop: no event

    assert names(device) == ["Created", "Registered", "Registered", "Unregistered", "Expired"]
    assert device.bindings == {}


def test_expiring_before_the_expiry_or_an_unknown_contact_is_refused() -> None:
    device = DeviceRegistration.create(AOR, tenant="acme", occurred_at=T0)
    device.observe(CONTACT, "phone/1", T0 + timedelta(seconds=60), T0)
    with pytest.raises(IllegalTransition):
        device.expire(CONTACT, T0 + timedelta(seconds=59))
    with pytest.raises(IllegalTransition):
        device.unregister("sip:someone@else", T0)
    with pytest.raises(InvalidValue):
        DeviceRegistration.create("desk-101", tenant="acme", occurred_at=T0)


def test_the_record_is_one_per_tenant_and_aor_whatever_the_case() -> None:
    shouted = "sip:" + AOR.removeprefix("sip:").upper()
    assert DeviceRegistration.id_for(AOR, "acme") == DeviceRegistration.id_for(shouted, "acme")
    assert DeviceRegistration.id_for(AOR, "acme") != DeviceRegistration.id_for(AOR, "globex")


def kinds(service: RegistrationService) -> list[str]:
    return [n.topic.rsplit(".", 1)[-1] for n in service.recorder.select_notifications(1, 100)]


def held(expires_s: float, ua: str = "phone/1", contact: str = CONTACT) -> Held:
    return Held("acme", AOR, contact, ua, T0 + timedelta(seconds=expires_s))


def test_the_service_records_each_change_of_what_the_registrar_holds_once() -> None:
    service = RegistrationService()

    assert service.record([held(300)], T0) == 2  # Created, Registered
    assert service.record([held(300)], T0 + timedelta(seconds=5)) == 0
    assert service.record([held(400)], T0 + timedelta(seconds=100)) == 1
    assert service.record([], T0 + timedelta(seconds=110)) == 1  # gone before 400 s
    assert service.record([], T0 + timedelta(seconds=120)) == 0

    assert kinds(service) == ["Created", "Registered", "Refreshed", "Unregistered"]


def test_a_binding_held_past_its_expiry_is_expired_even_before_the_registrar_drops_it(
) -> None:
    service = RegistrationService()
    service.record([held(60)], T0)

    assert service.record([held(60)], T0 + timedelta(seconds=61)) == 1

    assert kinds(service)[-1] == "Expired"
    device = service.device(AOR, "acme")
    assert device is not None
    assert device.live(T0 + timedelta(seconds=61)) == []


def test_after_a_restart_bindings_dropped_meanwhile_are_still_seen() -> None:
    service = RegistrationService()
    service.record([held(300)], T0)
    service._bound = None  # as a new process: which devices are bound is read from the log

    assert service.record([], T0 + timedelta(seconds=10)) == 1

    assert kinds(service)[-1] == "Unregistered"
