"""Reads the bindings Kamailio's registrar holds in Redis (usrloc on db_redis,
infra/kamailio/registrar.cfg) and hands them to RegistrationService.record.

db_redis keeps one hash per contact, ``location:entry::<ruid>``, with usrloc's
columns (username, domain, contact, user_agent, expires as local time
``YYYY-mm-dd HH:MM:SS``). The tenant of a binding is the tenant that provisioned
the device (its sip_subscribers row: the credentials Kamailio authenticated the
REGISTER with), not whichever tenant holds that SIP domain now: a tenant that moved
to another domain keeps its devices provisioned in the old one, and no other tenant
takes them over by taking that domain (nor may it while they exist:
application.identity.sip_credentials.set_sip_domain). A binding of no provisioned
device (a registrar run without credentials) is the tenant's whose SIP domain it is
in; in a domain no tenant has, it is skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import redis
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
)

from application import metrics
from application.callcentre import CallCentreService
from application.device_presence import REASON, AgentOnDevice, reconcile
from application.registrations import Held, RegistrationService
from domain.device import DeviceRegistration
from domain.errors import DomainError
from domain.values import utc_instant

log = logging.getLogger(__name__)

ENTRY_PATTERN = "location:entry::*"
_FIELDS = ("username", "domain", "contact", "user_agent", "expires")


def parse_expires(text: str) -> datetime:
    """usrloc's expiry as db_redis stores it (the host's local time) -> UTC."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").astimezone(UTC)


@dataclass(frozen=True)
class Reading:
    """What one read of the registrar's Redis found: the bindings of known tenants, and
    how many were skipped for a SIP domain no tenant has (a misconfigured phone or
    tenant: worth a metric, not a record) or for an expiry that does not parse (a
    registrar writing another format: skipped, so that one hash does not stop every
    observation), or for a username that makes no address of record the platform
    accepts (whitespace in it, say: the domain would refuse the record, and every
    binding of that observation would go unrecorded with it)."""

    held: list[Held]
    unknown_domain: int
    unreadable: int = 0
    invalid_aor: int = 0


@dataclass(frozen=True)
class Devices:
    """The provisioned devices' tenants, by (SIP user, lower-case domain), and each
    tenant's current SIP domain (lower-case)."""

    owners: Mapping[tuple[str, str], str]
    by_domain: Mapping[str, str]

    def tenant_of(self, username: str, domain: str) -> str | None:
        domain = domain.lower()
        return self.owners.get((username, domain)) or self.by_domain.get(domain)

    @property
    def domains(self) -> frozenset[str]:
        """The SIP domains devices register in: the tenants' and any device's."""
        return frozenset(self.by_domain) | {domain for _, domain in self.owners}


def read_bindings(client: redis.Redis, devices: Devices) -> Reading:
    """Every binding in the registrar's Redis database, with its tenant."""
    held: list[Held] = []
    unknown = unreadable = invalid = 0
    for key in client.scan_iter(match=ENTRY_PATTERN, count=500):
        values = client.hmget(key, _FIELDS)
        row = dict(zip(_FIELDS, (v.decode() if isinstance(v, bytes) else v for v in values),
                       strict=True))
        if not all(row[f] for f in ("username", "domain", "contact", "expires")):
            continue  # deleted between SCAN and HMGET
        tenant = devices.tenant_of(str(row["username"]), str(row["domain"]))
        if tenant is None:
            unknown += 1
            continue
        try:
            expires = parse_expires(str(row["expires"]))
        except ValueError:
            unreadable += 1
            continue
        aor = f"sip:{row['username']}@{row['domain']}"
        if not _accepted_aor(aor, tenant):
            invalid += 1
            continue
        held.append(Held(tenant, aor, str(row["contact"]), str(row["user_agent"] or ""),
                         expires))
    return Reading(held, unknown, unreadable, invalid)


def _accepted_aor(aor: str, tenant: str) -> bool:
    """Whether the registration record would take ``aor`` (the domain's own check)."""
    try:
        DeviceRegistration.id_for(aor, tenant)
    except DomainError:
        return False
    return True


def read_held(client: redis.Redis, devices: Devices) -> list[Held]:
    """Every binding of a provisioned device in the registrar's Redis database."""
    return read_bindings(client, devices).held


def provisioned_devices(dsn: str) -> Devices:
    with psycopg.connect(dsn) as conn:
        owners = conn.execute(
            "SELECT username, lower(domain), tenant FROM sip_subscribers").fetchall()
        current = conn.execute(
            "SELECT lower(sip_domain), id FROM tenants WHERE sip_domain IS NOT NULL").fetchall()
    return Devices({(user, domain): tenant for user, domain, tenant in owners}, dict(current))


def agents_on_devices(dsn: str) -> list[AgentOnDevice]:
    """The logged-in agents and their devices (the agent_state projection)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT agent_id, tenant, device_uri, state, pause_reason FROM agent_state"
            " WHERE device_uri IS NOT NULL AND state <> 'logged_out'").fetchall()
    return [AgentOnDevice(*row) for row in rows]


def error_kind(error: BaseException) -> str:
    """The kind label of a failed observation (REGISTRATION_ERROR_KINDS)."""
    if isinstance(error, redis.RedisError):
        return "redis"
    if isinstance(error, IntegrityError):
        return "conflict"  # another writer kept winning the same device or agent
    if isinstance(error, psycopg.Error | PersistenceError):
        return "database"
    if isinstance(error, DomainError):
        return "refused"
    return "other"


class BindingsObserver:
    """Observes the registrar's Redis every ``interval_s`` seconds and records the
    changes; with ``callcentre``, agents on registering devices then follow them
    (application/device_presence.py). ``observe_once`` is one observation."""

    def __init__(self, service: RegistrationService, client: redis.Redis, dsn: str, *,
                 callcentre: CallCentreService | None = None, interval_s: float = 2.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 beat: Callable[[], object] = lambda: None) -> None:
        self.service = service
        self.client = client
        self.dsn = dsn
        self.callcentre = callcentre
        self.interval_s = interval_s
        self.clock = clock
        self.beat = beat  # each turn, observed or retried (its heartbeat's tick)
        self._stop = threading.Event()
        self._skipped = (0, 0)  # (unreadable, invalid_aor) at the last observation
        metrics.expose_registrations()  # this process observes: it serves their series

    def observe_once(self) -> int:
        """Record what changed since the last observation (how many events), then
        pause or resume the agents whose device's registration changed."""
        metrics.REGISTRATIONS_OBSERVATIONS.inc()
        started = time.perf_counter()
        now = self.clock()
        devices = provisioned_devices(self.dsn)
        reading = read_bindings(self.client, devices)
        self._say_skipped(reading)
        recorded = self.service.record(reading.held, now)
        paused = 0
        if self.callcentre is not None:
            agents = agents_on_devices(self.dsn)
            changes = [c for _, c in reconcile(self.callcentre, self.service, agents,
                                               devices.domains, now)]
            metrics.registrations_agents_changed(changes)
            paused = (sum(a.state == "paused" and a.pause_reason == REASON for a in agents)
                      + changes.count("paused") - changes.count("resumed"))
        live = [b for b in reading.held if utc_instant(b.expires_at) > utc_instant(now)]
        metrics.registrations_observed(
            live=len(live), expired=len(reading.held) - len(live),
            unknown_domain=reading.unknown_domain, unreadable=reading.unreadable,
            invalid_aor=reading.invalid_aor,
            devices=len({(b.tenant, b.aor.lower()) for b in live}), agents_paused=paused,
            seconds=time.perf_counter() - started)
        return recorded

    def _say_skipped(self, reading: Reading) -> None:
        """Log the skipped bindings when their counts change (once, not every 2 s)."""
        skipped = (reading.unreadable, reading.invalid_aor)
        if skipped == self._skipped:
            return
        if reading.unreadable:
            log.warning("registrations: %d binding(s) in the registrar's Redis have an "
                        "expiry that does not read as %s; skipped", reading.unreadable,
                        "YYYY-mm-dd HH:MM:SS")
        if reading.invalid_aor:
            log.warning("registrations: %d binding(s) in the registrar's Redis have a "
                        "username that makes no valid address of record (sip:user@domain, "
                        "no whitespace); skipped", reading.invalid_aor)
        self._skipped = skipped

    def run(self) -> None:
        """Observe until ``stop``; an unreachable Redis or database, or another writer
        that kept winning (another observer, an agent's own change during the
        reconcile), is logged and tried again at the next tick (the bindings are
        re-read whole, nothing is lost). A database that goes away in the middle of
        recording raises eventsourcing's own OperationalError/InterfaceError (not
        psycopg's): retried the same way. Each failure is counted by kind
        (dialtone_registrations_observation_errors_total)."""
        while not self._stop.is_set():
            try:
                self.observe_once()
            except (redis.RedisError, psycopg.Error, IntegrityError, OperationalError,
                    InterfaceError, DomainError) as error:
                metrics.registrations_failed(error_kind(error))
                log.warning("registrations: observation failed; retrying", exc_info=True)
            except BaseException as error:
                # Not retried (a bug, or eventsourcing's own database errors, which are
                # not psycopg's): counted for a scrape before the thread ends.
                metrics.registrations_failed(error_kind(error))
                raise
            self.beat()  # the loop turned, an outage waited out included: not a hang
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        """``stop`` was called: a ``run`` that ended without it died of an error."""
        return self._stop.is_set()
