"""The SSRF guard: a webhook target must not reach loopback, private, link-local
(or otherwise non-global) addresses unless the allow-list names them.

A URL is judged by the host aiohttp will connect to: yarl's normalised host, not
the text as written (`127。0。0。1` or `⑫⑦.0.0.1` become the literal 127.0.0.1,
so a host written with non-ASCII characters that turns into an address is
refused outright). It is checked three times: at creation (and again before each
round's attempts), a literal bad address answers 422 / is refused; at connect
time the sender's resolver (`GuardedResolver`, plugged into aiohttp's connector)
checks every address a name resolves to and refuses the name if any is special,
so a DNS answer that points a public-looking name at 127.0.0.1 is refused; and
the connector's socket factory (`guarded_socket`) checks the address of every
socket it is about to connect, literal or resolved, so no connection is ever made
to an address that did not pass.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048


class TargetRefused(ValueError):  # noqa: N818 - reads as what happened
    """A webhook URL that may not be used."""


class ConnectRefused(OSError):  # noqa: N818 - reads as what happened
    """A socket the guard would not let connect: an OSError (EACCES), as the connector
    expects of an address it cannot connect to (it tries the next, then gives up)."""

    def __init__(self, reason: str) -> None:
        super().__init__(errno.EACCES, reason)


def parse_allow(text: str) -> tuple[Network, ...]:
    """`"127.0.0.1/32, ::1"` -> the networks (an address alone is a /32 or /128)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.split(",") if part.strip())


def carried(address: Address) -> Address:
    """The address a connection to `address` reaches: an IPv6 address that carries an
    IPv4 one (IPv4-mapped, 6to4) is judged as that IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        return address.ipv4_mapped or address.sixtofour or address
    return address


def is_special(address: Address) -> bool:
    """Not a global unicast address: loopback, private, link-local, carrier-grade NAT
    (100.64.0.0/10, where some clouds keep their metadata service), multicast,
    reserved or unspecified (judged as the IPv4 address an IPv6 one carries)."""
    address = carried(address)
    return (not address.is_global or address.is_loopback or address.is_private
            or address.is_link_local or address.is_multicast or address.is_reserved
            or address.is_unspecified)


def check_address(address: Address, allow: Sequence[Network]) -> None:
    judged = carried(address)
    if is_special(judged) and not any(judged in net or address in net for net in allow):
        raise TargetRefused(f"{address} is a loopback, private, link-local or otherwise "
                            "non-global address")


def literal(host: str) -> Address | None:
    """The IP address `host` (yarl's raw host) is, or None for a name."""
    try:
        return ipaddress.ip_address(host.partition("%")[0])  # an IPv6 zone (%25eth0) aside
    except ValueError:
        return None


def check_url(url: str, allow: Sequence[Network]) -> None:
    """Refuse a URL that is not http(s), has no host, or names a refused address
    literally (`localhost` counts as one), judging the host aiohttp will connect to
    (yarl's normalised one). Names are checked when resolved and connected."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"URL longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parsed = URL(url)  # what the sender (aiohttp) parses and connects to
    except ValueError as error:
        raise TargetRefused(f"not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not parsed.raw_host:
        raise TargetRefused("URL must be http:// or https:// with a host")
    if parts.username or parts.password or parsed.user or parsed.password:
        raise TargetRefused("URL must not carry credentials")
    host = parsed.raw_host.lower()
    name = host.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        host = "127.0.0.1"
    address = literal(host)
    if address is None:
        if name.replace(".", "").isdigit():  # 127.1 or 2130706433: aiohttp refuses them too
            raise TargetRefused(f"{host} is not a canonical IPv4 address")
        return  # a name: checked when resolved, and its addresses when connected
    if not parts.hostname.isascii():
        raise TargetRefused(f"the host {parts.hostname!r} is written with non-ASCII "
                            f"characters that make it the address {address}")
    check_address(address, allow)


def checked(host: str, addresses: Sequence[str], allow: Sequence[Network]) -> None:
    """Refuse `host` unless it resolved to something and every address is allowed
    (one bad address refuses the name: the connector may try any of them)."""
    if not addresses:
        raise TargetRefused(f"{host} resolves to no address")
    for text in addresses:
        check_address(ipaddress.ip_address(text.split("%")[0]), allow)


class GuardedResolver(AbstractResolver):
    """aiohttp's threaded getaddrinfo resolver, with every answer checked (see the
    module docstring). IP literals never reach a resolver: `check_url` covers them
    before each round and `guarded_socket` when connecting."""

    def __init__(self, allow: Sequence[Network]) -> None:
        self.allow = tuple(allow)
        self._inner = ThreadedResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        checked(host, [result["host"] for result in found], self.allow)
        return found

    async def close(self) -> None:
        await self._inner.close()


def guarded_socket(allow: Sequence[Network]) -> Callable[[tuple[Any, ...]], socket.socket]:
    """aiohttp's socket factory, checking the address each socket is about to connect
    to: literal hosts never reach the resolver, so this is the one check every
    connection passes, whatever the URL's spelling."""
    allowed = tuple(allow)

    def connect_to(addr_info: tuple[Any, ...]) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        try:
            check_address(ipaddress.ip_address(str(sockaddr[0]).partition("%")[0]), allowed)
        except TargetRefused as refused:
            raise ConnectRefused(str(refused)) from None
        return socket.socket(family=family, type=kind, proto=proto)

    return connect_to


@dataclass(frozen=True)
class CheckedTarget:
    """Where a delivery to a URL would go: its host replaced by a checked address."""

    url: URL
    host_header: str
    sni_hostname: str


async def resolve(url: str, allow: Sequence[Network]) -> CheckedTarget:
    """Resolve the URL's host as the sender would, check every address, and name the
    first one (for diagnostics; deliveries go through `GuardedResolver`)."""
    parsed = URL(url)
    host = parsed.host or ""
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    checked(host, addresses, allow)
    host_header = host if parsed.explicit_port is None else f"{host}:{port}"
    return CheckedTarget(parsed.with_host(addresses[0].split("%")[0]), host_header, host)
