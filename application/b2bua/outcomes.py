"""How a failed outbound leg maps onto the call's disposition and the caller's response.

Pure functions, so the mapping is unit-tested without a SIP stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.call import Disposition


@dataclass(frozen=True)
class Outcome:
    disposition: Disposition
    hangup_cause: str
    relay_status: int  # final response sent to the caller


# Exact codes first; then classes of codes.
_BY_STATUS = {
    486: Outcome(Disposition.BUSY, "user_busy", 486),
    600: Outcome(Disposition.BUSY, "user_busy", 600),
    603: Outcome(Disposition.BUSY, "call_rejected", 603),
    408: Outcome(Disposition.NO_ANSWER, "no_answer", 480),
    480: Outcome(Disposition.NO_ANSWER, "no_answer", 480),
    404: Outcome(Disposition.FAILED, "unallocated_number", 404),
    # RFC 3261 16.7: a 503 from downstream must not make the caller's proxy
    # believe this server is overloaded, so it travels back as 502.
    503: Outcome(Disposition.FAILED, "callee_server_error", 502),
}


def callee_failure(status: int) -> Outcome:
    """The outcome when the callee leg ended with final ``status`` before answering."""
    known = _BY_STATUS.get(status)
    if known is not None:
        return known
    if 500 <= status < 700:
        return Outcome(Disposition.FAILED, "callee_server_error", status)
    if 400 <= status < 500:
        return Outcome(Disposition.FAILED, "callee_rejected", status)
    # No final response at all (transport error, or pjsip gave up with 0).
    return Outcome(Disposition.FAILED, "callee_unreachable", 502)


# pjsua had no call slot for the outbound leg (PJ_ETOOMANY): this worker is
# full, so 503 (+ Retry-After), on which the proxy tries another worker; a 502
# would not be retried.
NO_CAPACITY = Outcome(Disposition.FAILED, "no_capacity", 503)
NO_ROUTE = Outcome(Disposition.FAILED, "no_route", 404)
NO_ANSWER_TIMEOUT = Outcome(Disposition.NO_ANSWER, "no_answer_timeout", 480)
