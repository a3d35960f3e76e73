"""The queries of the dialtone Grafana dashboards (``dialtone.grafana.dashboards``).

- the PromQL of **Operations**, panel title -> [(expression, legend)] by row, with each
  panel's unit and, where an alert watches its series, the alert's level (at the end);
- the heartbeats table of **Operations** reads ``service_heartbeats``: liveness is a
  database row, not a Prometheus series;
- **Supervisor** reads the projection tables: queues live, agents by state, CDR volume
  (issue 10, section 4).

Every SQL query is a module constant with the columns it returns, so tests run each
one against the real schema after a real call. The SQL uses only PostgreSQL's own
functions (``date_trunc``, ``count(*) FILTER``, ``EXTRACT``), never TimescaleDB's
(``time_bucket``...), so one query serves both migration paths: on the TimescaleDB path
the same tables are hypertables, which plain SQL reads as is.
"""

from __future__ import annotations

from dataclasses import dataclass

from dialtone.budgets import SCRAPED_SERVICES
from dialtone.grafana.sql import Format
from projections import kpi


@dataclass(frozen=True)
class Query:
    """One SQL panel query and the columns it returns (a test runs it)."""

    sql: str
    columns: tuple[str, ...]
    format: Format = "table"


# A heartbeat is stale past 3 of its process's intervals (Settings.heartbeat_stale_after's
# default, as /healthz judges it).
HEARTBEATS = Query(
    "SELECT service, instance, host, pid,\n"
    "  CASE WHEN stopped_at IS NOT NULL THEN 'stopped'\n"
    "       WHEN beat_at < now() - make_interval(secs => interval_s * 3)"
    " THEN 'stale'\n"
    "       ELSE 'running' END AS status,\n"
    "  EXTRACT(EPOCH FROM now() - beat_at)::float8 AS last_beat_s,\n"
    "  started_at\n"
    "FROM service_heartbeats\n"
    "ORDER BY service, instance",
    ("service", "instance", "host", "pid", "status", "last_beat_s", "started_at"))


# --- Supervisor: SQL on the projection tables ----------------------------------------
# $tenant is the dashboard's multi-value variable: Grafana quotes each chosen value
# ('a','b'), so `tenant IN ($tenant)` is how SQL datasources take it.

TENANT_VARIABLE = Query(
    "SELECT tenant FROM queue_live UNION SELECT tenant FROM agent_state ORDER BY 1",
    ("tenant",))
CALLS_WAITING = Query(
    "SELECT count(*) AS waiting FROM queue_calls WHERE tenant IN ($tenant)", ("waiting",))
OLDEST_WAIT = Query(
    "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(enqueued_at)), 0)::float8 AS oldest_wait_s\n"
    "FROM queue_calls WHERE tenant IN ($tenant)", ("oldest_wait_s",))
CALLS_IN_PROGRESS = Query(
    "SELECT count(*) AS calls FROM call_live WHERE tenant IN ($tenant)", ("calls",))
# Queue figures over today and the last 15 minutes: the sums are projections/kpi.py's
# QUEUE_SUMS itself (the wallboard's), for every chosen tenant; the ratios are kpi.py's
# (service level: short abandons excluded). "Today" starts at each tenant's local
# midnight (a correlated subquery on tenants: `tenant` is the summed table's column;
# UTC for a tenant without a row, as GET /v1/live does).
_TENANT_ZONE = "COALESCE((SELECT z.time_zone FROM tenants z WHERE z.id = tenant), 'UTC')"
_TENANT_MIDNIGHT = (f"(date_trunc('day', now() AT TIME ZONE {_TENANT_ZONE})"
                    f" AT TIME ZONE {_TENANT_ZONE})")
_WINDOW_COLUMNS = ("offered", "answered", "abandoned", "short_abandons", "transferred_in",
                   "transferred_out", "overflowed", "service_level", "asa_s", "aht_s",
                   "longest_wait_s", "abandonment_rate")


def _queue_figures(since_sql: str, now_columns: bool) -> Query:
    sums = (kpi.QUEUE_SUMS.strip().replace("tenant = $1", "tenant IN ($tenant)")
            .replace("$2", since_sql).replace("$3", "now()"))
    now = ("  (SELECT count(*) FROM queue_calls c WHERE c.queue_id = q.queue_id) AS waiting,\n"
           "  COALESCE((SELECT EXTRACT(EPOCH FROM now() - min(c.enqueued_at)) FROM queue_calls c"
           " WHERE c.queue_id = q.queue_id), 0)::float8 AS oldest_wait_s,\n"
           if now_columns else "")
    return Query(
        "SELECT q.key AS queue, q.name,\n" + now +
        "  COALESCE(s.offered, 0) AS offered, COALESCE(s.answered, 0) AS answered,\n"
        "  COALESCE(s.abandoned, 0) AS abandoned,"
        " COALESCE(s.short_abandoned, 0) AS short_abandons,\n"
        "  COALESCE(s.transferred_in, 0) AS transferred_in,"
        " COALESCE(s.transferred_out, 0) AS transferred_out,\n"
        "  COALESCE(s.overflowed, 0) AS overflowed,\n"
        "  s.answered_within_sl::float8 / NULLIF(s.offered - s.short_abandoned, 0)"
        " AS service_level,\n"
        "  s.answered_wait_s / NULLIF(s.answered, 0) AS asa_s,\n"
        "  s.handle_s / NULLIF(s.handled, 0) AS aht_s,\n"
        "  s.longest_wait_s,\n"
        "  s.abandoned::float8 / NULLIF(s.offered - s.short_abandoned, 0)"
        " AS abandonment_rate\n"
        f"FROM queue_live q LEFT JOIN (\n{sums}\n) s ON s.queue_id = q.queue_id\n"
        "WHERE q.tenant IN ($tenant)\n"
        "ORDER BY q.key",
        ("queue", "name", *(("waiting", "oldest_wait_s") if now_columns else ()),
         *_WINDOW_COLUMNS))


QUEUES = _queue_figures(_TENANT_MIDNIGHT, now_columns=True)  # now, and today
QUEUES_WINDOW = _queue_figures("now() - interval '15 minutes'", now_columns=False)
AGENT_STATES = ("available", "reserved", "on_call", "wrap_up", "paused")
QUEUE_AGENTS = Query(
    "SELECT q.key AS queue,\n"
    "  count(*) FILTER (WHERE a.state <> 'logged_out') AS staffed,\n"
    + "".join(f"  count(*) FILTER (WHERE a.state = '{s}') AS {s},\n" for s in AGENT_STATES)
    + "  count(*) FILTER (WHERE a.state = 'logged_out') AS logged_out\n"
    "FROM queue_live q\n"
    "JOIN queue_members m ON m.queue_id = q.queue_id\n"
    "JOIN agent_state a ON a.agent_id = m.agent_id\n"
    "WHERE q.tenant IN ($tenant)\n"
    "GROUP BY q.key\n"
    "ORDER BY q.key",
    ("queue", "staffed", *AGENT_STATES, "logged_out"))
AGENTS_BY_STATE = Query(
    "SELECT state, count(*) AS agents FROM agent_state WHERE tenant IN ($tenant)\n"
    "GROUP BY state ORDER BY state", ("state", "agents"))
AGENTS = Query(
    "SELECT key AS agent, name, state,\n"
    "  EXTRACT(EPOCH FROM now() - state_since)::float8 AS in_state_s,\n"
    "  pause_reason, calls_handled, missed_offers\n"
    "FROM agent_state WHERE tenant IN ($tenant)\n"
    "ORDER BY key",
    ("agent", "name", "state", "in_state_s", "pause_reason", "calls_handled", "missed_offers"))
_FINISHED_CALLS = ("FROM cdr\n"
                   "WHERE $__timeFilter(started_at) AND ended_at IS NOT NULL"
                   " AND tenant IN ($tenant)\n")
CALLS_PER_HOUR = Query(
    "SELECT date_trunc('hour', started_at) AS time,\n"
    "  count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,\n"
    "  count(*) FILTER (WHERE answered_at IS NULL) AS not_answered\n"
    + _FINISHED_CALLS +
    "GROUP BY 1\n"
    "ORDER BY 1",
    ("time", "answered", "not_answered"), "time_series")
CALLS_BY_QUEUE = Query(
    "SELECT COALESCE(queue, '-') AS queue, COALESCE(disposition, status) AS outcome,\n"
    "  count(*) AS calls, avg(wait_s) AS avg_wait_s, avg(talk_s) AS avg_talk_s,\n"
    "  avg(mos) AS avg_mos\n"
    + _FINISHED_CALLS +
    "GROUP BY 1, 2\n"
    "ORDER BY 1, 2",
    ("queue", "outcome", "calls", "avg_wait_s", "avg_talk_s", "avg_mos"))


# --- Operations: PromQL --------------------------------------------------------------
# Each expression passes `promtool check rules` and reads only exported series
# (tests/integration/test_grafana_dashboards.py); every family of the catalogue is on a
# panel or left out on purpose (tests/unit/test_grafana_dashboards.py).

RATE = "$__rate_interval"  # Grafana's: at least four scrape intervals


def _quantile(q: float, metric: str, by: str = "") -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket[{RATE}])))"


def _mean(metric: str) -> str:
    return f"sum(rate({metric}_sum[{RATE}])) / sum(rate({metric}_count[{RATE}]))"


_SIP = "dialtone_sip_final_responses_total"
_NOT_SCRAPES = '{route!="/metrics"}'

# panel title -> [(expr, legend)]
SIGNALLING: dict[str, list[tuple[str, str]]] = {
    "Calls vs capacity": [
        ("sum(dialtone_b2bua_calls_active)", "calls"),
        ("sum(dialtone_b2bua_calls_capacity)", "call capacity"),
        ("sum(dialtone_b2bua_legs_active)", "legs"),
        ("sum(dialtone_b2bua_legs_capacity)", "leg capacity"),
    ],
    "SIP final responses by code": [
        (f"sum by (code) (rate({_SIP}[{RATE}]))", "{{code}}"),
    ],
    "INVITE to answer": [
        (_quantile(0.5, "dialtone_sip_invite_to_answer_seconds"), "p50"),
        (_quantile(0.95, "dialtone_sip_invite_to_answer_seconds"), "p95"),
    ],
    "Answer-seizure ratio": [
        (f'sum(rate({_SIP}{{code_class="2xx"}}[{RATE}])) / sum(rate({_SIP}[{RATE}]))',
         "answered / seized"),
    ],
}
MEDIA: dict[str, list[tuple[str, str]]] = {
    "RTP jitter": [
        (_quantile(0.5, "dialtone_rtp_jitter_seconds"), "p50"),
        (_quantile(0.95, "dialtone_rtp_jitter_seconds"), "p95"),
    ],
    "RTP loss": [
        (_mean("dialtone_rtp_loss_ratio"), "mean"),
        (_quantile(0.95, "dialtone_rtp_loss_ratio"), "p95"),
    ],
    "MOS": [
        (_mean("dialtone_rtp_mos"), "mean"),
        (_quantile(0.05, "dialtone_rtp_mos"), "worst 5 %"),
    ],
}
API: dict[str, list[tuple[str, str]]] = {
    "Requests by route and status": [
        (f"sum by (route, status) (rate(dialtone_http_requests_total{_NOT_SCRAPES}[{RATE}]))",
         "{{status}} {{route}}"),
    ],
    "5xx ratio": [
        (f'sum(rate(dialtone_http_requests_total{{route!="/metrics",status=~"5.."}}[{RATE}]))'
         f" / sum(rate(dialtone_http_requests_total{_NOT_SCRAPES}[{RATE}]))", "5xx"),
    ],
    "Latency p99 by route": [
        (_quantile(0.99, "dialtone_http_request_duration_seconds", "route")
         .replace("_bucket[", f"_bucket{_NOT_SCRAPES}["), "{{route}}"),
    ],
}
INFRASTRUCTURE: dict[str, list[tuple[str, str]]] = {
    "Relay lag": [("max by (application) (dialtone_relay_lag_events)", "{{application}}")],
    "Projection lag (seconds behind)": [
        ("max by (projection, application) (dialtone_projection_lag_seconds)",
         "{{projection}} ({{application}})")],
    "Projection lag (events)": [
        ("max by (projection, application) (dialtone_projection_lag_events)",
         "{{projection}} ({{application}})")],
    "Parked events, calls waiting": [
        ("max by (projection, application) (dialtone_projection_parked_events)",
         "parked {{projection}} ({{application}})"),
        ("max by (projection, application) (dialtone_projection_waiting_calls)",
         "calls waiting for an earlier event {{projection}} ({{application}})")],
    "Database reachable": [("max(dialtone_database_up)", "database up")],
    "Targets up": [(f'up{{job=~"{"|".join(SCRAPED_SERVICES)}"}}', "{{job}} {{instance}}")],
    "Event append p99": [
        (_quantile(0.99, "dialtone_event_append_seconds", "application"), "{{application}}")],
    "Events projected by the workers": [
        (f"sum by (kind) (rate(dialtone_worker_events_applied_total[{RATE}]))", "{{kind}}")],
    "Events appended and published": [
        (f"sum by (application) (rate(dialtone_events_appended_total[{RATE}]))",
         "appended {{application}}"),
        (f"sum by (application) (rate(dialtone_relay_published_events_total[{RATE}]))",
         "published {{application}}")],
}
WORKERS_AND_LOOPS: dict[str, list[tuple[str, str]]] = {
    "Worker batch p99": [(_quantile(0.99, "dialtone_worker_batch_seconds", "kind"), "{{kind}}")],
    "Worker poison messages (.dlq)": [
        (f"sum by (kind) (rate(dialtone_worker_poison_messages_total[{RATE}]))", "{{kind}}")],
    "Loop steps": [(f"sum by (loop) (rate(dialtone_loop_steps_total[{RATE}]))", "{{loop}}")],
    "Loop failures": [
        (f"sum by (loop) (rate(dialtone_loop_failures_total[{RATE}]))", "{{loop}}")],
}
# The pool's parent (`dialtone b2bua --workers N`); the alert counts restarts over 15 m.
B2BUA_POOL: dict[str, list[tuple[str, str]]] = {
    "Pool workers up vs configured": [
        ("max by (instance) (dialtone_b2bua_pool_children_up)", "up {{instance}}"),
        ("max by (instance) (dialtone_b2bua_pool_children)", "configured {{instance}}")],
    "Pool worker restarts (15 min)": [
        ("sum by (instance) (increase(dialtone_b2bua_pool_restarts_total[15m]))",
         "{{instance}}")],
}
_UPLOADS = "dialtone_recording_uploads_total"
RECORDINGS: dict[str, list[tuple[str, str]]] = {
    "Recordings pending upload": [("max by (instance) (dialtone_recordings_pending)",
                                   "{{instance}}")],
    "Recording uploads by outcome": [
        (f"sum by (outcome) (rate({_UPLOADS}[{RATE}]))", "{{outcome}}")],
    "Failed recording uploads (30 min)": [  # the backlog alert's window
        (f'sum by (instance) (increase({_UPLOADS}{{outcome="failed"}}[30m]))', "{{instance}}")],
}
_OBS = "dialtone_registrations_observation"
REGISTRATIONS: dict[str, list[tuple[str, str]]] = {
    "Registrar bindings by state": [
        ("max by (state) (dialtone_registrations_bindings)", "{{state}}")],
    "Registered devices and paused agents": [
        ("max(dialtone_registrations_devices)", "devices"),
        ("max(dialtone_registrations_agents_paused)", "agents paused (device not registered)")],
    "Since the last successful observation": [
        ("time() - dialtone_registrations_last_success_timestamp_seconds", "{{instance}}")],
    "Observations failing": [
        (f"sum by (instance) (rate({_OBS}_errors_total[{RATE}]))"
         f" / sum by (instance) (rate(dialtone_registrations_observations_total[{RATE}]))",
         "{{instance}}")],
    "Observations and errors by kind": [
        (f"sum(rate(dialtone_registrations_observations_total[{RATE}]))", "observations"),
        (f"sum by (kind) (rate({_OBS}_errors_total[{RATE}]))", "{{kind}} errors")],
    "Observation duration": [(_quantile(0.5, f"{_OBS}_duration_seconds"), "p50"),
                             (_quantile(0.95, f"{_OBS}_duration_seconds"), "p95")],
    "Registration events recorded": [
        (f"sum by (event) (rate(dialtone_registrations_events_recorded_total[{RATE}]))",
         "{{event}}")],
    "Agents paused and resumed": [
        (f"sum by (change) (rate(dialtone_registrations_agent_changes_total[{RATE}]))",
         "{{change}}")],
}
_ATTEMPTS = "dialtone_webhook_attempts_total"
WEBHOOKS: dict[str, list[tuple[str, str]]] = {
    "Webhook attempts by outcome": [
        (f"sum by (outcome) (rate({_ATTEMPTS}[{RATE}]))", "{{outcome}}")],
    "Webhook attempts failing": [  # summed by job, as the alert does: dispatchers share a queue
        (f'sum by (job) (rate({_ATTEMPTS}{{outcome!="delivered"}}[{RATE}]))'
         f" / sum by (job) (rate({_ATTEMPTS}[{RATE}]))", "{{job}}")],
    "Webhook attempt duration": [
        (_quantile(q, "dialtone_webhook_attempt_duration_seconds"), f"p{round(q * 100)}")
        for q in (0.5, 0.95, 0.99)],
    "Webhook deliveries queued and delivered": [
        (f"sum(rate(dialtone_webhook_deliveries_queued_total[{RATE}]))", "queued"),
        (f'sum(rate({_ATTEMPTS}{{outcome="delivered"}}[{RATE}]))', "delivered")],
    "Webhook round fill": [
        ("max by (instance) (dialtone_webhook_round_fill_ratio)", "{{instance}}")],
    "Webhook subscriptions disabled (1 h)": [
        ("sum(increase(dialtone_webhook_subscriptions_disabled_total[1h]))", "disabled")],
}


def _queue(name: str, over: str = "") -> str:
    """A queue_live tally of the API's snapshot (every replica reports the same: max by
    tenant and queue, as two tenants may have a queue of the same key), as a rate, or as
    its increase ``over`` a window."""
    series = f"dialtone_queue_calls_{name}_total"
    change = f"increase({series}[{over}])" if over else f"rate({series}[{RATE}])"
    return f"max by (tenant, queue) ({change})"


_QUEUE = "{{tenant}}/{{queue}}"
CALL_CENTRE: dict[str, list[tuple[str, str]]] = {
    "Queue calls offered": [(_queue("offered"), _QUEUE)],
    "Queue calls answered and abandoned": [
        (_queue("answered"), f"answered {_QUEUE}"), (_queue("abandoned"), f"abandoned {_QUEUE}"),
        (_queue("abandoned_within_sl"), f"abandoned within T {_QUEUE}"),
        (_queue("short_abandoned"), f"short abandons {_QUEUE}")],
    # dialtone:queue_service_level:ratio_1h, spelt out: answered within T / (offered -
    # short abandons), docs/metrics.md's service level (kpi.service_level).
    "Queue service level (1 h)": [
        (f"{_queue('answered_within_sl', '1h')} / ({_queue('offered', '1h')}"
         f" - {_queue('short_abandoned', '1h')} > 0)", _QUEUE)],
}
UNITS = {
    "Calls vs capacity": "short", "SIP final responses by code": "cps",
    "INVITE to answer": "s", "Answer-seizure ratio": "percentunit", "RTP jitter": "s",
    "RTP loss": "percentunit", "MOS": "none", "Requests by route and status": "reqps",
    "5xx ratio": "percentunit", "Latency p99 by route": "s", "Relay lag": "short",
    "Projection lag (seconds behind)": "s", "Projection lag (events)": "short",
    "Parked events, calls waiting": "short", "Database reachable": "bool_yes_no",
    "Targets up": "bool_yes_no",
    "Event append p99": "s", "Events projected by the workers": "ops",
    "Events appended and published": "ops", "Worker batch p99": "s",
    "Worker poison messages (.dlq)": "ops", "Loop steps": "ops", "Loop failures": "ops",
    "Pool workers up vs configured": "short", "Pool worker restarts (15 min)": "short",
    "Recordings pending upload": "short", "Recording uploads by outcome": "ops",
    "Failed recording uploads (30 min)": "short", "Registrar bindings by state": "short",
    "Registered devices and paused agents": "short",
    "Since the last successful observation": "s", "Observations failing": "percentunit",
    "Observations and errors by kind": "ops", "Observation duration": "s",
    "Registration events recorded": "ops", "Agents paused and resumed": "ops",
    "Webhook attempts by outcome": "ops", "Webhook attempts failing": "percentunit",
    "Webhook attempt duration": "s", "Webhook deliveries queued and delivered": "ops",
    "Webhook round fill": "percentunit", "Webhook subscriptions disabled (1 h)": "short",
    "Queue calls offered": "cps", "Queue calls answered and abandoned": "cps",
    "Queue service level (1 h)": "percentunit",
}
# The level each alert on a panel's series fires at (infra/prometheus/rules), drawn as a
# dashed red threshold; (level, True) where under it is the bad side.
THRESHOLDS: dict[str, tuple[float, bool]] = {
    "Pool worker restarts (15 min)": (3, False),  # DialtoneB2buaWorkerRestartLoop
    "Since the last successful observation": (300, False),  # DialtoneRegistrationsStale
    "Observations failing": (0.2, False),  # DialtoneRegistrationsObservationsFailing
    "Webhook attempts failing": (0.2, False),  # DialtoneWebhooksFailing
    "Webhook round fill": (1, False),  # DialtoneWebhooksBacklog
    "Queue service level (1 h)": (0.8, True),  # DialtoneQueueServiceLevelLow
}


def rss_expr(service: str) -> str:
    return f'max by (instance) (process_resident_memory_bytes{{job="{service}"}})'
