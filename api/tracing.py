"""Server spans for the HTTP API: FastAPI's own OpenTelemetry telemetry.

FastAPI opens a SERVER span per request (named ``METHOD /route/template``, with
``http.route``; a caller's ``traceparent`` continues the caller's trace) and
spans for dependency resolution, the endpoint and serialization, through the
*global* providers: recording once the process installed an SDK provider
(application.tracing.setup_tracing, or a test's), non-recording otherwise.

What is switched off, and why:
- the probes and the scrape (a span every few seconds per replica, about nothing);
- FastAPI's OpenTelemetry metrics: the Prometheus series (api/metrics.py) are
  the platform's;
- FastAPI's OpenTelemetry log records of failures, which carry exception
  messages: logs go through dialtone's JSON logging, which drops secret fields;
- auto-configuration from the environment: the composition root sets the
  provider, once, for every component of the process.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from fastapi.telemetry import TelemetryConfig

UNTRACED_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})


def untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED_PATHS


def telemetry() -> TelemetryConfig:
    """The API's ``FastAPI(telemetry=...)`` settings."""
    return {"tracing": True, "operation_spans": True, "metrics": False, "logs": False,
            "auto_configure": False, "exclude": untraced}
