"""The file a worker stopped in an outage keeps its unstored commands in
(adapters/sip/store/unstored.py): the same values back, in order; nothing to
keep removes it; anything else in it is refused rather than replayed, and set
aside rather than deleted; an old pickle file is never unpickled."""

from __future__ import annotations

import dataclasses
import json
import pickle
import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from adapters.sip.store import unstored
from application.call_control import AuditLink
from domain.call_commands import CallCommand, EndCall, InitiateCall, RingCall
from domain.values import Disposition, HangupSide


def test_kept_commands_come_back_equal_and_in_order(tmp_path: Path) -> None:
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    begun = InitiateCall.inbound(sip_call_id="abc@host", caller="sip:1@a", callee="1000",
                                 occurred_at=now)
    ended = EndCall(call_id=begun.call_id, occurred_at=now, disposition=Disposition.ANSWERED,
                    hangup_cause="bye", hangup_side=HangupSide.CALLER, sip_status=None)
    path = unstored.unstored_path(tmp_path, "127.0.0.1", 5070)
    assert unstored.load(path) == []
    unstored.save(path, [begun, ended])
    assert unstored.load(path) == [begun, ended]
    assert not path.with_suffix(".partial").exists()
    unstored.save(path, [])
    assert not path.exists()


def test_a_file_without_call_commands_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "unstored.pickle"
    path.write_bytes(pickle.dumps(["not a command"]))
    with pytest.raises(ValueError, match="does not hold call commands"):
        unstored.load(path)


# The explicit format (JSON lines, versioned): every command, any damage refused.


def _all_command_classes() -> set[type[CallCommand]]:
    found: set[type[CallCommand]] = set()
    pending = list(CallCommand.__subclasses__())
    while pending:
        command = pending.pop()
        found.add(command)
        pending.extend(command.__subclasses__())
    return {c for c in found if c.__module__ == "domain.call_commands"}


def _sample(kind: Any, variant: int) -> object:
    """A value of an annotated field type; ``variant`` 1 picks None where allowed.
    A type with no case here fails: a new kind of field needs its codec first."""
    if isinstance(kind, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return None if variant == 1 else _sample(options[0], variant)
    if isinstance(kind, type) and issubclass(kind, Enum):
        members = list(kind)
        return members[variant % len(members)]
    samples: dict[Any, object] = {
        UUID: uuid4(),
        # Microseconds and an offset other than UTC: both must come back as they were.
        datetime: datetime(2026, 12, 3, 14, 5, 6, 789012, tzinfo=timezone(timedelta(hours=-5))),
        str: "caller \u00e9\u4e2d \"quoted\"\n",
        int: 486,
        float: 0.1 + 0.2,
        bool: True,
    }
    if kind not in samples:
        raise AssertionError(f"no sample (and no codec) for field type {kind!r}")
    return samples[kind]


def _instances(command: type[CallCommand]) -> list[CallCommand]:
    hints = typing.get_type_hints(command)
    made = []
    for variant in (0, 1):
        values: dict[str, Any] = {f.name: _sample(hints[f.name], variant)
                                  for f in dataclasses.fields(command) if f.name != "cause"}
        cause = AuditLink(uuid4(), "control-1", "req-1") if variant == 0 else None
        made.append(command(**values, cause=cause))
    return made


def test_every_call_command_has_a_codec() -> None:
    assert set(unstored.COMMANDS.values()) == _all_command_classes()


@pytest.mark.parametrize("command", [c for _, c in sorted(unstored.COMMANDS.items())],
                         ids=sorted(unstored.COMMANDS))
def test_every_command_comes_back_equal_with_its_cause(tmp_path: Path,
                                                       command: type[CallCommand]) -> None:
    path = unstored.unstored_path(tmp_path, "127.0.0.1", 5070)
    kept = _instances(command)

    unstored.save(path, kept)
    back = unstored.load(path)

    assert back == kept
    assert [type(c) for c in back] == [type(c) for c in kept]
    assert [c.cause for c in back] == [c.cause for c in kept]  # not compared by ==
    header, *lines = (json.loads(line) for line in path.read_text().splitlines())
    assert header == {"format": unstored.FORMAT, "version": unstored.VERSION, "count": 2}
    assert [line["type"] for line in lines] == [command.__name__] * 2


def test_a_cause_that_is_not_an_audit_link_is_dropped_not_the_command(tmp_path: Path) -> None:
    path = tmp_path / "unstored.jsonl"
    command = RingCall(uuid4(), datetime.now(UTC), cause=("not", "a link"))

    unstored.save(path, [command])

    (back,) = unstored.load(path)
    assert back == command
    assert back.cause is None


def test_whatever_save_writes_load_reads_a_time_without_zone_too(tmp_path: Path) -> None:
    path = tmp_path / "unstored.jsonl"
    command = RingCall(uuid4(), datetime(2026, 12, 3, 14, 0, 0, 1))  # naive

    unstored.save(path, [command])

    assert unstored.load(path) == [command]


def _kept_file(tmp_path: Path) -> Path:
    path = unstored.unstored_path(tmp_path, "127.0.0.1", 5070)
    unstored.save(path, [*_instances(EndCall), *_instances(InitiateCall)])
    return path


def _edit_line(path: Path, number: int, edit: Callable[[dict[str, Any]], None]) -> None:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    edit(lines[number])
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def _assert_refused(path: Path, match: str) -> None:
    original = path.read_bytes()
    with pytest.raises(unstored.UnstoredFileError, match=match) as refused:
        unstored.load(path)
    assert str(path) in str(refused.value)
    assert not path.exists()  # out of the next start's way...
    assert refused.value.aside.read_bytes() == original  # ...kept as it was, for the operator
    assert str(refused.value.aside) in str(refused.value)
    assert unstored.load(path) == []


@pytest.mark.parametrize(("damage", "match"), [
    (lambda lines: lines[:-1], "counts 4 commands, the file holds 3"),
    (lambda lines: [*lines[:2], lines[2][:40]], "line 3"),
    (lambda _lines: [], "empty"),
    (lambda lines: ["\x00\x01garbage", *lines], "no header naming the format"),
])
def test_a_damaged_file_is_refused_and_kept_aside(
    tmp_path: Path, damage: Callable[[list[str]], list[str]], match: str
) -> None:
    path = _kept_file(tmp_path)
    path.write_text("".join(line + "\n" for line in damage(path.read_text().splitlines())))

    _assert_refused(path, match)


@pytest.mark.parametrize(("edit", "match"), [
    (lambda line: line.update(type="PickleMe"), "line 2: KeyError: 'PickleMe'"),
    (lambda line: line["fields"].update(sip_status="486"), "'486' is not a int"),
    (lambda line: line["fields"].update(occurred_at="3 Dec 2026"), "Invalid isoformat"),
    (lambda line: line["fields"].update(disposition="bogus"), "not a valid Disposition"),
    (lambda line: line["fields"].pop("hangup_side"), "are not"),
    (lambda line: line["fields"].update(extra=1), "are not"),
    (lambda line: line.update(cause={"call_id": "x"}), "not an audit link"),
])
def test_a_line_that_does_not_match_its_command_is_refused(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], match: str
) -> None:
    path = _kept_file(tmp_path)
    _edit_line(path, 1, edit)

    _assert_refused(path, match)


def test_a_file_of_an_unknown_version_is_refused(tmp_path: Path) -> None:
    path = _kept_file(tmp_path)
    _edit_line(path, 0, lambda header: header.update(version=unstored.VERSION + 1))

    _assert_refused(path, f"version {unstored.VERSION + 1}, this dialtone reads")


class _RunsCode:
    """Unpickling this runs code: what an old-format file is never given the chance to."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_an_old_pickle_file_is_set_aside_unread_and_the_new_file_still_loads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _kept_file(tmp_path)
    legacy = path.with_suffix(".pickle")
    marker = tmp_path / "unpickled"
    legacy.write_bytes(pickle.dumps([_RunsCode(marker)]))

    assert len(unstored.load(path)) == 4

    assert not marker.exists()
    assert not legacy.exists()
    (aside,) = legacy.parent.glob(f"{legacy.name}.refused-*")
    pickle.loads(aside.read_bytes())  # what load did not do: the proof it would run code
    assert marker.exists()
    assert f"{legacy} was written by an older dialtone in the pickle format" in caplog.text


def test_a_pickle_where_the_new_file_should_be_is_refused_unread(tmp_path: Path) -> None:
    path = unstored.unstored_path(tmp_path, "127.0.0.1", 5070)
    path.parent.mkdir(parents=True)
    marker = tmp_path / "unpickled"
    path.write_bytes(pickle.dumps([_RunsCode(marker)]))

    _assert_refused(path, "a pickle, written by an older dialtone; not read")
    assert not marker.exists()
