"""One key press, one key: a phone sending each DTMF key both as an RFC 4733 event
and as a SIP INFO has it taken once, and a phone that changes method keeps its
keys (application.b2bua.legs.KeyMethod, which adapters/sip/pjsua/legs.py asks for
every onDtmfDigit)."""

from __future__ import annotations

import pjsua2 as pj

from application.b2bua.legs import KeyMethod

RFC = pj.PJSUA_DTMF_METHOD_RFC2833
INFO = pj.PJSUA_DTMF_METHOD_SIP_INFO


def keys_taken(heard: list[tuple[str, int]] | list[tuple[str, int, float]]) -> str:
    """The keys taken of ``heard``: (digit, method[, seconds since the first])."""
    now = [0.0]
    method = KeyMethod(window_s=1.5, clock=lambda: now[0])
    taken = ""
    for digit, how, *at in heard:
        now[0] = at[0] if at else now[0]
        taken += digit if method.take(digit, how) else ""
    return taken


def test_a_key_sent_by_rfc4733_and_sip_info_is_taken_once() -> None:
    assert keys_taken([("1", RFC), ("1", INFO)]) == "1"
    assert keys_taken([("1", INFO), ("1", RFC)]) == "1"  # whichever comes first
    assert keys_taken([("1", RFC, 0.0), ("1", INFO, 1.4)]) == "1"  # a late copy


def test_keys_sent_both_ways_keep_their_number_and_order() -> None:
    # "1" pressed twice, then "2": the copies interleave as the network delivers them.
    heard = [("1", RFC), ("1", INFO), ("1", INFO), ("1", RFC), ("2", RFC), ("2", INFO)]
    assert keys_taken(heard) == "112"


def test_a_phone_sending_one_method_has_every_key_taken() -> None:
    assert keys_taken([("1", INFO), ("1", INFO), ("#", INFO)]) == "11#"
    assert keys_taken([("5", RFC), ("0", RFC)]) == "50"


def test_a_phone_changing_method_within_the_call_keeps_its_keys() -> None:
    # The first key by SIP INFO, then a re-INVITE with telephone-event: RFC 4733 only.
    assert keys_taken([("1", INFO, 0.0), ("2", RFC, 3.0), ("3", RFC, 4.0)]) == "123"
    assert keys_taken([("1", INFO, 0.0), ("2", RFC, 0.5)]) == "12"  # another digit


def test_the_same_digit_by_the_other_method_after_the_window_is_a_new_press() -> None:
    assert keys_taken([("1", INFO, 0.0), ("1", RFC, 1.6)]) == "11"
    assert keys_taken([("1", RFC, 0.0), ("1", RFC, 2.0), ("1", INFO, 2.5)]) == "11"
