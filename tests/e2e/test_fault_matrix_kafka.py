"""The fault matrix, Kafka deployment: each service SIGKILLed, then SIGTERMed, under load.

Services: `dialtone relay`, `dialtone worker` (Faust), `dialtone router`,
`dialtone b2bua`, `dialtone api`, on one stack for the module
(tests/fixtures/matrix_stack.py says what runs, what load, what is checked).
"""

from __future__ import annotations

from functools import partial

import pytest

from tests.fixtures.matrix_stack import SERVICES, Stack, kill_service, run_case, terminate_service

pytestmark = [pytest.mark.kafka, pytest.mark.sip]


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("signal", ["sigkill", "sigterm"])
def test_service_fault(kafka_stack: Stack, signal: str, service: str,
                       tmp_path_factory: pytest.TempPathFactory) -> None:
    fault = kill_service if signal == "sigkill" else terminate_service
    run_case(kafka_stack, f"{signal}-{service}", partial(fault, name=service), service,
             tmp_path_factory)
