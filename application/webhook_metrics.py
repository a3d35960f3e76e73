"""The hooks of the webhook delivery's series (defined in the catalogue,
application/metrics.py, with every other series; docs/observability.md describes them).

The followers (store and Kafka) count the deliveries they queue; the dispatcher
counts its attempts by outcome, times them, says how full its last round was (a
backlog without a query of its own: the claim it already makes) and counts its
rounds in ``dialtone_loop_steps_total{loop="webhook-dispatcher"}``. Like the
catalogue's hooks, none of them raises into the caller: a metric must never break
a delivery.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from application.metrics import (
    LOOP_FAILURES,
    LOOP_STEPS,
    WEBHOOK_ATTEMPT_SECONDS,
    WEBHOOK_ATTEMPTS,
    WEBHOOK_DISABLED,
    WEBHOOK_QUEUED,
    WEBHOOK_ROUND_FILL,
    guarded,
    register_once,
)

DELIVERED = "delivered"
# Each failed attempt is retried after a backoff; the outcome says why it failed.
HTTP_ERROR = "http_error"  # an answer other than 2xx (redirects included)
TIMEOUT = "timeout"  # no whole answer within DIALTONE_WEBHOOK_TIMEOUT_S
CONNECTION_ERROR = "connection_error"  # refused, reset, dropped, name not resolved
REFUSED = "refused"  # the SSRF guard refused the target's address
OUTCOMES = (DELIVERED, HTTP_ERROR, TIMEOUT, CONNECTION_ERROR, REFUSED)
DISPATCHER_LOOP = "webhook-dispatcher"

_SERIES = (WEBHOOK_ATTEMPTS, WEBHOOK_ATTEMPT_SECONDS, WEBHOOK_QUEUED, WEBHOOK_ROUND_FILL,
           WEBHOOK_DISABLED)


def expose_webhooks() -> None:
    """Serve the webhook series from this process (once, whoever asks first); every
    outcome starts at 0, so the failed share of attempts is defined from the start."""
    register_once(_SERIES)
    for outcome in OUTCOMES:
        WEBHOOK_ATTEMPTS.labels(outcome=outcome)
    LOOP_STEPS.labels(loop=DISPATCHER_LOOP)
    LOOP_FAILURES.labels(loop=DISPATCHER_LOOP)


def webhook_attempts(attempts: Iterable[tuple[str, float]]) -> None:
    """Attempts recorded in the delivery log: (outcome, seconds) each, outcome one of
    OUTCOMES. One increment per outcome, not per attempt: a round holds up to 500."""
    def note() -> None:
        outcomes: Counter[str] = Counter()
        for outcome, seconds in attempts:
            outcomes[outcome] += 1
            WEBHOOK_ATTEMPT_SECONDS.observe(seconds)
        for outcome, count in outcomes.items():
            WEBHOOK_ATTEMPTS.labels(outcome=outcome).inc(count)
    guarded("webhook_attempts", note)


def webhook_round(claimed: int, batch: int) -> None:
    """The dispatcher claimed `claimed` of at most `batch` deliveries this round."""
    guarded("webhook_round", lambda: WEBHOOK_ROUND_FILL.set(min(1.0, claimed / batch)))


def webhook_round_done() -> None:
    """A dispatcher round went through (claimed, sent, recorded; or nothing was due)."""
    guarded("webhook_round_done", lambda: LOOP_STEPS.labels(loop=DISPATCHER_LOOP).inc())


def webhook_round_failed() -> None:
    """A dispatcher round failed (the database, mostly): it reconnects and retries."""
    guarded("webhook_round_failed", lambda: LOOP_FAILURES.labels(loop=DISPATCHER_LOOP).inc())


def webhooks_queued(deliveries: int) -> None:
    """A follower committed a batch that offered `deliveries` deliveries to the queue."""
    if deliveries > 0:
        guarded("webhooks_queued", lambda: WEBHOOK_QUEUED.inc(deliveries))


def webhooks_disabled(subscriptions: int) -> None:
    """The dispatcher disabled `subscriptions` subscriptions (committed)."""
    if subscriptions > 0:
        guarded("webhooks_disabled", lambda: WEBHOOK_DISABLED.inc(subscriptions))
