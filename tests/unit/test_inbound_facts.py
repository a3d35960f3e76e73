"""A call's direction, trunk and tenant come from the numbers the tenants
provisioned (issue 11 §6): to one of them is inbound on it, from one of them
outbound on it, between two unprovisioned numbers internal. Where the edge
authenticates devices, a device's call is its tenant's whatever number it shows,
and the header naming that tenant is read from the INVITE."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.sip.pjsua.admission import device_tenant
from adapters.sip.sessions.session import InboundFacts
from domain.values import Direction


@dataclass
class Numbers:
    tenants: dict[str, str]

    def owns(self, did: str) -> bool:
        return did in self.tenants

    def tenant(self, did: str) -> str:
        return self.tenants.get(did, "default")


NUMBERS = Numbers({"+3225550100": "acme", "+3225550199": "globex"})


def _facts(caller: str, callee: str, numbers: Numbers | None = NUMBERS,
           device: str | None = None) -> tuple[object, ...]:
    f = InboundFacts.classified("c@test", caller, callee, numbers, device)
    return f.direction, f.trunk, f.tenant


def test_a_call_to_a_provisioned_number_is_inbound_on_that_number() -> None:
    assert _facts("+4420000000", "+3225550100") == (Direction.INBOUND, "+3225550100", "acme")


def test_a_call_from_a_provisioned_number_is_outbound_on_that_number() -> None:
    assert _facts("+3225550100", "+4420000000") == (Direction.OUTBOUND, "+3225550100", "acme")


def test_a_call_between_unprovisioned_numbers_is_internal() -> None:
    assert _facts("1001", "1002") == (Direction.INTERNAL, None, "default")
    assert _facts("1001", "+3225550100", None) == (Direction.INTERNAL, None, "default")


def test_a_devices_call_showing_its_tenants_number_goes_out_on_that_number() -> None:
    assert _facts("+3225550100", "+4420000000", device="acme") == \
        (Direction.OUTBOUND, "+3225550100", "acme")


def test_a_devices_call_showing_another_tenants_number_stays_its_own_tenants() -> None:
    assert _facts("+3225550199", "+4420000000", device="acme") == \
        (Direction.INTERNAL, None, "acme")
    assert _facts("desk-101", "1002", device="acme") == (Direction.INTERNAL, None, "acme")


def test_a_device_calling_one_of_our_numbers_is_an_inbound_call_on_it() -> None:
    assert _facts("desk-101", "+3225550199", device="acme") == \
        (Direction.INBOUND, "+3225550199", "globex")


def _invite(*headers: str) -> str:
    return "\r\n".join(["INVITE sip:1002@edge.test SIP/2.0",
                         "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1",
                         "From: <sip:desk-101@acme.test>;tag=1", "To: <sip:1002@edge.test>",
                         *headers, "Content-Length: 0", "", ""])


def test_the_edges_tenant_header_is_read_from_the_invite() -> None:
    assert device_tenant(_invite("X-Dialtone-Tenant: acme")) == "acme"
    assert device_tenant(_invite("x-dialtone-tenant:  acme ")) == "acme"  # names are caseless


def test_no_single_valid_tenant_header_is_no_claim() -> None:
    assert device_tenant(_invite()) is None
    assert device_tenant(_invite("X-Dialtone-Tenant: acme", "X-Dialtone-Tenant: globex")) is None
    assert device_tenant(_invite("X-Dialtone-Tenant: Not A Tenant")) is None
    assert device_tenant(_invite("X-Dialtone-Tenant:")) is None


def test_a_header_kamailio_and_pjsip_would_read_differently_is_no_claim() -> None:
    """Kamailio ends a line at CRLF only; pjsip also at a lone CR (or LF): a claim
    hidden that way passed the edge's remove_hf as part of another header."""
    assert device_tenant(_invite("Subject: hi\rX-Dialtone-Tenant: acme")) is None
    assert device_tenant(_invite("Subject: hi\nX-Dialtone-Tenant: acme")) is None
    assert device_tenant(_invite("Subject: hi", " X-Dialtone-Tenant: acme")) is None  # folded
    assert device_tenant(_invite("X-Dialtone-Tenant: acme", "Subject: a\rb")) is None


def test_white_space_before_the_colon_still_names_the_header() -> None:
    assert device_tenant(_invite("User-Agent : Phone", "X-Dialtone-Tenant: acme")) == "acme"
    assert device_tenant(_invite("X-Dialtone-Tenant : acme")) == "acme"
