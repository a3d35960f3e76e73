"""Agents follow their device's registration (issue 14 §1): an agent logged in on
a registering device (its AOR, ``sip:<extension>@<the tenant's SIP domain>``) is
paused with reason ``device-not-registered`` while that device has no live
registration, so routing, which offers calls to available agents only, passes
it by and the supervisor sees why (the agent's state and pause reason); it is
resumed once the device registers again. An agent on any other device URI, or
paused by someone for another reason, is left alone.

Level-triggered: ``reconcile`` compares every logged-in agent with the
registrations now, so a missed change is corrected at the next call.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from application.callcentre import CallCentreService
from application.registrations import RegistrationService
from domain.device import registering_domain
from domain.errors import IllegalTransition

log = logging.getLogger(__name__)

REASON = "device-not-registered"
_PAUSABLE = frozenset({"available", "wrap_up"})


@dataclass(frozen=True)
class AgentOnDevice:
    """A logged-in agent as the agent_state projection shows it."""

    agent_id: UUID
    tenant: str
    device_uri: str
    state: str
    pause_reason: str | None


def reconcile(callcentre: CallCentreService, registrations: RegistrationService,
              agents: Iterable[AgentOnDevice], domains: Collection[str],
              now: datetime) -> list[tuple[UUID, str]]:
    """Pause the agents whose registering device is not registered, resume those
    paused for that whose device is back; returns (agent, "paused"|"resumed")."""
    changed: list[tuple[UUID, str]] = []
    for agent in agents:
        if not registering_domain(agent.device_uri, domains):
            continue
        aor = agent.device_uri.split(";", 1)[0]
        device = registrations.device(aor, agent.tenant)
        live = device is not None and bool(device.live(now))
        try:
            if not live and agent.state in _PAUSABLE:
                callcentre.pause(agent.agent_id, REASON, now)
                changed.append((agent.agent_id, "paused"))
            elif live and agent.state == "paused" and agent.pause_reason == REASON:
                callcentre.resume(agent.agent_id, now)
                changed.append((agent.agent_id, "resumed"))
        except IllegalTransition:
            # The projection was behind (an offer came meanwhile): next time.
            log.info("device presence: agent %s moved on; reconciled next time", agent.agent_id)
    return changed
