"""Per-call RTP/RTCP statistics from pjsua2, turned into one media-quality figure.

Each leg's audio stream is sampled during the call and once more just before
the stream is destroyed; a call's quality is its worst leg (the lowest MOS),
because the parties hear the worst hop. A leg that received no RTP at all has
no figures (there is nothing to rate).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from uuid import UUID

import pjsua2 as pj

from adapters.media.quality import StreamFigures, mos
from application import metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rated:
    figures: StreamFigures
    mos: float
    packets: int


def read_figures(stat: pj.StreamStat) -> Rated | None:
    """The receive side of one stream's statistics, if it received any RTP."""
    # Read every nested SWIG struct while ``stat`` is referenced: they point into it.
    rtcp = stat.rtcp
    rx = rtcp.rxStat
    received, lost = int(rx.pkt), int(rx.loss)
    if received <= 0:
        return None
    jitter_ms = float(rx.jitterUsec.mean) / 1000.0
    rtt = rtcp.rttUsec
    rtt_ms = float(rtt.mean) / 1000.0 if int(rtt.n) > 0 else None
    figures = StreamFigures(jitter_ms=jitter_ms, loss_pct=100.0 * lost / (received + lost),
                            rtt_ms=rtt_ms)
    return Rated(figures, round(mos(figures), 2), received)


class StreamMonitor:
    """Latest figures per (call, leg); implements the session's MediaMonitor."""

    def __init__(self) -> None:
        self._latest: dict[UUID, dict[Hashable, Rated]] = {}

    def sample(self, call_id: UUID, leg: Hashable, stat: pj.StreamStat | None) -> None:
        rated = read_figures(stat) if stat is not None else None
        if rated is not None:
            self._latest.setdefault(call_id, {})[leg] = rated

    def worst(self, call_id: UUID) -> Rated | None:
        legs = self._latest.get(call_id, {})
        return min(legs.values(), key=lambda rated: rated.mos, default=None)

    def forget(self, call_id: UUID) -> None:
        """The call ended: its streams' last figures go to the RTP histograms."""
        for rated in self._latest.pop(call_id, {}).values():
            f = rated.figures
            metrics.rtp_stream(f.jitter_ms, f.loss_pct, rated.mos)
