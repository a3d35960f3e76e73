"""The SSRF guard: a webhook target must not reach loopback, private, link-local
(or otherwise special) addresses unless the allow-list names them.

A URL is checked twice: at creation (and again before each round's attempts), a
literal bad address answers 422 / is refused; at connect time the sender's
resolver (`GuardedResolver`, plugged into aiohttp's connector) checks every
address a name resolves to and refuses the name if any is special, so a DNS
answer that points a public-looking name at 127.0.0.1 is refused, and what the
connector connects to is only ever an address that was checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048


class TargetRefused(ValueError):  # noqa: N818 - reads as what happened
    """A webhook URL that may not be used."""


def parse_allow(text: str) -> tuple[Network, ...]:
    """`"127.0.0.1/32, ::1"` -> the networks (an address alone is a /32 or /128)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False)
                 for part in text.split(",") if part.strip())


def is_special(address: Address) -> bool:
    """Loopback, private, link-local, multicast, reserved or unspecified (IPv4-mapped
    IPv6 addresses are judged as the IPv4 address they carry)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (address.is_loopback or address.is_private or address.is_link_local
            or address.is_multicast or address.is_reserved or address.is_unspecified)


def check_address(address: Address, allow: Sequence[Network]) -> None:
    if is_special(address) and not any(address in net for net in allow):
        raise TargetRefused(f"{address} is a loopback, private or link-local address")


def check_url(url: str, allow: Sequence[Network]) -> None:
    """Refuse a URL that is not http(s), has no host, or names a refused address
    literally (`localhost` counts as one). Names are checked when resolved."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"URL longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parsed = URL(url)  # what the sender (aiohttp) parses: refuse now what it could not
    except ValueError as error:
        raise TargetRefused(f"not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not parsed.host:
        raise TargetRefused("URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise TargetRefused("URL must not carry credentials")
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host.replace(".", "").isdigit():  # 127.1 or 2130706433: aiohttp refuses them too
            raise TargetRefused(f"{host} is not a canonical IPv4 address") from None
        return  # a name: checked when resolved
    check_address(address, allow)


def checked(host: str, addresses: Sequence[str], allow: Sequence[Network]) -> None:
    """Refuse `host` unless it resolved to something and every address is allowed
    (one bad address refuses the name: the connector may try any of them)."""
    if not addresses:
        raise TargetRefused(f"{host} resolves to no address")
    for text in addresses:
        check_address(ipaddress.ip_address(text.split("%")[0]), allow)


class GuardedResolver(AbstractResolver):
    """aiohttp's threaded getaddrinfo resolver, with every answer checked: the sender's
    connector only connects to addresses that passed (see the module docstring).
    IP literals never reach a resolver; `check_url` covers them before each round."""

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
