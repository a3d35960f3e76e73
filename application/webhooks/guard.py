"""The SSRF guard: a webhook target must not reach loopback, private, link-local
(or otherwise special) addresses unless the allow-list names them.

A URL is checked twice: at creation, a literal bad address answers 422; at every
attempt the host is resolved, every address it resolves to is checked, and the
request goes to the checked address (the Host header and TLS SNI keep the name),
so a DNS answer that changes between check and connect cannot slip past.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

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
    literally (`localhost` counts as one). Names are resolved at delivery."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"URL longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        httpx.URL(url)  # what the sender will parse: refuse now what it could not
    except (ValueError, httpx.InvalidURL) as error:
        raise TargetRefused(f"not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused("URL must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise TargetRefused("URL must not carry credentials")
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return  # a name: checked when resolved
    check_address(address, allow)


@dataclass(frozen=True)
class Target:
    """Where one attempt goes: the URL with its host replaced by a checked address."""

    url: httpx.URL
    host_header: str
    sni_hostname: str


async def resolve(url: str, allow: Sequence[Network]) -> Target:
    """Resolve the URL's host, check every address, and pin the first one."""
    parsed = httpx.URL(url)
    host = parsed.host
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise TargetRefused(f"{host} resolves to no address")
    for address in addresses:
        check_address(address, allow)
    default_port = parsed.port is None
    host_header = host if default_port else f"{host}:{port}"
    return Target(parsed.copy_with(host=str(addresses[0])), host_header, host)
