"""Whether a worker takes an INVITE: from where (trust), and how many at once (the key budget).

## Trust

Which addresses a B2BUA worker takes INVITEs from: the SIP edge's, nobody else's.

Kamailio (docs/edge.md) does what a public SIP port needs: sanity and flood checks,
no open relay, admission by free legs. A worker reachable from anywhere else would
bypass all of it, so it answers 403 to an INVITE whose packet came from outside its
trusted networks, before any routing or domain command. The verdict is taken when
the INVITE arrives, also when a burst makes the worker hold it unanswered
(below): a held untrusted INVITE gets its 403 later,
never the 503 + Retry-After ("come back") that held trusted ones get. Only when
every call slot is held does pjsua answer a further INVITE, from anyone, with its
own stateless 486 before the worker sees it (no transport, nothing routed).

The address judged is the one the packet came from (pjsip's ``srcAddress``), never
Via, Contact or From, which the sender writes. Names are not accepted, only addresses
and networks: the check runs on the pjsua2 thread, which must never wait for DNS.

## Who: the device the edge vouches for

With device authentication on (``WorkerConfig.device_auth``, on wherever Kamailio
runs its registrar), a call to a number no tenant provisioned is taken only from a
device that answered the edge's digest challenge: Kamailio removes any
``X-Dialtone-Tenant`` header a request arrives with, and adds one naming the
device's tenant once its credentials check (infra/kamailio/registrar.cfg, route
FROM_DEVICE). A worker trusts that header because it takes INVITEs from the edge
alone (above); without device authentication it never reads it.

## What runs out in a worker under an INVITE burst, and the rule that keeps it from running out

Measured (issue 16): ~80 INVITEs/s at one worker, refused ones included, made
pjsua abort in ``pj_ioqueue_register_sock2`` (``Assertion
'!pj_list_empty(&ioqueue->free_list)'``). The resource is the media
ioqueue's keys, not call slots:

* pjsua creates the RTP/RTCP transport of an incoming call (two sockets, two
  ioqueue keys) *before* the application sees the INVITE, so even an INVITE
  we refuse at once costs two keys;
* a key given back (call ended, transport closed) stays on the ioqueue's
  closing list for ``PJ_IOQUEUE_KEY_FREE_DELAY`` (500 ms) before it can be
  reused; the wheel's select ioqueue has ``PJ_IOQUEUE_MAX_HANDLES`` = 64 keys;
* with the free list empty, pjlib asserts (the wheel keeps assertions on)
  instead of failing the registration: the process aborts.

So keys in use = 2 x (live pjsua calls) + 2 x (calls closed in the last
500 ms). Live calls are bounded by pjsua's call slots (4). Closed calls are
not bounded by anything unless we bound them: this module counts them.

The rule (``KeyBudget.has_room``): the worker acts on an INVITE (routes it,
or refuses it, which closes its transport) only while the calls closed within
the window, plus every live call closing too, still fit beside a new call in
every slot; otherwise it leaves the
INVITE unanswered (pjsua has sent 100 Trying), holding its slot, and answers
it as soon as the window has room with what it would have got unheld: 403 if
its source is not trusted (judged on arrival: reading the packet's source is
not acting on the call; see Trust above), else 503 + Retry-After. Once every slot is held,
pjsua answers further INVITEs itself with a stateless 486 and creates no
transport at all, so a burst of any size can never take the last key.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING, NamedTuple

from domain.addressing import KEY_PATTERN

if TYPE_CHECKING:  # the legs import pjsua2; admission's own tests do not need it
    from adapters.sip.pjsua.legs import Leg

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


# -- what the INVITE says ---------------------------------------------------------

# The user part of a SIP URI; pjsip has already validated the message, this only
# picks the number out of the request line / From URI it accepted.
_REQUEST_USER = re.compile(r"^\S+\s+sips?:([^@;>\s]+)@", re.IGNORECASE)
_URI_USER = re.compile(r"sips?:([^@;>\s]+)@", re.IGNORECASE)
DEVICE_TENANT_HEADER = "X-Dialtone-Tenant"
_TENANT_HEADER = DEVICE_TENANT_HEADER.lower()


def dialled_number(request: str) -> str:
    match = _REQUEST_USER.match(request)
    return match.group(1) if match else ""


def uri_user(uri: str) -> str:
    match = _URI_USER.search(uri)
    return match.group(1) if match else uri


def device_tenant(request: str) -> str | None:
    """The tenant the edge names in ``X-Dialtone-Tenant`` (the device's, once it
    authenticated); None without exactly one such header, or with a value that is
    no tenant id.

    Kamailio removes every such header a request arrives with, so the worker must
    see exactly the header lines Kamailio saw. Kamailio ends a line at CRLF (LF)
    only, while pjsip also takes a lone CR as a line end: ``Subject: hi\\rX-Dialtone-
    Tenant: acme`` is one Subject to Kamailio and two headers to a lenient reader
    (the standard library's RFC 5322 parser, used here before, was one). So a head
    with a lone CR or LF, or a folded line (one starting with white space), is read
    as no claim at all; otherwise lines are split at CRLF and the name compared
    without case, white space before the colon allowed (SIP allows it)."""
    head, _, _ = request.partition("\r\n\r\n")
    lines = head.split("\r\n")[1:]  # the request line first
    if any("\r" in line or "\n" in line or line[:1] in (" ", "\t") for line in lines):
        return None
    values = [value for name, _, value in (line.partition(":") for line in lines)
              if name.rstrip().lower() == _TENANT_HEADER]
    if len(values) != 1:
        return None
    tenant = values[0].strip()
    return tenant if KEY_PATTERN.fullmatch(tenant) else None


# -- the key budget ------------------------------------------------------------------

IOQUEUE_KEYS = 64  # PJ_IOQUEUE_MAX_HANDLES of the wheel's (select) media ioqueue
KEYS_PER_CALL = 2  # one RTP and one RTCP socket per pjsua call's audio transport
KEY_FREE_DELAY = 0.5  # PJ_IOQUEUE_KEY_FREE_DELAY: a closed key is reusable after this
# Counted over a little more than pjlib's delay: our clock reads the close at
# the DISCONNECTED callback, in the same poll as the transport's close.
CLOSE_WINDOW = KEY_FREE_DELAY + 0.02
HELD_CHECK = 0.05  # seconds between looks at the key budget while INVITEs are held
# Never planned for: legs the call centre places later (agents, supervisors)
# and anything else on the ioqueue.
RESERVE_KEYS = 4


class KeyBudget:
    """Counts pjsua calls closed recently; says whether one more may close now."""

    def __init__(self, slots: int, *, keys: int = IOQUEUE_KEYS, reserve: int = RESERVE_KEYS,
                 window: float = CLOSE_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.slots = slots
        self.window = window
        self._clock = clock
        self._closed: deque[float] = deque()
        # Calls whose transports fit on the ioqueue at once (live or closing),
        # less a live call in every slot (pjsua fills free slots by itself).
        self.limit = (keys - reserve) // KEYS_PER_CALL - slots
        if self.limit < 2 * slots:
            raise ValueError(f"{keys} ioqueue keys cannot serve {slots} call slots")

    def closed(self) -> None:
        """A pjsua call ended: its transport's keys are on the closing list."""
        self._closed.append(self._clock())

    def closing(self) -> int:
        """Calls closed within the window (their keys may not be reusable yet)."""
        horizon = self._clock() - self.window
        while self._closed and self._closed[0] <= horizon:
            self._closed.popleft()
        return len(self._closed)

    def has_room(self, live: int) -> bool:
        """May the worker act on an INVITE now, with ``live`` pjsua calls (its own
        included)? Acting may close it at once, and every live call may close
        soon after, unasked (BYE, CANCEL, 404), as may the callee leg it places:
        all of them must still fit while every slot fills again."""
        return self.closing() + live + 1 <= self.limit

    def wait_hint(self, live: int) -> float:
        """Seconds until enough closed calls leave the window (0: room now)."""
        excess = self.closing() + live + 1 - self.limit
        if excess <= 0:
            return 0.0
        return max(0.0, self._closed[excess - 1] + self.window - self._clock())

    def recheck_in(self, live: int) -> float:
        """Seconds until held INVITEs are looked at again: when the window has room,
        and never sooner than HELD_CHECK (a close not yet counted may free it)."""
        return max(HELD_CHECK, self.wait_hint(live))


class HeldInvite(NamedTuple):
    """An INVITE left unanswered in a burst (above), with the trust verdict on its
    source (``is_trusted``), taken when it arrived: reading the source is not
    acting on the call, and the verdict decides the answer it gets later."""

    leg: Leg
    source: str  # the packet's source, as pjsip prints it ("host:port")
    trusted: bool
