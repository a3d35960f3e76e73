"""What a B2BUA worker is built from: its settings, its router, and the call-centre
side it is wired to (absent: a plain B2BUA on its dialplan)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from adapters.media.recorder import RecordingStore
from adapters.sip.pjsua.admission import LOOPBACK, IPNetwork
from adapters.sip.pjsua.endpoint import EndpointConfig
from adapters.sip.routing.directory import Directory
from adapters.sip.store.centre_link import CentreLink


class Router(Protocol):
    def resolve(self, number: str) -> str | None: ...


@dataclass(frozen=True)
class WorkerConfig:
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    # 2 legs per call out of PJSUA_MAX_CALLS (4) slots. With 1 call, a slot is
    # always free to answer 503 to the next INVITE and one to place a transfer
    # leg; with 2, an INVITE beyond capacity gets pjsua's stateless 486 instead.
    max_bridged_calls: int = 1
    no_answer_timeout: float = 30.0
    retry_after: int = 5
    shutdown_grace: float = 3.0
    # Where INVITEs may come from (the edge's addresses); others get 403 (trust.py).
    trusted_sources: tuple[IPNetwork, ...] = LOOPBACK
    # The edge authenticates devices' INVITEs and names their tenant (admission.py,
    # "Who"): a call to none of our numbers is taken only with that, others get 403.
    device_auth: bool = False


@dataclass(frozen=True)
class CentreWiring:
    """The call-centre side of a worker (absent: a plain B2BUA on its dialplan).
    ``link`` must post its results with ``B2BUAWorker.post``."""

    link: CentreLink
    directory: Directory
    media_dir: Path
    default_music: Path
    recordings: RecordingStore | None = None
    announce_every_s: float = 20.0
