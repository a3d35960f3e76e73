"""Commands a worker could not store before it stopped, kept on disk for its next start.

A worker stopping while the event store is down cannot drain its buffer, and
waiting for the store has to end: its supervisor (the pool, Kubernetes' grace
period) kills it after a while, and a killed worker loses its whole buffer.
So a stop waits a bounded time, then writes what is left here, one file per
worker identity (``host:port``), and exits. The worker restarted on the same
address queues those commands first, stores them once the store answers, and
only then removes the file and ends what its predecessor left open (lost
calls): the calls of the outage keep their real history (answered, ended by
the caller) instead of losing it or being ended as ``worker_lost``.

The format is explicit and versioned, so a file written before an upgrade is
read by the code after it, or refused by name, never misread: JSON lines, the
first a header (``{"format": FORMAT, "version": VERSION, "count": n}``), then one
command a line, ``{"type": <class name>, "fields": {...}, "cause": ...}``. Only the
classes in ``COMMANDS`` are read, their fields by their annotations (UUID and
datetime as ISO text, enums by value); ``cause`` is the ``AuditLink`` of the API
command behind the command, or null (any other cause is dropped with a warning:
only that audit link is lost, as when linking fails). Written atomically
(temporary file, fsync, rename): a stop killed while writing leaves the previous
file or none, never half of one.

A file that is not that format (damaged, another version, a foreign line) is
refused: ``load`` moves it aside (``<name>.refused-<UTC time>``, kept for the
operator, never deleted) and raises ``UnstoredFileError`` naming both paths.
The pickle file of older versions (``unstored-<host>-<port>.pickle``) is never
unpickled (unpickling runs code from the file): ``load`` sets it aside the same
way and logs an error; its commands are not replayed, and the calls they were
about are ended as the previous worker's lost calls.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import types
import typing
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any
from uuid import UUID

from application.call_control import AuditLink
from domain.call_commands import COMMANDS as COMMAND_CLASSES
from domain.call_commands import CallCommand

log = logging.getLogger(__name__)

FORMAT = "dialtone/unstored-call-commands"
VERSION = 1

# The commands a file may hold, by the name written for each: every command value
# (domain/call_commands.py registers each one as it is defined). A field type with
# no codec below fails tests/unit/test_unstored_commands.py.
COMMANDS: dict[str, type[CallCommand]] = {command.__name__: command
                                          for command in COMMAND_CLASSES}

_ENVELOPE = frozenset({"cause"})  # not a field of the value written in "fields"


class UnstoredFileError(ValueError):
    """The file is not one this version reads; it has been set aside (``aside``)."""

    def __init__(self, path: Path, why: str, aside: Path) -> None:
        super().__init__(f"{path} does not hold call commands in the {FORMAT} v{VERSION} "
                         f"format ({why}); set aside as {aside}, its commands not replayed")
        self.path = path
        self.aside = aside


def unstored_path(data_dir: Path, host: str, port: int) -> Path:
    """Where the worker serving SIP on ``host:port`` keeps what it could not store."""
    return data_dir / "b2bua" / f"unstored-{host}-{port}.jsonl"


def save(path: Path, commands: Sequence[CallCommand]) -> None:
    """Keep ``commands`` (oldest first) for the next start; none: remove the file."""
    if not commands:
        discard(path)
        return
    lines = [_header(len(commands)), *(_encode_command(command) for command in commands)]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(line, separators=(",", ":")) + "\n" for line in lines)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    log.warning("%d commands not stored (event store unavailable): kept in %s for the "
                "next start on this address", len(commands), path)


def load(path: Path) -> list[CallCommand]:
    """The commands a previous stop kept (oldest first); none when there is no file.
    Raises UnstoredFileError (the file set aside) when the file is not this format."""
    _set_aside_legacy(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    try:
        return _decode_file(data)
    except (ValueError, TypeError, KeyError) as error:
        raise UnstoredFileError(path, str(error), _set_aside(path)) from None


def discard(path: Path) -> None:
    """Forget the file (its commands are stored)."""
    path.unlink(missing_ok=True)


def _set_aside(path: Path) -> Path:
    """Move a refused file out of the way, kept for the operator; its new path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    aside = path.with_name(f"{path.name}.refused-{stamp}")
    os.replace(path, aside)
    return aside


def _set_aside_legacy(path: Path) -> None:
    """An older version's pickle file beside ``path``: set aside, never unpickled."""
    legacy = path.with_suffix(".pickle")
    if legacy == path or not legacy.exists():
        return
    aside = _set_aside(legacy)
    log.error("%s was written by an older dialtone in the pickle format, which is not read "
              "(unpickling runs code from the file): set aside as %s, its commands not "
              "replayed", legacy, aside)


# Encoding.


def _header(count: int) -> dict[str, Any]:
    return {"format": FORMAT, "version": VERSION, "count": count}


def _encode_command(command: CallCommand) -> dict[str, Any]:
    name = type(command).__name__
    if COMMANDS.get(name) is not type(command):
        raise TypeError(f"{name} is not a command this file format knows")
    fields = {field: _encode_value(value) for field, value in vars(command).items()
              if field not in _ENVELOPE}
    return {"type": name, "fields": fields, "cause": _encode_cause(command)}


def _encode_value(value: object) -> object:
    if isinstance(value, Enum):  # before str: the enums are StrEnums
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"no encoding for {type(value).__name__} values")


def _encode_cause(command: CallCommand) -> dict[str, str] | None:
    cause = command.cause
    if cause is None:
        return None
    if isinstance(cause, AuditLink):
        return {"call_id": str(cause.call_id), "control_id": cause.control_id,
                "request_id": cause.request_id}
    log.warning("the cause of %s (%s) is not an audit link: not kept", type(command).__name__,
                type(cause).__name__)
    return None


# Decoding: every line checked against the header, the registry and the annotations.


def _decode_file(data: bytes) -> list[CallCommand]:
    if data[:1] == b"\x80":
        raise ValueError("a pickle, written by an older dialtone; not read: unpickling runs "
                         "code from the file")
    lines = data.decode("utf-8").splitlines()
    if not lines:
        raise ValueError("empty")
    try:
        header = json.loads(lines[0])
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError("no header naming the format on its first line")
    if header.get("version") != VERSION:
        raise ValueError(f"version {header.get('version')!r}, this dialtone reads {VERSION}")
    commands = [_decode_line(number, text) for number, text in enumerate(lines[1:], start=2)]
    if header.get("count") != len(commands):
        raise ValueError(f"the header counts {header.get('count')!r} commands, "
                         f"the file holds {len(commands)}")
    return commands


def _decode_line(number: int, text: str) -> CallCommand:
    try:
        line = json.loads(text)
        command = COMMANDS[line["type"]]
        values = line["fields"]
        hints = _field_types(command)
        if not isinstance(values, dict) or set(values) != set(hints):
            raise ValueError(f"fields {sorted(values)} are not {sorted(hints)}")
        decoded: dict[str, Any] = {name: _decode_value(hints[name], values[name]) for name in hints}
        return command(**decoded, cause=_decode_cause(line["cause"]))
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"line {number}: {type(error).__name__}: {error}") from None


def _field_types(command: type[CallCommand]) -> dict[str, Any]:
    """The annotated type of each field written (``cause`` and class constants aside)."""
    annotated = _FIELD_TYPES.get(command)
    if annotated is None:  # once per class
        hints = typing.get_type_hints(command)
        annotated = _FIELD_TYPES[command] = {
            f.name: hints[f.name] for f in dataclasses.fields(command) if f.name not in _ENVELOPE}
    return annotated


_FIELD_TYPES: dict[type[CallCommand], dict[str, Any]] = {}


def _decode_value(kind: Any, value: object) -> object:
    options = typing.get_args(kind) if isinstance(kind, types.UnionType) else (kind,)
    if value is None:
        if type(None) not in options:
            raise TypeError("null for a field that cannot be null")
        return None
    (concrete,) = [option for option in options if option is not type(None)]
    return _decode_concrete(concrete, value)


def _decode_concrete(kind: type, value: object) -> object:
    if isinstance(kind, type) and issubclass(kind, Enum):
        return kind(value)
    if kind is UUID and isinstance(value, str):
        return UUID(value)
    if kind is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)  # with its offset, as written
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is str and isinstance(value, str):
        return value
    raise TypeError(f"{value!r} is not a {getattr(kind, '__name__', kind)}")


def _decode_cause(value: object) -> AuditLink | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"call_id", "control_id", "request_id"}:
        raise ValueError(f"cause {value!r} is not an audit link")
    return AuditLink(UUID(value["call_id"]), str(value["control_id"]),
                     str(value["request_id"]))
