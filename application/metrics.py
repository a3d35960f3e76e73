"""The Prometheus metrics of every dialtone process, in one catalogue.

Every series a dialtone process exposes is defined here (docs/observability.md
describes each, and test_docs_describe_every_series_and_alert in
tests/integration/test_alert_rules.py checks that it does),
so the names, units and labels follow one convention: ``dialtone_`` prefix,
base units (seconds, bytes, ratios), ``_total`` on counters, and labels whose
values are bounded (a status code, an application, a projection, a queue key;
never a call id or a caller's number).

The metrics live in prometheus-client's default registry: each process exports
the ones it updates, plus the client's process collector
(``process_resident_memory_bytes``, CPU, open fds) and Python's GC collector.
The API serves them on ``GET /metrics``; the other processes on their own port
(``serve_metrics``: DIALTONE_METRICS_PORT, and for B2BUA workers a port per
worker, see dialtone/commands/up.py).

The helpers below are the hooks the adapters call: one line at each call site,
and they never raise into the caller (a metric must not break a call). The
webhook series' hooks are in application/webhook_metrics.py.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.process_collector import ProcessCollector

log = logging.getLogger(__name__)

# --- SIP (B2BUA workers) ----------------------------------------------------------

B2BUA_CALLS_ACTIVE = Gauge(
    "dialtone_b2bua_calls_active", "Calls (sessions) this B2BUA worker holds now.")
B2BUA_CALLS_CAPACITY = Gauge(
    "dialtone_b2bua_calls_capacity", "Bridged calls this B2BUA worker admits (--max-calls).")
B2BUA_LEGS_ACTIVE = Gauge(
    "dialtone_b2bua_legs_active", "SIP dialogs (pjsua call slots) this worker holds now.")
B2BUA_LEGS_CAPACITY = Gauge(
    "dialtone_b2bua_legs_capacity", "pjsua call slots of this worker (--pjsua-calls).")
# The parent of a B2BUA pool (`dialtone b2bua --workers N`) serves only these, from
# a registry of their own: its children serve the worker series above each on
# its port, and the parent must not show them at zero beside theirs.
POOL_REGISTRY = CollectorRegistry()
ProcessCollector(registry=POOL_REGISTRY)
B2BUA_POOL_CHILDREN = Gauge(
    "dialtone_b2bua_pool_children", "Worker processes this B2BUA pool runs (--workers).",
    registry=POOL_REGISTRY)
B2BUA_POOL_CHILDREN_UP = Gauge(
    "dialtone_b2bua_pool_children_up", "Worker processes of this B2BUA pool running now.",
    registry=POOL_REGISTRY)
B2BUA_POOL_RESTARTS = Counter(
    "dialtone_b2bua_pool_restarts", "Workers this B2BUA pool restarted after they died.",
    registry=POOL_REGISTRY)
SIP_FINAL_RESPONSES = Counter(
    "dialtone_sip_final_responses",
    "Final responses to inbound INVITEs, by status code and class (2xx..6xx).",
    ["code_class", "code"])
SIP_INVITE_TO_ANSWER = Histogram(
    "dialtone_sip_invite_to_answer_seconds",
    "From an inbound INVITE's arrival to the 2xx this worker sent for it.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0))
RTP_JITTER = Histogram(
    "dialtone_rtp_jitter_seconds",
    "Mean interarrival jitter of each received RTP stream (RTCP), at the call's end.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2))
RTP_LOSS = Histogram(
    "dialtone_rtp_loss_ratio",
    "Fraction of RTP packets lost on each received stream, at the call's end.",
    buckets=(0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5))
RTP_MOS = Histogram(
    "dialtone_rtp_mos",
    "E-model MOS estimate (ITU-T G.107) of each received RTP stream, at the call's end.",
    buckets=(1.0, 2.0, 2.5, 3.0, 3.5, 3.8, 4.0, 4.2, 4.4, 4.5))

# --- Event store ---------------------------------------------------------------------

EVENT_APPEND_SECONDS = Histogram(
    "dialtone_event_append_seconds",
    "Time to commit one batch of new events to the event store.",
    ["application"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
EVENTS_APPENDED = Counter(
    "dialtone_events_appended", "Events committed to the event store.", ["application"])

# --- Relay (store -> Kafka) ----------------------------------------------------------

RELAY_PUBLISHED = Counter(
    "dialtone_relay_published_events", "Events the relay published to Kafka (committed).",
    ["application"])
RELAY_POSITION = Gauge(
    "dialtone_relay_position", "Store position of the last event the relay published.",
    ["application"])
RELAY_LAG = Gauge(
    "dialtone_relay_lag_events",
    "Store head minus the last published position (read at scrape time).", ["application"])

# --- Projection runners and loops ----------------------------------------------------

WORKER_EVENTS = Counter(
    "dialtone_worker_events_applied",
    "Events a Faust worker applied to the projections, by aggregate kind.", ["kind"])
WORKER_BATCH_SECONDS = Histogram(
    "dialtone_worker_batch_seconds",
    "Time for a Faust worker to commit one batch to every projection group.", ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
WORKER_POISON = Counter(
    "dialtone_worker_poison_messages",
    "Messages a Faust worker could not decode and parked on the topic's .dlq.", ["kind"])
LOOP_STEPS = Counter(
    "dialtone_loop_steps",
    "Steps of a store-notified loop (in-process projections, routing process).", ["loop"])
LOOP_FAILURES = Counter(
    "dialtone_loop_failures",
    "Steps of a store-notified loop that failed (it reconnects and retries).", ["loop"])

# --- HTTP API ------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "dialtone_http_requests", "HTTP requests answered, by route template and status.",
    ["method", "route", "status"])
HTTP_REQUEST_SECONDS = Histogram(
    "dialtone_http_request_duration_seconds",
    "Time to answer an HTTP request (until the response starts), by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))

# --- Recordings (dialtone recordings, docs/recordings.md) -------------------------------

RECORDINGS_PENDING = Gauge(
    "dialtone_recordings_pending",
    "Recording files on this uploader's disk not in object storage yet (after a round).")
RECORDING_UPLOADS = Counter(
    "dialtone_recording_uploads", "Recording upload attempts, by outcome (uploaded, failed).",
    ["outcome"])


# --- Registrations (dialtone registrations, docs/edge.md "Registrar") -----------------
# Registered in the default registry only by a process that runs the observer
# (``expose_registrations``: `dialtone registrations`, `dialtone up` with a registrar):
# elsewhere a last-success time of 0 would look like an observer that never succeeded.

REGISTRATIONS_BINDINGS = Gauge(
    "dialtone_registrations_bindings",
    "Bindings in the registrar's Redis at the last observation, by state (live: recorded; "
    "expired: past their expiry, not yet removed; unknown_domain: in a SIP domain no "
    "tenant has, skipped; unreadable: an expiry that does not parse, skipped; invalid_aor: "
    "a username that makes no valid address of record, skipped).", ["state"],
    registry=None)
REGISTRATIONS_DEVICES = Gauge(
    "dialtone_registrations_devices",
    "Devices (addresses of record) with at least one live binding at the last observation.",
    registry=None)
REGISTRATIONS_OBSERVATIONS = Counter(
    "dialtone_registrations_observations",
    "Observations of the registrar's Redis begun (each reads every binding).", registry=None)
REGISTRATIONS_OBSERVATION_ERRORS = Counter(
    "dialtone_registrations_observation_errors",
    "Observations that failed, by kind (redis, database, conflict, refused, other).",
    ["kind"], registry=None)
REGISTRATIONS_OBSERVATION_SECONDS = Histogram(
    "dialtone_registrations_observation_duration_seconds",
    "Time of one successful observation: read the Redis, record, reconcile the agents.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), registry=None)
REGISTRATIONS_LAST_SUCCESS = Gauge(
    "dialtone_registrations_last_success_timestamp_seconds",
    "Unix time the last observation succeeded (0: none yet since the process started).",
    registry=None)
REGISTRATIONS_EVENTS = Counter(
    "dialtone_registrations_events_recorded",
    "DeviceRegistration events recorded, by event (registered, refreshed, unregistered, "
    "expired; created for a device seen the first time).", ["event"], registry=None)
REGISTRATIONS_AGENT_CHANGES = Counter(
    "dialtone_registrations_agent_changes",
    "Agents paused because their registering device had no live registration "
    "(device-not-registered), or resumed when it came back.", ["change"], registry=None)
REGISTRATIONS_AGENTS_PAUSED = Gauge(
    "dialtone_registrations_agents_paused",
    "Logged-in agents paused for device-not-registered after the last observation.",
    registry=None)

# --- Webhooks (dialtone webhooks, or dialtone up without Kafka; docs/webhooks.md) ------
# Registered only where a follower or dispatcher runs; the hooks that update them are
# in application/webhook_metrics.py (this module is at its size limit).

WEBHOOK_ATTEMPTS = Counter(
    "dialtone_webhook_attempts",
    "Webhook delivery attempts recorded in the delivery log, by outcome (delivered; or "
    "failed, to be retried: http_error, timeout, connection_error, refused).", ["outcome"],
    registry=None)
WEBHOOK_ATTEMPT_SECONDS = Histogram(
    "dialtone_webhook_attempt_duration_seconds",
    "Time of one webhook delivery attempt, connect to last byte read (or the timeout).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0), registry=None)
WEBHOOK_QUEUED = Counter(
    "dialtone_webhook_deliveries_queued",
    "Deliveries (subscription, event) the followers offered to the delivery queue.",
    registry=None)
WEBHOOK_ROUND_FILL = Gauge(
    "dialtone_webhook_round_fill_ratio",
    "Deliveries the dispatcher's last round claimed over its batch size "
    "(1: more were due than a round takes).", registry=None)
WEBHOOK_DISABLED = Counter(
    "dialtone_webhook_subscriptions_disabled",
    "Subscriptions the dispatcher disabled because every attempt failed for too long.",
    registry=None)


# --- Hooks -----------------------------------------------------------------------------


def guarded(what: str, action: Callable[[], None]) -> None:
    try:
        action()
    except Exception:  # a metric must never break the call path it observes
        log.exception("metrics: %s failed", what)


def sip_final_response(code: int) -> None:
    """One final response (>= 200) to an inbound INVITE."""
    if 200 <= code <= 699:
        guarded("sip_final_response", lambda: SIP_FINAL_RESPONSES.labels(
            code_class=f"{code // 100}xx", code=str(code)).inc())


def invite_answered(invited_at: float) -> None:
    """A 2xx sent to an INVITE that arrived at ``invited_at`` (time.monotonic())."""
    SIP_INVITE_TO_ANSWER.observe(max(0.0, time.monotonic() - invited_at))


def rtp_stream(jitter_ms: float, loss_pct: float, mos: float) -> None:
    """The last figures of one received RTP stream, when its call ends."""
    def observe() -> None:
        RTP_JITTER.observe(jitter_ms / 1000.0)
        RTP_LOSS.observe(loss_pct / 100.0)
        RTP_MOS.observe(mos)
    guarded("rtp_stream", observe)


def watch_b2bua(calls: Callable[[], int], legs: Callable[[], int], call_capacity: int,
                leg_capacity: int) -> None:
    """Read the worker's calls and legs at scrape time; set its capacities."""
    B2BUA_CALLS_ACTIVE.set_function(calls)
    B2BUA_LEGS_ACTIVE.set_function(legs)
    B2BUA_CALLS_CAPACITY.set(call_capacity)
    B2BUA_LEGS_CAPACITY.set(leg_capacity)


@contextmanager
def event_append(application: str, events: int) -> Iterator[None]:
    """Time one commit of ``events`` events; count them only if it committed."""
    started = time.perf_counter()
    yield
    EVENT_APPEND_SECONDS.labels(application=application).observe(time.perf_counter() - started)
    EVENTS_APPENDED.labels(application=application).inc(events)


def relay_published(application: str, events: int, position: int) -> None:
    RELAY_PUBLISHED.labels(application=application).inc(events)
    RELAY_POSITION.labels(application=application).set(position)


def watch_relay(application: str, position: Callable[[], int],
                head: Callable[[], int | None]) -> None:
    """Relay lag read at scrape time: the store's head minus ``position()``.

    NaN while the store cannot be read: a scrape must not fail (and take the
    process's other series with it) because the database is away."""
    def lag() -> float:
        try:
            return float(max(0, (head() or 0) - position()))
        except Exception as error:
            log.warning("relay lag of %s unknown: %s", application, type(error).__name__)
            return math.nan
    RELAY_LAG.labels(application=application).set_function(lag)


def worker_batch(kind: str, events: int, started: float) -> None:
    """A Faust batch of ``events`` events, begun at ``started`` (perf_counter), applied."""
    if events <= 0:
        return  # a batch of poison messages only: nothing was applied
    WORKER_BATCH_SECONDS.labels(kind=kind).observe(time.perf_counter() - started)
    WORKER_EVENTS.labels(kind=kind).inc(events)


def recordings_round(pending: int, uploaded: int, failed: int) -> None:
    """One pass of the recordings uploader: files left on disk, uploads done and failed."""
    def note() -> None:
        RECORDINGS_PENDING.set(pending)
        RECORDING_UPLOADS.labels(outcome="uploaded").inc(uploaded)
        RECORDING_UPLOADS.labels(outcome="failed").inc(failed)
    guarded("recordings_round", note)


_REGISTRATION_SERIES = (
    REGISTRATIONS_BINDINGS, REGISTRATIONS_DEVICES, REGISTRATIONS_OBSERVATIONS,
    REGISTRATIONS_OBSERVATION_ERRORS, REGISTRATIONS_OBSERVATION_SECONDS,
    REGISTRATIONS_LAST_SUCCESS, REGISTRATIONS_EVENTS, REGISTRATIONS_AGENT_CHANGES,
    REGISTRATIONS_AGENTS_PAUSED)
REGISTRATION_EVENTS = ("created", "registered", "refreshed", "unregistered", "expired")
REGISTRATION_ERROR_KINDS = ("redis", "database", "conflict", "refused", "other")
_registering = threading.Lock()
_registered: set[int] = set()


def register_once(series: Iterable[Any]) -> None:
    """Serve `series` (made with registry=None) from this process's registry, once
    however many components of the process ask: the registry refuses a second time."""
    with _registering:
        for one in series:
            if id(one) not in _registered:
                REGISTRY.register(one)
                _registered.add(id(one))


def expose_registrations() -> None:
    """Serve the registrations observer's series from this process (once); every label
    value they can take starts at 0, so a rate over them is defined from the start."""
    register_once(_REGISTRATION_SERIES)
    for state in ("live", "expired", "unknown_domain", "unreadable", "invalid_aor"):
        REGISTRATIONS_BINDINGS.labels(state=state)
    for kind in REGISTRATION_ERROR_KINDS:
        REGISTRATIONS_OBSERVATION_ERRORS.labels(kind=kind)
    for event in REGISTRATION_EVENTS:
        REGISTRATIONS_EVENTS.labels(event=event)
    for change in ("paused", "resumed"):
        REGISTRATIONS_AGENT_CHANGES.labels(change=change)


def registration_events(names: Iterable[str]) -> None:
    """DeviceRegistration events just saved, by class name (Registered, Expired...)."""
    def note() -> None:
        for name in names:
            REGISTRATIONS_EVENTS.labels(event=name.lower()).inc()
    guarded("registration_events", note)


def registrations_failed(kind: str) -> None:
    """One observation failed; ``kind`` is one of REGISTRATION_ERROR_KINDS."""
    guarded("registrations_failed",
             lambda: REGISTRATIONS_OBSERVATION_ERRORS.labels(kind=kind).inc())


def registrations_observed(*, live: int, expired: int, unknown_domain: int, unreadable: int,
                           invalid_aor: int, devices: int, agents_paused: int,
                           seconds: float) -> None:
    """One observation done: what the registrar held, and how long it took."""
    def note() -> None:
        REGISTRATIONS_BINDINGS.labels(state="live").set(live)
        REGISTRATIONS_BINDINGS.labels(state="expired").set(expired)
        REGISTRATIONS_BINDINGS.labels(state="unknown_domain").set(unknown_domain)
        REGISTRATIONS_BINDINGS.labels(state="unreadable").set(unreadable)
        REGISTRATIONS_BINDINGS.labels(state="invalid_aor").set(invalid_aor)
        REGISTRATIONS_DEVICES.set(devices)
        REGISTRATIONS_AGENTS_PAUSED.set(agents_paused)
        REGISTRATIONS_OBSERVATION_SECONDS.observe(seconds)
        REGISTRATIONS_LAST_SUCCESS.set_to_current_time()
    guarded("registrations_observed", note)


def registrations_agents_changed(changes: Iterable[str]) -> None:
    """Agents the observation paused or resumed ("paused" / "resumed" each)."""
    def note() -> None:
        for change in changes:
            REGISTRATIONS_AGENT_CHANGES.labels(change=change).inc()
    guarded("registrations_agents_changed", note)


def serve_metrics(port: int, host: str = "127.0.0.1") -> Any:
    """prometheus-client's HTTP server for this process's metrics on ``host:port``
    (``port`` 0: none). Returns the server (for a test to shut it down) or None."""
    if port <= 0:
        return None
    server, _thread = start_http_server(port, addr=host)
    log.info("metrics on http://%s:%d/metrics", host, port)
    return server
