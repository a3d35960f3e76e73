"""The fault matrix, PostgreSQL killed and restarted under load.

tests/fixtures/matrix_stack.py: a stack of its own (the case kills its server).
Services may exit while the database is away (the relay does) and are started
again by the supervisor the test plays; nothing may be lost.
"""

from __future__ import annotations

import pytest

from tests.fixtures.matrix_stack import Stack, kill_postgres, run_case

pytestmark = [pytest.mark.kafka, pytest.mark.sip]


def test_postgres_killed_and_restarted(kafka_stack: Stack,
                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    run_case(kafka_stack, "postgres-killed", kill_postgres, None, tmp_path_factory,
             may_exit=True)
