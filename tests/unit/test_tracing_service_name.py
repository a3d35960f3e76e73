"""application.tracing.service_name: the traces are named after the command, unless
the operator sets OpenTelemetry's own OTEL_SERVICE_NAME."""

from __future__ import annotations

import pytest

from application.tracing import service_name


def test_the_service_name_is_the_commands_unless_otel_service_name_is_set(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    assert service_name("relay") == "dialtone-relay"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "relay-eu-west")
    assert service_name("relay") == "relay-eu-west"
