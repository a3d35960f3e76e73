"""Reads the bindings Kamailio's registrar holds in Redis (usrloc on db_redis,
infra/kamailio/registrar.cfg) and hands them to RegistrationService.record.

db_redis keeps one hash per contact, ``location:entry::<ruid>``, with usrloc's
columns (username, domain, contact, user_agent, expires as local time
``YYYY-mm-dd HH:MM:SS``). The tenant of a binding is the tenant whose SIP domain
it is in (tenants.sip_domain); a binding in a domain no tenant has is skipped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import psycopg
import redis
from eventsourcing.persistence import IntegrityError

from application.callcentre import CallCentreService
from application.device_presence import AgentOnDevice, reconcile
from application.registrations import Held, RegistrationService
from domain.errors import DomainError

log = logging.getLogger(__name__)

ENTRY_PATTERN = "location:entry::*"
_FIELDS = ("username", "domain", "contact", "user_agent", "expires")


def parse_expires(text: str) -> datetime:
    """usrloc's expiry as db_redis stores it (the host's local time) -> UTC."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").astimezone(UTC)


def read_held(client: redis.Redis, tenants_by_domain: Mapping[str, str]) -> list[Held]:
    """Every binding in the registrar's Redis database, with its tenant."""
    held: list[Held] = []
    for key in client.scan_iter(match=ENTRY_PATTERN, count=500):
        values = client.hmget(key, _FIELDS)
        row = dict(zip(_FIELDS, (v.decode() if isinstance(v, bytes) else v for v in values),
                       strict=True))
        if not all(row[f] for f in ("username", "domain", "contact", "expires")):
            continue  # deleted between SCAN and HMGET
        tenant = tenants_by_domain.get(str(row["domain"]).lower())
        if tenant is None:
            continue
        held.append(Held(tenant, f"sip:{row['username']}@{row['domain']}", str(row["contact"]),
                         str(row["user_agent"] or ""), parse_expires(str(row["expires"]))))
    return held


def tenants_by_domain(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT lower(sip_domain), id FROM tenants WHERE sip_domain IS NOT NULL").fetchall()
    return dict(rows)


def agents_on_devices(dsn: str) -> list[AgentOnDevice]:
    """The logged-in agents and their devices (the agent_state projection)."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT agent_id, tenant, device_uri, state, pause_reason FROM agent_state"
            " WHERE device_uri IS NOT NULL AND state <> 'logged_out'").fetchall()
    return [AgentOnDevice(*row) for row in rows]


class BindingsObserver:
    """Observes the registrar's Redis every ``interval_s`` seconds and records the
    changes; with ``callcentre``, agents on registering devices then follow them
    (application/device_presence.py). ``observe_once`` is one observation."""

    def __init__(self, service: RegistrationService, client: redis.Redis, dsn: str, *,
                 callcentre: CallCentreService | None = None, interval_s: float = 2.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.service = service
        self.client = client
        self.dsn = dsn
        self.callcentre = callcentre
        self.interval_s = interval_s
        self.clock = clock
        self._stop = threading.Event()

    def observe_once(self) -> int:
        """Record what changed since the last observation (how many events), then
        pause or resume the agents whose device's registration changed."""
        now = self.clock()
        domains = tenants_by_domain(self.dsn)
        recorded = self.service.record(read_held(self.client, domains), now)
        if self.callcentre is not None:
            reconcile(self.callcentre, self.service, agents_on_devices(self.dsn), domains, now)
        return recorded

    def run(self) -> None:
        """Observe until ``stop``; an unreachable Redis or database, or another writer
        that kept winning (another observer, an agent's own change during the
        reconcile), is logged and tried again at the next tick (the bindings are
        re-read whole, nothing is lost)."""
        while not self._stop.is_set():
            try:
                self.observe_once()
            except (redis.RedisError, psycopg.Error, IntegrityError, DomainError):
                log.warning("registrations: observation failed; retrying", exc_info=True)
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
