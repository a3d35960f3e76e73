"""The webhook delivery's metric hooks: served once exposed, every outcome from zero,
and a metric that cannot be updated never raises into the delivery."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from application import webhook_metrics


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_webhook_series_are_served_once_exposed_with_every_outcome_at_zero() -> None:
    webhook_metrics.expose_webhooks()
    webhook_metrics.expose_webhooks()  # a follower and a dispatcher in one process
    for outcome in webhook_metrics.OUTCOMES:
        assert sample("dialtone_webhook_attempts_total", outcome=outcome) is not None
    assert sample("dialtone_webhook_round_fill_ratio") is not None
    assert sample("dialtone_loop_failures_total", loop="webhook-dispatcher") is not None


def test_the_round_fill_ratio_is_what_a_round_claimed_of_its_batch() -> None:
    webhook_metrics.expose_webhooks()
    webhook_metrics.webhook_round(claimed=3, batch=4)
    assert sample("dialtone_webhook_round_fill_ratio") == 0.75
    webhook_metrics.webhook_round(claimed=0, batch=4)
    assert sample("dialtone_webhook_round_fill_ratio") == 0


def test_a_metric_that_fails_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    webhook_metrics.expose_webhooks()
    with caplog.at_level(logging.ERROR, logger="application.metrics"):
        webhook_metrics.webhook_round(claimed=1, batch=0)  # division by zero
        # Not a number of seconds: refused before anything is counted.
        webhook_metrics.webhook_attempts([("delivered", "1")])  # type: ignore[list-item]
    assert "metrics: webhook_round failed" in caplog.text
    assert "metrics: webhook_attempts failed" in caplog.text
