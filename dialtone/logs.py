"""Logging for every dialtone process: one JSON object a line, one schema.

Code keeps calling ``logging.getLogger(__name__)``; the root handler's
formatter is structlog's ``ProcessorFormatter``, whose chain turns each stdlib
record into the schema (docs/observability.md, Logs):

    time (ISO 8601, UTC), level, process, logger, message,
    then, when known: tenant, call_id, aggregate_id, position, request_id
    (bound by application.log_context or passed as ``extra=``),
    trace_id and span_id (the current OpenTelemetry span, to jump to the trace),
    exception (the traceback of ``log.exception``).

Never a secret: any field whose name says password, secret, token,
authorization, api key, cookie or credential is dropped, whatever passed it.
The message text itself is the caller's to keep clean (tests/e2e/
test_no_secrets_in_logs.py scans every log of a real run).

Format: JSON unless stderr is a terminal (a person reading: the console
renderer), or ``DIALTONE_LOG_FORMAT`` says ``json`` or ``console``. JSON by
default because processes run under a supervisor, a container runtime or a
test with stderr to a file or a pipe, which is where a collector (Loki's
promtail, the Docker driver) picks lines up; a message's words are kept as
they were (``ensure_ascii`` off), so a grep for a phrase still finds it.

A process that dies in native code (pjsua2, libpq) leaves the Python stack of
each of its threads on stderr (``faulthandler``), beside its last log lines:
without it a B2BUA worker's segmentation fault left no line at all.
"""

from __future__ import annotations

import faulthandler
import logging
import logging.config
import os
import re
import sys
from typing import Any

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

FORMAT_VARIABLE = "DIALTONE_LOG_FORMAT"
FORMATS = ("json", "console")
# A field whose name contains any of these is never emitted.
SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)?|secret|token|authori[sz]ation|api[_-]?key|cookie|credential",
    re.IGNORECASE)
# The schema's order; any other field (``extra=``) follows these.
ORDER = ("time", "level", "process", "logger", "message", "tenant", "call_id",
         "aggregate_id", "position", "request_id", "trace_id", "span_id")


def drop_secrets(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """Remove every field whose name looks like it holds a secret."""
    for name in [n for n in event if SECRET_NAME.search(n)]:
        del event[name]
    return event


def drop_decorations(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """uvicorn passes its message again with ANSI colours (``color_message``)."""
    event.pop("color_message", None)
    return event


def add_trace_ids(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """The current span's trace and span ids (hex, as Tempo shows them), if recording."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event


def _process_adder(process: str) -> Processor:
    def add_process(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
        event["process"] = process
        return event
    return add_process


def in_schema_order(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    ordered = {name: event.pop(name) for name in ORDER if name in event}
    ordered.update(event)
    return ordered


def chosen_format(explicit: str | None = None) -> str:
    """``explicit``, else DIALTONE_LOG_FORMAT, else console on a terminal and JSON otherwise."""
    wanted = (explicit or os.environ.get(FORMAT_VARIABLE, "")).strip().lower()
    if wanted in FORMATS:
        return wanted
    return "console" if sys.stderr.isatty() else "json"


def pre_chain(process: str) -> list[Processor]:
    """From a stdlib record to the schema's fields (before rendering)."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        _process_adder(process),
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
        add_trace_ids,
        drop_secrets,
        drop_decorations,
    ]


def formatter(process: str, fmt: str = "json") -> structlog.stdlib.ProcessorFormatter:
    """The root handler's formatter: JSON lines, or the console renderer."""
    renderer: list[Processor]
    if fmt == "console":
        # A plain traceback: the default (rich's, when installed) prints every frame's
        # local variables, a DSN's password or a webhook secret among them.
        renderer = [structlog.dev.ConsoleRenderer(
            colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback)]
    else:
        renderer = [structlog.processors.format_exc_info,
                    structlog.processors.EventRenamer("message"),
                    in_schema_order,
                    structlog.processors.JSONRenderer(ensure_ascii=False)]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain(process),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer],
    )


def logging_config(process: str, level: str | int = "INFO",
                   fmt: str | None = None) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dictionary: one stderr handler on the root
    with the schema's formatter. Faust's Worker takes it too (``logging_config``),
    so its own logging setup does not replace ours."""
    return {
        "version": 1,
        "disable_existing_loggers": False,  # module loggers made at import time stay
        "formatters": {"dialtone": {"()": lambda: formatter(process, chosen_format(fmt))}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "dialtone",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper() if isinstance(level, str) else level,
                 "handlers": ["stderr"]},
        # kafka-python and aiokafka log their whole configuration at DEBUG, the SASL
        # password in the text (where drop_secrets, which reads field names, cannot
        # see it): never below INFO, whatever the root's level.
        "loggers": {name: {"level": max(_numeric(level), logging.INFO)}
                    for name in CLIENT_LOGGERS},
    }


CLIENT_LOGGERS = ("kafka", "aiokafka")


def _numeric(level: str | int) -> int:
    number = level if isinstance(level, int) else logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    return number


def configure(process: str, level: str | int = "INFO", fmt: str | None = None) -> None:
    """Set up logging for this process (``process``: api, up, relay, worker, router,
    b2bua, ...). Replaces whatever root handlers there were."""
    faulthandler.enable(2)  # fd 2, the process's own stderr, even under a capture
    logging.config.dictConfig(logging_config(process, level, fmt))
    structlog.configure(  # for code that logs through structlog itself
        processors=[*pre_chain(process), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
