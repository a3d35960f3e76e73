"""The stream's form of the live view (api/live/stream.py `stream_form`): a change
carries the entries that changed, not every list whole, and nothing that moves
with the clock alone (the page derives ages from `as_of`)."""

from __future__ import annotations

from typing import Any

from api.live.views import merge_patch, stream_form


def figures(offered: int, until: str) -> dict[str, Any]:
    return {"since": "2026-01-01T00:00:00Z", "until": until, "offered": offered}


def view(as_of: str, bob: str, waiting: int) -> dict[str, Any]:
    """A `GET /v1/live` body of two agents, one queue and one call at `as_of`."""
    return {
        "as_of": as_of, "position": {"store:x": 7},
        "queues": [{"queue_id": "q1", "key": "sales", "now": {"calls_waiting": waiting},
                    "today": figures(3, as_of), "window": figures(1, as_of)}],
        "agents": [{"agent_id": f"a{n}", "key": key, "state": state,
                    "state_since": "2026-01-01T08:00:00Z", "time_in_state_s": float(len(as_of)),
                    "occupancy_today": 0.5 + len(as_of) * 1e-6}
                   for n, (key, state) in enumerate((("alice", "on_call"), ("bob", bob)))],
        "calls": [{"call_id": "c1", "started_at": "2026-01-01T08:00:00Z",
                   "duration_s": float(len(as_of))}],
        "summary": {"today": figures(3, as_of), "window": figures(1, as_of)},
    }


def test_collections_are_keyed_by_id_without_clock_values() -> None:
    form = stream_form(view("2026-01-01T09:00:00Z", "available", 0))
    assert list(form["agents"]) == ["a0", "a1"]
    assert form["agents"]["a1"] == {"agent_id": "a1", "key": "bob", "state": "available",
                                    "state_since": "2026-01-01T08:00:00Z",
                                    "occupancy_today": 0.5}
    assert form["calls"] == {"c1": {"call_id": "c1", "started_at": "2026-01-01T08:00:00Z"}}
    assert form["queues"]["q1"]["today"] == {"offered": 3}
    assert form["summary"]["window"] == {"offered": 1}


def test_a_change_carries_only_what_changed() -> None:
    before = stream_form(view("2026-01-01T09:00:00Z", "available", 0))
    after = stream_form(view("2026-01-01T09:00:07.5Z", "paused", 1))
    assert merge_patch(before, after) == {
        "as_of": "2026-01-01T09:00:07.5Z",
        "queues": {"q1": {"now": {"calls_waiting": 1}}},
        "agents": {"a1": {"state": "paused"}},
    }
    assert merge_patch(before, stream_form(view("2026-01-01T09:00:09Z", "available", 0))) == {
        "as_of": "2026-01-01T09:00:09Z"}  # the clock alone moved


def test_other_views_pass_unchanged() -> None:
    assert stream_form({"positions": {"store:x": 3}}) == {"positions": {"store:x": 3}}
