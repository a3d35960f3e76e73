"""Kafka users and ACLs for dialtone's services: who may read and write what.

Every service authenticates with its own SASL/SCRAM-SHA-512 user and the broker
denies whatever an ACL does not allow (deny by default, as Kubernetes RBAC):

- ``relay`` writes the aggregate topics (``dialtone.*``), inside transactions
  whose ids start ``dialtone-relay-`` (``dialtone-republish-`` when it
  republishes a range); it creates those topics and reads their
  tail back on start to find where to resume.
- ``worker`` (the Faust projections) reads the aggregate topics in its consumer
  group, writes only the dead-letter topics (``dialtone.<kind>.v1.dlq``), and
  owns the topics Faust keeps for itself (``dialtone-projections-*``). It may
  create the aggregate topics (Faust declares its source topics when it starts
  before the relay) but never write them.
- ``integrator`` reads the aggregate topics, in consumer groups whose names
  start ``integrator-``; it writes nothing.
- ``webhooks`` (``dialtone webhooks``) reads the aggregate topics in its one
  consumer group (``dialtone-webhooks``, streams/webhooks.py); it writes nothing.
  It may create the aggregate topics, as the worker may: its kafka-python
  consumer asks for them to be created when it subscribes, and a consumer
  refused that for a topic the relay has not made yet is never assigned a
  partition, of that topic or any other (so it would deliver nothing).

The same table provisions docker-compose.yml's broker (the ``kafka-init``
service runs ``python -m dialtone.services.kafka_acls``) and the e2e tests'
broker (tests/fixtures/kafka.py), so what the tests prove is what is deployed.
Provisioning goes through an administrative connection that is a super user:
the broker's loopback PLAINTEXT listener (see infra/kafka/scram.properties.template).
Running it again is harmless: credentials are upserted and existing ACLs stay.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourceType,
    UserScramCredentialUpsertion,
)

from dialtone.composition import PROJECTION_GROUPS
from streams.topics import dead_letter_topic, topic_for
from streams.webhooks import CONSUMER_GROUP as WEBHOOKS_GROUP

log = logging.getLogger(__name__)

MECHANISM = "SCRAM-SHA-512"
ROLES = ("relay", "worker", "integrator", "webhooks")
INTEGRATOR_GROUP_PREFIX = "integrator-"
_PREFIXED = ACLResourcePatternType.PREFIXED
_LITERAL = ACLResourcePatternType.LITERAL
_R, _W, _C, _D, _ALL = (ACLOperation.READ, ACLOperation.WRITE, ACLOperation.CREATE,
                        ACLOperation.DESCRIBE, ACLOperation.ALL)


@dataclass(frozen=True)
class Account:
    role: str
    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown Kafka role {self.role!r} (one of {ROLES})")
        if len(self.password) < 12:
            raise ValueError(f"the Kafka password of {self.username!r} needs 12+ characters")


@dataclass(frozen=True)
class Grant:
    resource: ResourceType
    name: str
    pattern: ACLResourcePatternType
    operations: tuple[ACLOperation, ...]


def grants(role: str, topic_prefix: str = "") -> list[Grant]:
    """What ``role`` may do; ``topic_prefix`` is DIALTONE_TOPIC_PREFIX."""
    topics = f"{topic_prefix}dialtone."
    worker_app = f"{topic_prefix}dialtone-projections"
    if role == "relay":
        # Transactional ids: the live relay's, and `dialtone relay --from-position`'s
        # republishing one (streams/relay.py), so neither fences the other.
        return [Grant(ResourceType.TOPIC, topics, _PREFIXED, (_W, _R, _D, _C)),
                *[Grant(ResourceType.TRANSACTIONAL_ID, f"{topic_prefix}dialtone-{kind}-",
                        _PREFIXED, (_W, _D)) for kind in ("relay", "republish")]]
    if role == "worker":
        dead_letters = [Grant(ResourceType.TOPIC, dead_letter_topic(topic_for(kind, topic_prefix)),
                              _LITERAL, (_W, _D, _C)) for kind in _projected_kinds()]
        return [Grant(ResourceType.TOPIC, topics, _PREFIXED, (_R, _D, _C)),
                *dead_letters,
                Grant(ResourceType.GROUP, worker_app, _LITERAL, (_R, _D)),
                Grant(ResourceType.TOPIC, f"{worker_app}-", _PREFIXED, (_ALL,))]
    if role == "integrator":
        return [Grant(ResourceType.TOPIC, topics, _PREFIXED, (_R, _D)),
                Grant(ResourceType.GROUP, f"{topic_prefix}{INTEGRATOR_GROUP_PREFIX}", _PREFIXED,
                      (_R, _D))]
    if role == "webhooks":
        return [Grant(ResourceType.TOPIC, topics, _PREFIXED, (_R, _D, _C)),
                Grant(ResourceType.GROUP, f"{topic_prefix}{WEBHOOKS_GROUP}", _LITERAL, (_R, _D))]
    raise ValueError(f"unknown Kafka role {role!r}")


def acls_for(account: Account, topic_prefix: str = "") -> list[ACL]:
    principal = f"User:{account.username}"
    return [ACL(principal, "*", operation, ACLPermissionType.ALLOW,
                ResourcePattern(grant.resource, grant.name, grant.pattern))
            for grant in grants(account.role, topic_prefix) for operation in grant.operations]


def provision(admin_bootstrap: str, accounts: Sequence[Account], topic_prefix: str = "") -> None:
    """Create or update the accounts' SCRAM credentials and their ACLs."""
    admin = KafkaAdminClient(bootstrap_servers=admin_bootstrap, client_id="dialtone-kafka-acls")
    try:
        errors = admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion(a.username, MECHANISM, a.password) for a in accounts])
        failed = {user: error for user, error in errors.items() if error}
        if failed:
            raise RuntimeError(f"SCRAM credentials refused: {failed}")
        acls = [acl for account in accounts for acl in acls_for(account, topic_prefix)]
        result = admin.create_acls(acls)
        if result["failed"]:
            raise RuntimeError(f"ACLs refused: {result['failed']}")
    finally:
        admin.close()
    for account in accounts:
        log.info("Kafka user %s (%s): credentials and %d ACLs in place", account.username,
                 account.role, len(acls_for(account, topic_prefix)))


def accounts_from_env(environ: dict[str, str] | os._Environ[str]) -> list[Account]:
    """``KAFKA_<ROLE>_PASSWORD`` (required) and ``KAFKA_<ROLE>_USERNAME`` (default: the role)."""
    accounts = []
    for role in ROLES:
        password = environ.get(f"KAFKA_{role.upper()}_PASSWORD")
        if not password:
            raise SystemExit(f"set KAFKA_{role.upper()}_PASSWORD")
        accounts.append(Account(role, environ.get(f"KAFKA_{role.upper()}_USERNAME", role),
                                password))
    return accounts


def main() -> None:
    """The docker-compose ``kafka-init`` job: provision from the environment, then exit."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    provision(os.environ.get("KAFKA_ADMIN_BOOTSTRAP", "127.0.0.1:9094"),
              accounts_from_env(os.environ), os.environ.get("DIALTONE_TOPIC_PREFIX", ""))


def _projected_kinds() -> Iterable[str]:
    return sorted({kind for group in PROJECTION_GROUPS for kind in group.kinds})


if __name__ == "__main__":
    main()
