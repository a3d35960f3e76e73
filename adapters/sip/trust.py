"""Which addresses a B2BUA worker takes INVITEs from: the SIP edge's, nobody else's.

Kamailio (docs/edge.md) does what a public SIP port needs: sanity and flood checks,
no open relay, admission by free legs. A worker reachable from anywhere else would
bypass all of it, so it answers 403 to an INVITE whose packet came from outside its
trusted networks, before any routing or domain command. The verdict is taken when
the INVITE arrives, also when a burst makes the worker hold it unanswered
(adapters/sip/pjsua/admission.py): a held untrusted INVITE gets its 403 later,
never the 503 + Retry-After ("come back") that held trusted ones get. Only when
every call slot is held does pjsua answer a further INVITE, from anyone, with its
own stateless 486 before the worker sees it (no transport, nothing routed).

The address judged is the one the packet came from (pjsip's ``srcAddress``), never
Via, Contact or From, which the sender writes. Names are not accepted, only addresses
and networks: the check runs on the pjsua2 thread, which must never wait for DNS.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

IPNetwork = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address

# The default: a worker beside its Kamailio on one host (dev, tests, bench).
LOOPBACK: tuple[IPNetwork, ...] = (ip_network("127.0.0.0/8"), ip_network("::1/128"))


def parse_networks(specs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Networks from ``specs``, each an address ("10.0.0.5", "::1") or a network
    ("10.1.0.0/16"), several per item if comma-separated (as in an environment
    variable). Raises ValueError on anything else, host bits set in a network included
    (``10.1.2.3/16`` is more likely a typo than a wish)."""
    networks: list[IPNetwork] = []
    for spec in specs:
        for item in spec.split(","):
            text = item.strip()
            if not text:
                continue
            try:
                networks.append(ip_network(text))
            except ValueError as error:
                raise ValueError(f"not an address or network: {text!r} ({error})") from None
    if not networks:
        raise ValueError("no trusted address given: no INVITE could ever be taken")
    return tuple(networks)


def source_host(source: str) -> IPAddress | None:
    """The address of a packet source as pjsip prints it ("127.0.0.1:5060",
    "[::1]:5060"; a bare address too); None if it is none of these."""
    text = source.strip()
    if text.startswith("["):
        host = text[1:text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        host = text.split(":", 1)[0]  # IPv4 with a port
    else:
        host = text  # a bare IPv4 or IPv6 address
    try:
        address = ip_address(host)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 sender
    return address


def is_trusted(source: str, trusted: Iterable[IPNetwork]) -> bool:
    """Whether a request from ``source`` (pjsip's "host:port") may be acted on: its
    address is in one of the ``trusted`` networks. An unreadable source is not."""
    address = source_host(source)
    if address is None:
        return False
    return any(address in network for network in trusted)
