"""Who hears whom in a call: the conference routes for each supervision mode."""

from __future__ import annotations

import pytest

from adapters.sip.pjsua.mixer import conversation
from domain.call import SupervisionMode

CALLER, AGENT, SUPERVISOR, RECORDER = "caller", "agent", "supervisor", "recorder"
BOTH_WAYS = {(CALLER, AGENT), (AGENT, CALLER)}


def hears(routes: set[tuple[str, str]], listener: str) -> set[str]:
    return {source for source, sink in routes if sink == listener}


def test_a_plain_conversation_connects_the_two_parties_both_ways() -> None:
    assert conversation(CALLER, AGENT) == BOTH_WAYS


@pytest.mark.parametrize(("mode", "agent_hears_supervisor", "caller_hears_supervisor"), [
    (SupervisionMode.MONITOR, False, False),
    (SupervisionMode.WHISPER, True, False),
    (SupervisionMode.BARGE, True, True),
])
def test_a_supervisor_hears_both_and_is_heard_as_the_mode_says(
    mode: SupervisionMode, agent_hears_supervisor: bool, caller_hears_supervisor: bool,
) -> None:
    routes = conversation(CALLER, AGENT, supervisors={SUPERVISOR: mode})
    assert hears(routes, SUPERVISOR) == {CALLER, AGENT}
    assert (SUPERVISOR in hears(routes, AGENT)) is agent_hears_supervisor
    assert (SUPERVISOR in hears(routes, CALLER)) is caller_hears_supervisor
    assert routes >= BOTH_WAYS


def test_parties_not_talking_hear_nothing_of_each_other_but_the_supervisor_still_listens() -> None:
    routes = conversation(CALLER, AGENT, supervisors={SUPERVISOR: SupervisionMode.MONITOR},
                          talking=False)
    assert not BOTH_WAYS & routes
    assert hears(routes, SUPERVISOR) == {CALLER, AGENT}


def test_the_recording_hears_the_parties_and_a_barging_supervisor_but_not_a_whisper() -> None:
    whisper = conversation(CALLER, AGENT, supervisors={SUPERVISOR: SupervisionMode.WHISPER},
                           recorder=RECORDER)
    barge = conversation(CALLER, AGENT, supervisors={SUPERVISOR: SupervisionMode.BARGE},
                         recorder=RECORDER)
    assert hears(whisper, RECORDER) == {CALLER, AGENT}
    assert hears(barge, RECORDER) == {CALLER, AGENT, SUPERVISOR}


def test_a_missing_party_is_left_out_rather_than_connected() -> None:
    routes = conversation(CALLER, None, supervisors={SUPERVISOR: SupervisionMode.BARGE})
    assert routes == {(CALLER, SUPERVISOR), (SUPERVISOR, CALLER)}
