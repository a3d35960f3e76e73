"""One key press, one key: a phone sending each DTMF key both as an RFC 4733 event
and as a SIP INFO has it taken once (application.b2bua.legs.KeyMethod, which
adapters/sip/pjsua/legs.py asks for every onDtmfDigit)."""

from __future__ import annotations

import pjsua2 as pj

from application.b2bua.legs import KeyMethod

RFC = pj.PJSUA_DTMF_METHOD_RFC2833
INFO = pj.PJSUA_DTMF_METHOD_SIP_INFO


def keys_taken(heard: list[tuple[str, int]]) -> str:
    method = KeyMethod()
    return "".join(digit for digit, how in heard if method.take(how))


def test_a_key_sent_by_rfc4733_and_sip_info_is_taken_once() -> None:
    assert keys_taken([("1", RFC), ("1", INFO)]) == "1"
    assert keys_taken([("1", INFO), ("1", RFC)]) == "1"  # whichever comes first


def test_keys_sent_both_ways_keep_their_number_and_order() -> None:
    # "1" pressed twice, then "2": the copies interleave as the network delivers them.
    heard = [("1", RFC), ("1", INFO), ("1", INFO), ("1", RFC), ("2", RFC), ("2", INFO)]
    assert keys_taken(heard) == "112"


def test_a_phone_sending_one_method_has_every_key_taken() -> None:
    assert keys_taken([("1", INFO), ("1", INFO), ("#", INFO)]) == "11#"
    assert keys_taken([("5", RFC), ("0", RFC)]) == "50"
