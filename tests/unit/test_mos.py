"""The E-model MOS estimate against values computed from ITU-T G.107 / G.113."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.media.quality import (
    StreamFigures,
    delay_impairment,
    loss_impairment,
    mos,
    mos_from_r,
    r_factor,
)


@pytest.mark.parametrize(
    ("r", "expected"),
    [(93.2, 4.409), (80.0, 4.024), (70.0, 3.596), (50.0, 2.575), (0.0, 1.0), (-5.0, 1.0),
     (100.0, 4.5), (120.0, 4.5)],
)
def test_mos_from_r_follows_g107_annex_b(r: float, expected: float) -> None:
    assert mos_from_r(r) == pytest.approx(expected, abs=1e-3)


def test_the_g107_default_connection_rates_about_4_4() -> None:
    assert mos_from_r(r_factor(0.0, 0.0)) == pytest.approx(4.409, abs=1e-3)


@pytest.mark.parametrize(
    ("one_way_ms", "expected"),
    [(0.0, 0.0), (100.0, 2.4), (177.3, 4.2552), (300.0, 20.697)],
)
def test_delay_impairment_has_its_knee_at_177_ms(one_way_ms: float, expected: float) -> None:
    assert delay_impairment(one_way_ms) == pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize(
    ("loss_pct", "expected"), [(0.0, 0.0), (1.0, 3.640), (5.0, 15.781), (20.0, 42.129)]
)
def test_g711_loss_impairment_uses_bpl_25_1(loss_pct: float, expected: float) -> None:
    assert loss_impairment(loss_pct) == pytest.approx(expected, abs=1e-3)


def test_a_clean_lan_call_scores_above_4_3() -> None:
    assert mos(StreamFigures(jitter_ms=1.0, loss_pct=0.0, rtt_ms=1.0)) > 4.3


def test_a_lossy_late_call_scores_badly() -> None:
    assert mos(StreamFigures(jitter_ms=40.0, loss_pct=10.0, rtt_ms=400.0)) < 2.8


@settings(deadline=None)
@given(
    jitter=st.floats(0, 500), loss=st.floats(0, 100), rtt=st.floats(0, 5000) | st.none(),
    worse_loss=st.floats(0, 100),
)
def test_mos_stays_in_range_and_more_loss_never_helps(
    jitter: float, loss: float, rtt: float | None, worse_loss: float
) -> None:
    base = StreamFigures(jitter, loss, rtt)
    worse = StreamFigures(jitter, max(loss, worse_loss), rtt)

    assert 1.0 <= mos(base) <= 4.5
    assert mos(worse) <= mos(base) + 1e-9
