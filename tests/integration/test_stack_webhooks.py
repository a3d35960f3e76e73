"""`dialtone webhooks` in the compose stack (docs/webhooks.md, "Where deliveries run").

With Kafka configured `dialtone up` delivers no webhooks: only `dialtone webhooks`
does, so the stack must run it, scrape it like the relay, let it out to the
integrators' endpoints and give it a Kafka user of its own that kafka-init
provisions with what its consumer group needs and nothing more. That the real
broker serves those ACLs to it: test_compose_file.py (the compose broker test).
"""

from __future__ import annotations

from typing import Any

from kafka.admin import ACL, ACLOperation, ACLResourcePatternType, ResourceType

from dialtone.commands.webhooks import topics
from dialtone.services.kafka_acls import accounts_from_env, acls_for
from streams.webhooks import CONSUMER_GROUP
from tests.integration.stack_support import scrape_targets, stack

__all__ = ["stack"]  # the fixture, shared


def test_the_stack_runs_webhook_delivery_from_the_dialtone_image(stack: dict[str, Any]) -> None:
    services = stack["services"]
    webhooks = services["webhooks"]
    assert webhooks["command"] == ["webhooks"]
    assert webhooks["image"] == services["relay"]["image"]
    env = webhooks["environment"]
    assert env["DIALTONE_KAFKA_BOOTSTRAP"] == "kafka:19092"  # else it refuses to start
    assert "OTEL_SERVICE_NAME" not in env  # traces named dialtone-webhooks, by the command
    assert env["DIALTONE_WEBHOOK_ALLOW_NETS"] == ""  # public endpoints only, by default


def test_prometheus_scrapes_webhooks_on_its_metrics_port(stack: dict[str, Any]) -> None:
    env = stack["services"]["webhooks"]["environment"]
    assert scrape_targets(stack)["webhooks"] == [f"webhooks:{env['DIALTONE_METRICS_PORT']}"]
    assert env["DIALTONE_METRICS_HOST"] == "0.0.0.0"


def test_webhook_delivery_can_reach_the_internet(stack: dict[str, Any]) -> None:
    """The integrators' endpoints are public: the service shares no other container's
    network namespace (nor `none`) and is on no `internal` network, which Docker gives
    no route out. Private addresses are refused by the application's SSRF guard."""
    webhooks = stack["services"]["webhooks"]
    assert "network_mode" not in webhooks
    networks = webhooks.get("networks") or {"default": None}
    assert networks
    for name in networks:
        assert not stack["networks"][name].get("internal"), name


def _allows(acls: list[ACL], operation: ACLOperation, resource: ResourceType, name: str) -> bool:
    for acl in acls:
        pattern = acl.resource_pattern
        if acl.operation not in (operation, ACLOperation.ALL) or \
                pattern.resource_type != resource:
            continue
        if pattern.pattern_type == ACLResourcePatternType.PREFIXED:
            if name.startswith(pattern.resource_name):
                return True
        elif pattern.resource_name in (name, "*"):
            return True
    return False


def test_kafka_init_lets_webhooks_read_its_topics_in_its_group_and_nothing_more(
    stack: dict[str, Any],
) -> None:
    """The user kafka-init provisions from its environment (dialtone/services/kafka_acls.py)
    under the name and password the webhooks service logs in with: it may read (and
    create, as its consumer asks to when it starts before the relay) every topic
    `dialtone webhooks` subscribes to, in its own consumer group; it writes nothing
    and joins no other service's group."""
    init_env = stack["services"]["kafka-init"]["environment"]
    env = stack["services"]["webhooks"]["environment"]
    prefix = env.get("DIALTONE_TOPIC_PREFIX", "")
    assert init_env.get("DIALTONE_TOPIC_PREFIX", "") == prefix
    (account,) = [a for a in accounts_from_env(init_env)
                  if a.username == env["DIALTONE_KAFKA_SASL_USERNAME"]]
    assert account.password == env["DIALTONE_KAFKA_SASL_PASSWORD"]
    acls = acls_for(account, prefix)
    for topic in topics(prefix):
        for operation in (ACLOperation.READ, ACLOperation.DESCRIBE, ACLOperation.CREATE):
            assert _allows(acls, operation, ResourceType.TOPIC, topic), (topic, operation)
        for operation in (ACLOperation.WRITE, ACLOperation.DELETE, ACLOperation.ALTER):
            assert not _allows(acls, operation, ResourceType.TOPIC, topic), (topic, operation)
    group = f"{prefix}{CONSUMER_GROUP}"
    assert _allows(acls, ACLOperation.READ, ResourceType.GROUP, group)
    for other in ("dialtone-projections", "integrator-crm", "dialtone-webhooks-other"):
        assert not _allows(acls, ACLOperation.READ, ResourceType.GROUP, f"{prefix}{other}")
    assert {acl.resource_pattern.resource_type for acl in acls} == {
        ResourceType.TOPIC, ResourceType.GROUP}  # no transactional id: it never produces
