"""A deactivated number stops routing (docs/api.md, `DELETE /v1/numbers/{did}`): a
call to it is refused with 404 and ends failed/no_route. Before, the worker took it
for a number nobody provisioned and routed it by the dialplan, so a catch-all rule
still connected it."""

from __future__ import annotations

import pytest

from application.callcentre import CallCentreService
from domain.call import Call, Disposition, HangupSide
from domain.numbers import Number
from tests.fixtures.callcentre import centre, now, provision_queue
from tests.fixtures.sip import CallStore, Sipp, StartWorker, free_udp_port, kinds, route_to

pytestmark = pytest.mark.sip
__all__ = ["centre"]  # the fixture, used by name

DID = "1500"  # a number the worker's catch-all route (numbers starting 1) would take


def test_a_call_to_a_deactivated_number_is_refused_not_routed_by_the_dialplan(
        b2bua: StartWorker, sipp: Sipp, call_store: CallStore,
        centre: CallCentreService) -> None:
    provision_queue(centre, "sales", ["alice"], did=DID)
    centre.configure_number(Number.id_for(DID), lambda number: number.deactivate(now()))
    worker = b2bua(route_to(free_udp_port()))

    result = sipp.uac(sipp.expect_status(404), worker.port, service=DID)

    assert result.ok, result.errors
    [history] = list(call_store.wait_ended(1).values())
    assert kinds(history) == ["Initiated", "Ended"]
    ended = history[-1]
    assert isinstance(ended, Call.Ended)
    assert (ended.disposition, ended.hangup_cause, ended.hangup_side, ended.sip_status) == (
        Disposition.FAILED, "no_route", HangupSide.SYSTEM, 404)
