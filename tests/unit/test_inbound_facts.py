"""A call's direction, trunk and tenant come from the numbers the tenants
provisioned (issue 11 §6): to one of them is inbound on it, from one of them
outbound on it, between two unprovisioned numbers internal."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.sip.sessions.session import InboundFacts
from domain.values import Direction


@dataclass
class Numbers:
    tenants: dict[str, str]

    def owns(self, did: str) -> bool:
        return did in self.tenants

    def tenant(self, did: str) -> str:
        return self.tenants.get(did, "default")


NUMBERS = Numbers({"+3225550100": "acme"})


def _facts(caller: str, callee: str, numbers: Numbers | None = NUMBERS) -> tuple[object, ...]:
    f = InboundFacts.classified("c@test", caller, callee, numbers)
    return f.direction, f.trunk, f.tenant


def test_a_call_to_a_provisioned_number_is_inbound_on_that_number() -> None:
    assert _facts("+4420000000", "+3225550100") == (Direction.INBOUND, "+3225550100", "acme")


def test_a_call_from_a_provisioned_number_is_outbound_on_that_number() -> None:
    assert _facts("+3225550100", "+4420000000") == (Direction.OUTBOUND, "+3225550100", "acme")


def test_a_call_between_unprovisioned_numbers_is_internal() -> None:
    assert _facts("1001", "1002") == (Direction.INTERNAL, None, "default")
    assert _facts("1001", "+3225550100", None) == (Direction.INTERNAL, None, "default")
