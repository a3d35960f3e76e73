"""The metric hooks of application.metrics: labels bounded, failures never raised into
the call path, relay lag read at scrape time and NaN while the store is away."""

from __future__ import annotations

import math

import psycopg
import redis
from eventsourcing.persistence import IntegrityError, OperationalError
from prometheus_client import REGISTRY

from adapters.registrar.bindings import error_kind
from application import metrics
from domain.errors import IllegalTransition


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_final_responses_are_counted_by_class_and_code_only_when_final():
    before = sample("dialtone_sip_final_responses_total", code_class="4xx", code="486")
    metrics.sip_final_response(486)
    metrics.sip_final_response(180)  # provisional: not a final response
    metrics.sip_final_response(0)  # unknown (pjsua tore the dialog down first): not counted
    after = sample("dialtone_sip_final_responses_total", code_class="4xx", code="486")
    assert after == before + 1
    assert REGISTRY.get_sample_value("dialtone_sip_final_responses_total",
                                     {"code_class": "1xx", "code": "180"}) is None
    assert REGISTRY.get_sample_value("dialtone_sip_final_responses_total",
                                     {"code_class": "0xx", "code": "0"}) is None


def test_rtp_figures_go_to_base_units():
    count = sample("dialtone_rtp_jitter_seconds_count")
    jitter = sample("dialtone_rtp_jitter_seconds_sum")
    loss = sample("dialtone_rtp_loss_ratio_sum")
    metrics.rtp_stream(jitter_ms=20.0, loss_pct=5.0, mos=4.1)
    assert sample("dialtone_rtp_jitter_seconds_count") == count + 1
    assert math.isclose(sample("dialtone_rtp_jitter_seconds_sum") - jitter, 0.02)
    assert math.isclose(sample("dialtone_rtp_loss_ratio_sum") - loss, 0.05)


def test_relay_lag_is_read_at_scrape_time_and_nan_while_the_store_is_away():
    state = {"head": 120, "position": 100}

    def head() -> int:
        if state["head"] < 0:
            raise OSError("connection refused")
        return state["head"]

    metrics.watch_relay("LagTest", lambda: state["position"], head)
    assert sample("dialtone_relay_lag_events", application="LagTest") == 20
    state["position"] = 120
    assert sample("dialtone_relay_lag_events", application="LagTest") == 0
    state["head"] = -1
    assert math.isnan(sample("dialtone_relay_lag_events", application="LagTest"))


def test_an_append_that_fails_is_timed_nowhere_and_counts_no_event():
    count = sample("dialtone_event_append_seconds_count", application="AppendTest")
    events = sample("dialtone_events_appended_total", application="AppendTest")
    try:
        with metrics.event_append("AppendTest", 3):
            raise RuntimeError("commit refused")
    except RuntimeError:
        pass
    with metrics.event_append("AppendTest", 2):
        pass
    assert sample("dialtone_event_append_seconds_count", application="AppendTest") == count + 1
    assert sample("dialtone_events_appended_total", application="AppendTest") == events + 2


def test_registration_series_are_served_once_exposed_with_every_label_at_zero():
    metrics.expose_registrations()
    metrics.expose_registrations()  # a second observer in the process: no duplicate
    assert REGISTRY.get_sample_value("dialtone_registrations_observation_errors_total",
                                     {"kind": "conflict"}) is not None
    assert REGISTRY.get_sample_value("dialtone_registrations_events_recorded_total",
                                     {"event": "expired"}) is not None
    assert REGISTRY.get_sample_value("dialtone_registrations_bindings",
                                     {"state": "unknown_domain"}) is not None
    before = sample("dialtone_registrations_events_recorded_total", event="refreshed")
    metrics.registration_events(["Refreshed", "Refreshed"])
    assert sample("dialtone_registrations_events_recorded_total",
                  event="refreshed") == before + 2


def test_a_failed_observation_is_labelled_by_what_failed():
    assert error_kind(redis.ConnectionError("refused")) == "redis"
    assert error_kind(psycopg.OperationalError("gone")) == "database"
    assert error_kind(OperationalError("gone")) == "database"  # eventsourcing's wrapper
    assert error_kind(IntegrityError("version taken")) == "conflict"
    assert error_kind(IllegalTransition("moved on")) == "refused"
    assert error_kind(ValueError("bug")) == "other"
    assert set(metrics.REGISTRATION_ERROR_KINDS) == {"redis", "database", "conflict",
                                                      "refused", "other"}
