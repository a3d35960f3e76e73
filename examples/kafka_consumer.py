"""A small dialtone event consumer for integrators (kafka-python + jsonschema).

Reads dialtone's topics as a consumer group, checks every message against the
published JSON Schema of its topic (docs/schemas/), and prints one JSON line
per event. What it shows:

- read with ``isolation_level="read_committed"``: the relay writes in Kafka
  transactions, and an aborted one is re-sent whole;
- the message value is a CloudEvent (structured mode: header ``content-type:
  application/cloudevents+json``, absent on messages published before
  2026-12-02), the key is the aggregate id (= ``subject``); per key, events
  arrive in order;
- delivery is at least once: offsets are committed after the events are
  handled, so deduplicate on the CloudEvents ``id`` (here, in memory);
- ignore ``data`` fields you do not know: they may appear within a version.

Run (needs ``pip install kafka-python jsonschema``) against ``dialtone dev kafka``
(PLAINTEXT, no users, no ACLs)::

    python examples/kafka_consumer.py --bootstrap 127.0.0.1:9092 --max-messages 100

or against the brokers of docker-compose.yml and deploy/k8s, which authenticate
every client with SASL/SCRAM and allow the ``integrator`` user only consumer
groups named ``<prefix>integrator-<name>`` (docs/kafka.md, "Authentication")::

    export KAFKA_SASL_PASSWORD=...   # compose: $KAFKA_INTEGRATOR_PASSWORD
    python examples/kafka_consumer.py --bootstrap localhost:9092 \\
        --security-protocol SASL_PLAINTEXT --username integrator \\
        --group integrator-crm --max-messages 100

The password is read from the environment (``KAFKA_SASL_PASSWORD``), never from
the command line, where other users of the machine could see it (``ps``); each
other connection option may come from the environment too (``KAFKA_*``, below).

It exits after ``--max-messages`` events or ``--idle-timeout`` seconds without
one; exit status 1 if any message did not validate (each is reported on stderr),
2 on a usage error (SASL without a username or password), 3 when Kafka refuses
(no broker reachable, wrong credentials, a group the user may not join).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import jsonschema
from kafka import KafkaConsumer
from kafka.errors import KafkaError

TOPICS = ("calls", "agents", "queues", "ivr-menus", "numbers", "dialplans")
SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "schemas"
CONTENT_TYPE = "application/cloudevents+json"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL")
SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
PASSWORD_ENV = "KAFKA_SASL_PASSWORD"  # noqa: S105 - a variable name, not a password
INTEGRATOR_GROUPS = "integrator-"  # the only groups the integrator user may join


def arguments(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=f"The SASL password comes from the environment variable {PASSWORD_ENV} "
               "(there is no option for it: a command line is visible to every user).")
    parser.add_argument("--bootstrap", default=env("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
                        help="Kafka brokers (env KAFKA_BOOTSTRAP; default: %(default)s)")
    parser.add_argument("--prefix", default="", help="DIALTONE_TOPIC_PREFIX of the deployment")
    parser.add_argument("--topics", default=",".join(TOPICS),
                        help="comma-separated kinds (default: %(default)s)")
    parser.add_argument(
        "--group", help="consumer group. On an authenticated deployment (compose, Kubernetes) "
        f"the integrator user may only use groups named <prefix>{INTEGRATOR_GROUPS}<name>: "
        f"give each consumer of yours its own, e.g. {INTEGRATOR_GROUPS}crm "
        f"(default: <prefix>{INTEGRATOR_GROUPS}example)")
    parser.add_argument(
        "--security-protocol", choices=SECURITY_PROTOCOLS,
        default=env("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
        help="PLAINTEXT (dialtone dev kafka), SASL_PLAINTEXT (compose, Kubernetes base) or "
             "SASL_SSL (TLS, the system's CAs unless --ssl-cafile) "
             "(env KAFKA_SECURITY_PROTOCOL; default: %(default)s)")
    parser.add_argument("--sasl-mechanism", choices=SCRAM_MECHANISMS,
                        default=env("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
                        help="(env KAFKA_SASL_MECHANISM; default: %(default)s)")
    parser.add_argument("--username", default=env("KAFKA_SASL_USERNAME"),
                        help="SASL user, e.g. integrator (env KAFKA_SASL_USERNAME)")
    parser.add_argument("--ssl-cafile", default=env("KAFKA_SSL_CAFILE"),
                        help="CA bundle of the brokers' certificates, with SASL_SSL "
                             "(env KAFKA_SSL_CAFILE)")
    parser.add_argument("--schemas", type=Path, default=SCHEMAS, help="docs/schemas directory")
    parser.add_argument("--max-messages", type=int, default=0, help="stop after N events")
    parser.add_argument("--idle-timeout", type=float, default=10.0,
                        help="stop after this many seconds without a message")
    args = parser.parse_args(argv)
    if args.group is None:
        args.group = f"{args.prefix}{INTEGRATOR_GROUPS}example"
    if args.security_protocol not in SECURITY_PROTOCOLS:  # from the environment
        parser.error(f"KAFKA_SECURITY_PROTOCOL must be one of {', '.join(SECURITY_PROTOCOLS)}")
    if args.sasl_mechanism not in SCRAM_MECHANISMS:
        parser.error(f"KAFKA_SASL_MECHANISM must be one of {', '.join(SCRAM_MECHANISMS)}")
    args.password = env(PASSWORD_ENV) or None
    if args.security_protocol != "PLAINTEXT" and not (args.username and args.password):
        parser.error(f"{args.security_protocol} needs --username (or KAFKA_SASL_USERNAME) "
                     f"and the password in {PASSWORD_ENV}")
    return args


def connection(args: argparse.Namespace) -> dict[str, Any]:
    """kafka-python's keyword arguments for the broker: nothing more for PLAINTEXT, SCRAM
    credentials for SASL (the same ones dialtone's own services pass)."""
    if args.security_protocol == "PLAINTEXT":
        return {}
    found = {"security_protocol": args.security_protocol,
             "sasl_mechanism": args.sasl_mechanism,
             "sasl_plain_username": args.username,
             "sasl_plain_password": args.password}
    if args.security_protocol == "SASL_SSL" and args.ssl_cafile:
        found["ssl_cafile"] = args.ssl_cafile
    return found


def validators(schemas: Path, prefix: str, kinds: list[str]) -> dict[str, Any]:
    """topic -> a validator of its messages (the topic name without the prefix
    names the schema file)."""
    found = {}
    for kind in kinds:
        name = f"dialtone.{kind}.v1"
        schema = json.loads((schemas / f"{name}.schema.json").read_text())
        found[prefix + name] = jsonschema.Draft202012Validator(
            schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return found


def problems(record: Any, validator: Any) -> list[str]:
    """Why `record` is not a valid dialtone event (empty if it is)."""
    headers = {name: value.decode() for name, value in record.headers or []}
    content_type = headers.get("content-type")
    # None: published before dialtone sent the header (2026-12-02); the value is the same.
    if content_type is not None and not content_type.startswith(CONTENT_TYPE):
        return [f"content-type {content_type!r} is not a CloudEvent"]
    try:
        event = json.loads(record.value)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return [f"not JSON: {error}"]
    found = [f"{'/'.join(map(str, e.absolute_path)) or '(event)'}: {e.message}"
             for e in validator.iter_errors(event)]
    if isinstance(event, dict) and (record.key or b"").decode() != event.get("subject"):
        found.append("key is not the event's subject")
    return found


def consume(args: argparse.Namespace) -> int:
    kinds = [k.strip() for k in args.topics.split(",") if k.strip()]
    checks = validators(args.schemas, args.prefix, kinds)
    if (args.security_protocol != "PLAINTEXT"
            and not args.group.startswith(args.prefix + INTEGRATOR_GROUPS)):
        print(f"note: the integrator user may only join groups named "
              f"{args.prefix}{INTEGRATOR_GROUPS}<name>, not {args.group!r}", file=sys.stderr)
    consumer = KafkaConsumer(
        *checks, bootstrap_servers=args.bootstrap, group_id=args.group,
        isolation_level="read_committed", auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=int(args.idle_timeout * 1000),
        **connection(args))
    seen: set[str] = set()  # event ids handled: redeliveries are dropped
    handled = invalid = 0
    try:
        for record in consumer:  # ends after idle_timeout without a message
            found = problems(record, checks[record.topic])
            if found:
                invalid += 1
                print(json.dumps({"topic": record.topic, "partition": record.partition,
                                  "offset": record.offset, "problems": found}),
                      file=sys.stderr)
            else:
                event = json.loads(record.value)
                if event["id"] not in seen:
                    seen.add(event["id"])
                    handled += 1
                    print(json.dumps({"topic": record.topic, "id": event["id"],
                                      "type": event["type"], "subject": event["subject"],
                                      "sequence": event["sequence"], "data": event["data"]}),
                          flush=True)
            consumer.commit()  # after handling: at least once
            if args.max_messages and handled + invalid >= args.max_messages:
                break
    finally:
        consumer.close()
    return 1 if invalid else 0


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    try:
        return consume(args)
    except KafkaError as error:  # unreachable brokers, refused credentials, a forbidden group
        # A broker refusing a SCRAM password just hangs up: kafka-python then reports
        # "Unable to bootstrap" (after about 30 s), as for a wrong address.
        hint = (" (a wrong address, or refused credentials: the broker's log says which)"
                if "bootstrap" in str(error).lower() and args.security_protocol != "PLAINTEXT"
                else "")
        print(f"could not read from Kafka at {args.bootstrap} as "
              f"{args.username or 'anonymous'} ({args.security_protocol}): {error!r}{hint}",
              file=sys.stderr)
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
