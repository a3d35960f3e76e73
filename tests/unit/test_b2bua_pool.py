"""The B2BUA pool's rules that need no process: the restart back-off (doubling,
capped, at most N restarts a window), the dispatcher list it writes, and writing
it only when it changed (the real pool: tests/integration/test_b2bua_pool.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dialtone.commands.b2bua import command
from dialtone.commands.b2bua_pool import (
    child_metrics_port,
    dispatcher_lines,
    write_dispatcher_list,
)
from dialtone.services.forkpool import Child, ForkPool, PoolPolicy
from dialtone.settings import Settings


def pool(policy: PoolPolicy) -> ForkPool:
    return ForkPool(1, lambda _index: 0, policy=policy)


def test_back_off_doubles_with_each_recent_restart_up_to_its_cap() -> None:
    forks = pool(PoolPolicy(backoff_s=1.0, max_backoff_s=5.0, max_per_window=10, window_s=60))
    child = Child(0)
    delays = []
    for now in (100.0, 101.0, 103.0, 107.0, 112.0):
        delays.append(forks._next_start(child, now) - now)
        child.restarts.append(now)
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_restarts_past_the_window_limit_wait_for_the_window_to_move_on() -> None:
    forks = pool(PoolPolicy(backoff_s=1.0, max_per_window=3, window_s=60))
    child = Child(0)
    child.restarts.extend([100.0, 110.0, 120.0])
    assert forks._next_start(child, 130.0) == 160.0  # the first restart leaves the window
    # Once the old restarts have left the window, the back-off starts over.
    assert forks._next_start(child, 200.0) == 201.0
    assert not child.restarts


def test_a_pool_needs_a_child() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ForkPool(0, lambda _index: 0)


def test_the_dispatcher_list_has_a_line_per_worker_with_its_calls_as_maxload() -> None:
    assert dispatcher_lines("10.0.0.5", 5070, 2, 2).splitlines() == [
        "1 sip:10.0.0.5:5070 0 0 duid=10.0.0.5:5070;maxload=2",
        "1 sip:10.0.0.5:5071 0 0 duid=10.0.0.5:5071;maxload=2"]


def test_the_list_is_written_only_when_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "kamailio" / "dispatcher.list"
    assert write_dispatcher_list(path, "a\n")
    assert not write_dispatcher_list(path, "a\n")
    assert write_dispatcher_list(path, "b\n")
    assert path.read_text() == "b\n"
    assert [p.name for p in path.parent.iterdir()] == ["dispatcher.list"]  # no scratch left


def test_children_serve_metrics_beside_the_pool_or_not_at_all() -> None:
    assert [child_metrics_port(9464, i) for i in range(3)] == [9465, 9466, 9467]
    assert child_metrics_port(0, 1) == 0


def test_a_bad_route_stops_the_pool_before_it_forks(tmp_path: Path) -> None:
    """Refused in the parent: each forked child would fail at start and be
    restarted for ever."""
    listing = tmp_path / "dispatcher.list"
    settings = Settings(database_url="postgresql://dialtone@127.0.0.1:1/dialtone")

    result = CliRunner().invoke(command, ["--workers", "2", "--route", "nonsense",
                                          "--dispatcher-list", str(listing)], obj=settings)

    assert result.exit_code == 2, result.output
    assert "nonsense" in result.output
    assert not listing.exists()  # nothing started, nothing written
