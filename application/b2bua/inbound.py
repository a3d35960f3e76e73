"""Who called whom: the facts of an inbound INVITE the call's flow starts from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from domain.addressing import DEFAULT_TENANT
from domain.call import Direction


class NumberBook(Protocol):
    """The provisioned numbers (adapters/sip/routing/directory.py's Directory)."""

    def owns(self, did: str) -> bool: ...

    def tenant(self, did: str) -> str: ...


@dataclass(frozen=True)
class InboundFacts:
    sip_call_id: str
    caller: str
    callee: str
    tenant: str = DEFAULT_TENANT  # of the number dialled (the directory knows it)
    direction: Direction = Direction.INBOUND
    trunk: str | None = None  # the provisioned number the call came in (or goes out) on

    @classmethod
    def classified(cls, sip_call_id: str, caller: str, callee: str,
                   numbers: NumberBook | None) -> InboundFacts:
        """The facts with the call's direction, trunk and tenant, from the numbers
        the tenants provisioned: a call TO one of them came in from outside
        (inbound, on that number); a call FROM one of them (our number presented as
        the caller) goes out (outbound, on that number); a call between two
        numbers nobody provisioned (phone to phone through the dialplan) is
        internal, of the default tenant."""
        if numbers is not None and numbers.owns(callee):
            return cls(sip_call_id, caller, callee, numbers.tenant(callee),
                       Direction.INBOUND, callee)
        if numbers is not None and numbers.owns(caller):
            return cls(sip_call_id, caller, callee, numbers.tenant(caller),
                       Direction.OUTBOUND, caller)
        return cls(sip_call_id, caller, callee, DEFAULT_TENANT, Direction.INTERNAL)
