"""ITU-T G.107 E-model: a MOS estimate from network statistics (pure functions).

The transmission rating R starts from the G.107 default R0 - Is = 93.2 and loses
* Id, the delay impairment, in the widely used simplification of G.107's Idd
  (Cole & Rosenbluth 2001): Id = 0.024 Ta + 0.11 (Ta - 177.3) H(Ta - 177.3),
  with Ta the one-way mouth-to-ear delay in ms;
* Ie_eff, the equipment impairment with random packet loss (G.107 7.2):
  Ie_eff = Ie + (95 - Ie) Ppl / (Ppl / BurstR + Bpl), with G.711 + packet loss
  concealment values from G.113 Appendix I: Ie = 0, Bpl = 25.1; BurstR = 1.

MOS from R (G.107 Annex B): 1 below R = 0, 4.5 above R = 100, otherwise
1 + 0.035 R + R (R - 60) (100 - R) 7e-6.

Ta is estimated from what RTCP gives a B2BUA: half the round-trip time (the
network path), plus the jitter buffer (taken as twice the mean jitter, its usual
adaptive target), plus one packetisation interval.
"""

from __future__ import annotations

from dataclasses import dataclass

R_DEFAULT = 93.2  # G.107 default R0 - Is with every other parameter at its default
G711_IE = 0.0
G711_BPL = 25.1  # G.113 Appendix I, G.711 with packet loss concealment
DELAY_KNEE_MS = 177.3


@dataclass(frozen=True)
class StreamFigures:
    """Receive-side statistics of one RTP stream."""

    jitter_ms: float
    loss_pct: float
    rtt_ms: float | None  # None when no RTCP round trip was measured
    packet_ms: float = 20.0


def delay_impairment(one_way_ms: float) -> float:
    """Id for a one-way delay ``one_way_ms``."""
    excess = max(0.0, one_way_ms - DELAY_KNEE_MS)
    return 0.024 * one_way_ms + 0.11 * excess


def loss_impairment(loss_pct: float, ie: float = G711_IE, bpl: float = G711_BPL,
                    burst_r: float = 1.0) -> float:
    """Ie_eff for random packet loss ``loss_pct`` (percent)."""
    return ie + (95.0 - ie) * loss_pct / (loss_pct / burst_r + bpl)


def r_factor(one_way_ms: float, loss_pct: float) -> float:
    return R_DEFAULT - delay_impairment(one_way_ms) - loss_impairment(loss_pct)


def mos_from_r(r: float) -> float:
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    # The cubic dips just under 1 for 0 < R < 6.5; MOS has no meaning below 1.
    return max(1.0, 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6)


def one_way_delay(figures: StreamFigures) -> float:
    network = (figures.rtt_ms or 0.0) / 2.0
    return network + 2.0 * figures.jitter_ms + figures.packet_ms


def mos(figures: StreamFigures) -> float:
    """The E-model MOS estimate for one stream, clamped to [1, 4.5]."""
    return mos_from_r(r_factor(one_way_delay(figures), figures.loss_pct))
