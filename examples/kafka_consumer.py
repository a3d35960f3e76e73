"""A small dialtone event consumer for integrators (kafka-python + jsonschema).

Reads dialtone's topics as a consumer group, checks every message against the
published JSON Schema of its topic (docs/schemas/), and prints one JSON line
per event. What it shows:

- read with ``isolation_level="read_committed"``: the relay writes in Kafka
  transactions, and an aborted one is re-sent whole;
- the message value is a CloudEvent (structured mode: header ``content-type:
  application/cloudevents+json``), the key is the aggregate id (= ``subject``);
  per key, events arrive in order;
- delivery is at least once: offsets are committed after the events are
  handled, so deduplicate on the CloudEvents ``id`` (here, in memory);
- ignore ``data`` fields you do not know: they may appear within a version.

Run (needs ``pip install kafka-python jsonschema``)::

    python examples/kafka_consumer.py --bootstrap 127.0.0.1:9092 --max-messages 100

It exits after ``--max-messages`` events or ``--idle-timeout`` seconds without
one; exit status 1 if any message did not validate (each is reported on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
from kafka import KafkaConsumer

TOPICS = ("calls", "agents", "queues", "ivr-menus", "numbers", "dialplans")
SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "schemas"
CONTENT_TYPE = "application/cloudevents+json"


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092", help="Kafka brokers")
    parser.add_argument("--prefix", default="", help="DIALTONE_TOPIC_PREFIX of the deployment")
    parser.add_argument("--topics", default=",".join(TOPICS),
                        help="comma-separated kinds (default: %(default)s)")
    parser.add_argument("--group", default="dialtone-example-consumer", help="consumer group")
    parser.add_argument("--schemas", type=Path, default=SCHEMAS, help="docs/schemas directory")
    parser.add_argument("--max-messages", type=int, default=0, help="stop after N events")
    parser.add_argument("--idle-timeout", type=float, default=10.0,
                        help="stop after this many seconds without a message")
    return parser.parse_args(argv)


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
    if not headers.get("content-type", "").startswith(CONTENT_TYPE):
        return [f"content-type {headers.get('content-type')!r} is not a CloudEvent"]
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
    consumer = KafkaConsumer(
        *checks, bootstrap_servers=args.bootstrap, group_id=args.group,
        isolation_level="read_committed", auto_offset_reset="earliest",
        enable_auto_commit=False, consumer_timeout_ms=int(args.idle_timeout * 1000))
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
    return consume(arguments(argv))


if __name__ == "__main__":
    raise SystemExit(main())
