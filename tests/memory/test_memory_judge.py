"""The memory stage's readings and verdicts (tests/fixtures/memory.py), on this test's
own processes and on series of known readings: the stage must be able to fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dialtone.budgets import Budget, BudgetError, load_budgets
from tests.fixtures.memory import (
    EDGE_SAMPLES,
    MIB,
    Memory,
    Sampler,
    Series,
    judge,
    process_tree,
    read_memory,
)

BUDGET = Budget("api", rss_mib=100, cpu_request_m=100, limit_headroom_percent=25,
                growth_percent=10)


def series(*rss_mib: float, service: str = "api") -> Series:
    """A process read once a second (t = 0, 1, ...) with these RSS values."""
    one = Series(service, pid=4242)
    one.samples = [(float(t), Memory(int(v * MIB), int(v * MIB) // 2))
                   for t, v in enumerate(rss_mib)]
    return one


def test_a_steady_process_within_its_budget_passes() -> None:
    [verdict] = judge([series(*[80] * 12)], {"api": BUDGET}, (0, 11))
    assert verdict.failures() == []
    assert verdict.growth_percent == 0


def test_a_process_over_its_budget_fails_even_if_only_in_the_warm_up() -> None:
    # Peak 120 MiB during the warm-up (t=0), the window after it is flat at 80.
    [verdict] = judge([series(120, *[80] * 12)], {"api": BUDGET}, (1, 12))
    assert verdict.peak_rss == 120 * MIB
    assert verdict.failures() == ["RSS 120.0 MiB over the budget of 100 MiB"]


def test_a_process_growing_more_than_the_limit_after_warm_up_fails() -> None:
    # 60 MiB for the window's first five readings, 70 for its last five: +16.7 %.
    [verdict] = judge([series(*[60] * 5, *[70] * 5)], {"api": BUDGET}, (0, 9))
    [failure] = verdict.failures()
    assert failure.startswith("grew 16.7 % after warm-up (60.0 -> 70.0 MiB)")


def test_growth_is_judged_on_medians_not_on_one_burst() -> None:
    # One 90 MiB reading among the last five does not move the end's median.
    [verdict] = judge([series(*[60] * 5, 60, 60, 90, 60, 60)], {"api": BUDGET}, (0, 9))
    assert verdict.growth_percent == 0
    assert verdict.failures() == []


def test_a_process_sampled_too_few_times_in_the_window_is_not_judged() -> None:
    # The test then finds its service without a verdict and fails.
    assert judge([series(*[80] * (2 * EDGE_SAMPLES - 1))], {"api": BUDGET}, (0, 100)) == []


def test_the_budgets_file_gives_every_service_a_growth_limit(tmp_path: Path) -> None:
    assert {b.growth_percent for b in load_budgets().values()} == {10}
    own = tmp_path / "budgets.toml"
    own.write_text("[defaults]\nlimit_headroom_percent = 25\ngrowth_percent = 10\n"
                   "[services.b2bua]\nrss_mib = 192\ncpu_request_m = 100\ngrowth_percent = 20\n")
    assert load_budgets(own)["b2bua"].growth_percent == 20
    own.write_text("[defaults]\nlimit_headroom_percent = 25\n"
                   "[services.b2bua]\nrss_mib = 192\ncpu_request_m = 100\n")
    with pytest.raises(BudgetError, match="growth_percent"):
        load_budgets(own)


def test_readings_come_from_smaps_rollup_of_a_process_and_its_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in process_tree(os.getpid())
        mine = read_memory(os.getpid())
        assert mine is not None
        assert 0 < mine.pss <= mine.rss
        with Sampler({"tests": os.getpid()}, interval=0.05) as sampler:
            sampler.sample()
        assert {os.getpid(), child.pid} <= set(sampler.series)
    finally:
        child.kill()
        child.wait(5)
    assert read_memory(child.pid) is None  # reaped: gone
