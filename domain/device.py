"""The DeviceRegistration aggregate: where a device (a SIP address of record,
``user@<the tenant's SIP domain>``) can be reached, as the registrar saw it.

The registrar (Kamailio, infra/kamailio/registrar.cfg) keeps the bindings in
Redis; the platform observes them (application/registrations.py) and records
what changed here, one event per change of one contact::

    (no binding)  --observe--> Registered   (a new contact, its user agent, until when)
    bound         --observe--> Refreshed    (the same contact re-registered: a later
                                             expiry, or another user agent)
    bound         --unregister--> Unregistered  (gone before its expiry: the phone
                                                 said goodbye, or an admin removed it)
    bound         --expire--> Expired       (its expiry passed without a refresh)

Observing a binding exactly as recorded is a no-op, not an event, so observing
the same registrations again and again records nothing. A device is reachable
(``live``) while one of its contacts has not expired.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.addressing import CONFIG_NAMESPACE, DEFAULT_TENANT, check_tenant
from domain.errors import IllegalTransition, InvalidValue
from domain.timed import TimedAggregate
from domain.values import non_empty, utc_instant

__all__ = ["Binding", "DeviceRegistration"]


@dataclass(frozen=True)
class Binding:
    """One registered contact of the device."""

    contact: str
    user_agent: str
    expires_at: datetime


class DeviceRegistration(TimedAggregate):
    class Created(TimedAggregate.Event, Aggregate.Created):
        class_version = 1
        tenant: str
        aor: str

    class Registered(TimedAggregate.Event):
        class_version = 1
        contact: str
        user_agent: str
        expires_at: datetime

        def apply(self, device: DeviceRegistration) -> None:
            device._bind(self.contact, self.user_agent, self.expires_at)

    class Refreshed(TimedAggregate.Event):
        class_version = 1
        contact: str
        user_agent: str
        expires_at: datetime

        def apply(self, device: DeviceRegistration) -> None:
            device._bind(self.contact, self.user_agent, self.expires_at)

    class Unregistered(TimedAggregate.Event):
        class_version = 1
        contact: str

        def apply(self, device: DeviceRegistration) -> None:
            device.bindings.pop(self.contact, None)

    class Expired(TimedAggregate.Event):
        class_version = 1
        contact: str

        def apply(self, device: DeviceRegistration) -> None:
            device.bindings.pop(self.contact, None)

    def __init__(self, *, tenant: str, aor: str, occurred_at: datetime) -> None:
        self.tenant = tenant
        self.aor = aor
        self.bindings: dict[str, Binding] = {}
        self.created_at = occurred_at

    @staticmethod
    def id_for(aor: str, tenant: str = DEFAULT_TENANT) -> UUID:
        """One record per tenant and AOR (the AOR compared without case)."""
        return uuid5(CONFIG_NAMESPACE, f"device:{check_tenant(tenant)}:{_checked_aor(aor).lower()}")

    @classmethod
    def create(cls, aor: str, *, tenant: str = DEFAULT_TENANT,
               occurred_at: datetime) -> DeviceRegistration:
        """The registration record of ``aor`` (``sip:user@domain``), nothing bound yet."""
        return cls._create(cls.Created, id=cls.id_for(aor, tenant), tenant=check_tenant(tenant),
                           aor=_checked_aor(aor), occurred_at=utc_instant(occurred_at))

    # -- commands -------------------------------------------------------------------

    def observe(self, contact: str, user_agent: str, expires_at: datetime,
                occurred_at: datetime) -> None:
        """The registrar holds ``contact`` until ``expires_at``: Registered if new,
        Refreshed if it changed, nothing if it is as recorded."""
        contact = non_empty("contact", contact)
        expires = utc_instant(expires_at)
        known = self.bindings.get(contact)
        if known is not None and (known.expires_at, known.user_agent) == (expires, user_agent):
            return
        event = self.Registered if known is None else self.Refreshed
        self._trigger(event, occurred_at, contact=contact, user_agent=user_agent,
                      expires_at=expires)

    def unregister(self, contact: str, occurred_at: datetime) -> None:
        self._require_bound(contact, "unregister")
        self._trigger(self.Unregistered, occurred_at, contact=contact)

    def expire(self, contact: str, occurred_at: datetime) -> None:
        self._require_bound(contact, "expire")
        if utc_instant(occurred_at) < self.bindings[contact].expires_at:
            raise IllegalTransition(f"{self.aor}: {contact} is bound until "
                                    f"{self.bindings[contact].expires_at.isoformat()}")
        self._trigger(self.Expired, occurred_at, contact=contact)

    def gone(self, contact: str, occurred_at: datetime) -> None:
        """The registrar no longer holds ``contact``: Expired if its time had come,
        Unregistered if it left before."""
        if contact not in self.bindings:
            return
        if utc_instant(occurred_at) >= self.bindings[contact].expires_at:
            self.expire(contact, occurred_at)
        else:
            self.unregister(contact, occurred_at)

    def expire_due(self, now: datetime) -> None:
        """Expire every contact whose expiry has passed (no refresh came)."""
        for contact in [c for c, b in self.bindings.items() if b.expires_at <= utc_instant(now)]:
            self.expire(contact, now)

    # -- queries --------------------------------------------------------------------

    def live(self, now: datetime) -> list[Binding]:
        """The contacts a call can reach at ``now`` (not expired), latest expiry first."""
        at = utc_instant(now)
        return sorted((b for b in self.bindings.values() if b.expires_at > at),
                      key=lambda b: b.expires_at, reverse=True)

    # -- state changes, used only by the events' apply methods ----------------------

    def _bind(self, contact: str, user_agent: str, expires_at: datetime) -> None:
        self.bindings[contact] = Binding(contact, user_agent, expires_at)

    def _require_bound(self, contact: str, action: str) -> None:
        if contact not in self.bindings:
            raise IllegalTransition(f"{self.aor}: cannot {action} {contact}: not bound")


def registering_domain(device_uri: str, domains: Collection[str]) -> bool:
    """Whether the device URI is an AOR in one of these (lower-case) SIP domains, the
    tenants': such a device registers, and is reached through the registrar."""
    host = device_uri.split("@", 1)[-1].split(";", 1)[0].split("?", 1)[0].split(":", 1)[0]
    return "@" in device_uri and host.lower() in domains


def _checked_aor(aor: str) -> str:
    if (not isinstance(aor, str) or not aor.startswith(("sip:", "sips:"))
            or "@" not in aor or any(c.isspace() for c in aor)):
        raise InvalidValue(f"an address of record is sip:user@domain, got {aor!r}")
    return aor
