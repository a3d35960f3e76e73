"""dialtone.logs: a stdlib log record comes out as one JSON object in the schema,
with the context bound for the request, and never a secret-named field."""

from __future__ import annotations

import io
import json
import logging
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from application import log_context
from dialtone import logs
from dialtone.settings import Settings


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose only handler writes through the JSON formatter to a buffer."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.formatter("api", "json"))
    logger = logging.getLogger("tests.unit.logging")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)


def lines(out: io.StringIO) -> list[dict[str, object]]:
    text = out.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_a_record_is_one_json_object_in_the_schema(captured):
    logger, out = captured
    with log_context.bound(request_id="req-42", tenant="acme"):
        logger.info("relay %s resumes after position %d", "CallService", 17,
                    extra={"position": 17, "call_id": "c-1"})
    logger.warning("after the request")
    [inside, after] = lines(out)
    assert list(inside)[:5] == ["time", "level", "process", "logger", "message"]
    assert inside["message"] == "relay CallService resumes after position 17"
    assert (inside["level"], inside["process"], inside["logger"]) == (
        "info", "api", "tests.unit.logging")
    assert str(inside["time"]).endswith("Z")
    assert (inside["request_id"], inside["tenant"]) == ("req-42", "acme")
    assert (inside["position"], inside["call_id"]) == (17, "c-1")
    assert "request_id" not in after  # unbound with the block
    assert "tenant" not in after


def test_secret_named_fields_are_never_emitted(captured):
    logger, out = captured
    secrets = {"password": "hunter2-pw", "access_token": "tok-abc", "Authorization": "Bearer x1",
               "api_key": "dt_key_zz", "client_secret": "s3cr3t", "refresh_token": "rt-1"}
    logger.info("login attempt", extra={**secrets, "tenant": "acme",
                                        "color_message": "\x1b[36mlogin\x1b[0m"})
    [record] = lines(out)
    raw = out.getvalue()
    for name, value in secrets.items():
        assert name not in record
        assert value not in raw
    assert record["tenant"] == "acme"
    assert "color_message" not in record  # uvicorn's coloured copy of the message


def test_only_schema_fields_can_be_bound():
    with pytest.raises(ValueError, match="password"), log_context.bound(password="x"):
        pass


def test_words_stay_greppable_and_exceptions_are_kept(captured):
    logger, out = captured
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("embedded PostgreSQL stopped — café")
    [record] = lines(out)
    assert "embedded PostgreSQL stopped — café" in out.getvalue()
    assert "RuntimeError: boom" in str(record["exception"])
    assert record["level"] == "error"


def test_the_current_span_is_on_the_line(captured):
    logger, out = captured
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logger.info("inside a span")
    [record] = lines(out)
    assert record["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert record["span_id"] == format(span.get_span_context().span_id, "016x")


def test_format_is_json_off_a_terminal_unless_asked(monkeypatch):
    monkeypatch.delenv(logs.FORMAT_VARIABLE, raising=False)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert logs.chosen_format() == "json"
    monkeypatch.setenv(logs.FORMAT_VARIABLE, "console")
    assert logs.chosen_format() == "console"
    assert logs.chosen_format("json") == "json"


def test_configure_routes_the_root_logger_through_the_schema(capsys):
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        logs.configure("relay", "INFO", "json")
        logging.getLogger("streams.relay").info("published %d", 3)
        [record] = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        assert (record["process"], record["message"]) == ("relay", "published 3")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])


def test_a_process_dying_in_native_code_leaves_its_python_stack_on_stderr() -> None:
    crash = ("import ctypes\nfrom dialtone import logs\nlogs.configure('b2bua')\n"
             "ctypes.string_at(0)\n")  # a read at address 0, as a native library's bug
    died = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True,
                          timeout=60, check=False)
    assert died.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in died.stderr
    assert 'File "<string>", line 4' in died.stderr


def test_a_console_traceback_prints_no_local_variable() -> None:
    """rich's traceback (structlog's default when rich is installed) printed every
    frame's locals: a DSN's password, a webhook secret."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.formatter("api", "console"))
    logger = logging.getLogger("tests.unit.logging.console")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        dsn = "postgresql://dialtone:hunter2-secret@db/dialtone"  # a local of the frame
        raise ConnectionError(f"cannot reach {dsn.split('@')[1]}")
    except ConnectionError:
        logger.exception("lost the database")
    finally:
        logger.removeHandler(handler)
    assert "cannot reach db/dialtone" in out.getvalue()
    assert "hunter2-secret" not in out.getvalue()


@pytest.mark.parametrize("root", ["DEBUG", "INFO", "WARNING"])
def test_kafka_clients_never_log_below_info(root: str) -> None:
    """kafka-python logs its configuration, the SASL password in the text, at DEBUG."""
    config = logs.logging_config("relay", root)
    for name in ("kafka", "aiokafka"):
        assert config["loggers"][name]["level"] == max(logging.getLevelName(root), logging.INFO)


def test_settings_never_print_the_database_url() -> None:
    settings = Settings(database_url="postgresql://dialtone:hunter2-secret@db/dialtone")
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in str(settings)
