"""The B2BUA's pure pieces: its static dialplan and its SIP outcome mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.sip.pjsua.admission import dialled_number, uri_user
from adapters.sip.routing import dialplan
from application.b2bua.outcomes import callee_failure
from domain.call import Disposition


def test_first_matching_rule_wins_in_the_order_written() -> None:
    plan = dialplan.load(["exact:1000=sip:reception@10.0.0.1",
                          "prefix:1=sip:{number}@10.0.0.2",
                          "regex:9(\\d+)=sip:{1}@trunk"])

    assert plan.resolve("1000") == "sip:reception@10.0.0.1"
    assert plan.resolve("1234") == "sip:1234@10.0.0.2"
    assert plan.resolve("9555") == "sip:555@trunk"


def test_unknown_or_undiallable_numbers_have_no_route() -> None:
    plan = dialplan.load(["prefix:1=sip:{number}@10.0.0.2"])

    assert plan.resolve("2000") is None
    assert plan.resolve("1abc") is None
    assert plan.resolve("") is None


def test_file_rules_follow_command_line_rules(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text('[[route]]\nkind = "prefix"\npattern = ""\ntarget = "sip:{number}@other"\n')

    plan = dialplan.load(["exact:1=sip:one@here"], path)

    assert plan.resolve("1") == "sip:one@here"
    assert plan.resolve("77") == "sip:77@other"


@pytest.mark.parametrize("spec", ["1=sip:x@y", "prefix:1", "wild:1=sip:x@y", "prefix:1=tel:1"])
def test_malformed_rules_are_refused(spec: str) -> None:
    with pytest.raises(dialplan.DialplanError):
        dialplan.load([spec])


@pytest.mark.parametrize(
    ("status", "disposition", "relayed"),
    [
        (486, Disposition.BUSY, 486),
        (600, Disposition.BUSY, 600),
        (603, Disposition.BUSY, 603),
        (408, Disposition.NO_ANSWER, 480),
        (480, Disposition.NO_ANSWER, 480),
        (404, Disposition.FAILED, 404),
        (503, Disposition.FAILED, 502),
        (500, Disposition.FAILED, 500),
        (488, Disposition.FAILED, 488),
        (0, Disposition.FAILED, 502),
    ],
)
def test_callee_failures_map_to_a_disposition_and_a_relayed_status(
    status: int, disposition: Disposition, relayed: int
) -> None:
    outcome = callee_failure(status)

    assert (outcome.disposition, outcome.relay_status) == (disposition, relayed)


def test_the_dialled_number_comes_from_the_request_uri() -> None:
    assert dialled_number("INVITE sip:1000@10.0.0.1:5060;user=phone SIP/2.0\r\n") == "1000"
    assert dialled_number("INVITE sip:10.0.0.1 SIP/2.0\r\n") == ""
    assert uri_user('"Bob" <sip:bob@example.com>') == "bob"
