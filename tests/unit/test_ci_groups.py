"""How tests/conftest.py groups the pooled tests for ``--dist loadgroup`` (./dev test):
a module stays on one worker, and so does every module sharing a session server
with it, so no worker starts a second broker or Redis for them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pytest

from tests.conftest import pooled_groups


@dataclass(eq=False)
class FakeItem:
    """What pooled_groups reads of a test: the fixtures it uses."""

    fixturenames: tuple[str, ...]


def groups_of(*tests: tuple[str, tuple[str, ...]]) -> list[str]:
    pooled = [(where, cast(pytest.Item, FakeItem(fixtures))) for where, fixtures in tests]
    return [group for _, group in pooled_groups(cast(Any, pooled))]


def test_a_module_without_session_servers_is_a_group_of_its_own() -> None:
    assert groups_of(("tests/a.py", ("sipp",)), ("tests/a.py", ()),
                     ("tests/b.py", ("b2bua",))) == ["tests/a.py", "tests/a.py", "tests/b.py"]


def test_modules_sharing_a_session_server_share_a_group() -> None:
    assert groups_of(("tests/a.py", ("kafka_bootstrap",)), ("tests/b.py", ("sipp",)),
                     ("tests/c.py", ("kafka_broker",)), ("tests/d.py", ("redis_server",))
                     ) == ["kafka", "tests/b.py", "kafka", "redis"]


def test_one_test_using_two_servers_joins_their_modules_and_the_whole_module() -> None:
    # c.py's second test uses the killable broker too: every user of either broker,
    # and c.py's first test, end up in one group.
    assert groups_of(("tests/a.py", ("killable_kafka_broker",)),
                     ("tests/c.py", ("sipp",)),
                     ("tests/c.py", ("kafka_broker", "killable_kafka_broker")),
                     ("tests/e.py", ("kafka_bootstrap",))
                     ) == ["kafka+kafka-killable"] * 4
