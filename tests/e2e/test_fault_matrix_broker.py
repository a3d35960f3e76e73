"""The fault matrix, the Kafka broker killed and restarted under load.

tests/fixtures/matrix_stack.py: a stack of its own (the case kills its broker).
Services may exit while the broker is away and are started again by the
supervisor the test plays; nothing may be lost.
"""

from __future__ import annotations

import pytest

from tests.fixtures.matrix_stack import Stack, kill_kafka, run_case

pytestmark = [pytest.mark.kafka, pytest.mark.sip]


def test_kafka_broker_killed_and_restarted(kafka_stack: Stack,
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    run_case(kafka_stack, "kafka-killed", kill_kafka, None, tmp_path_factory, may_exit=True)
