"""The store's history as a rebuild's or replay's shards read it (streams/shards.py):
each shard reads every page itself, on connections of its own, and decodes only its
share of it.

Why each shard reads, rather than one reader sending each its part: decoding a
stored event (27 us) and pickling it to a shard and back (13 us) were one core's
work for the whole history, while the shards waited. Reading a page is cheap next to
either, and what a shard does not take it never decodes: its kind comes from the
stored topic (``kind_of_topic``), its shard from the aggregate id.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from typing import Any, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import Environment, resolve_topic

from application.follow import pages
from projections.envelope import EventEnvelope, class_type, decode_each, kind_and_name
from streams.shards import WHOLE, Page, Read, Share

# Events read (and applied) at a time. Each page costs its statements and the row
# changes that span two pages (an agent's period open at a page's end is closed by an
# update in the next); 30,000 built the month of bench.reports in 109.3 s against
# 112.2-113.2 with 10,000 (2026-12-05), for about 50 MiB of decoded events a page
# (1.7 KiB each) instead of 17.
PAGE = 30_000
# A shard's own store: the tables exist, and it reads on one connection (the default
# pool opens five at once).
_READER_ENV = {"CREATE_TABLE": "n", "POSTGRES_POOL_SIZE": "1", "POSTGRES_MAX_OVERFLOW": "0"}


def store_read(app: Application[Any], after: int = 0, *, until: datetime | None = None,
               page_size: int = PAGE) -> Read:
    """A ``Read`` of ``app``'s events after position ``after`` (those that occurred at or
    before ``until``, if given), up to the last position stored now: every shard reads
    the same pages, whatever is stored while they read (the caller catches up with it)."""
    stop = app.recorder.max_notification_id() or 0
    made_in = os.getpid()

    def read(share: Share) -> Iterator[Page]:
        with _recorder(app, forked=os.getpid() != made_in) as recorder:
            for notifications in pages(recorder, after, page_size=page_size, until=stop):
                kinds = [(n, _kind_if_known(n.topic)) for n in notifications]
                taken = [n for n, kind in kinds
                         if kind is not None and share.takes(kind, cast(UUID, n.originator_id))]
                events, refused = decode_each(app, taken)
                if share.n == 0:  # a class this release lacks: one share parks it
                    refused += decode_each(app, [n for n, kind in kinds if kind is None])[1]
                if until is not None:
                    events = [e for e in events if e.occurred_at <= until]
                yield Page(len(notifications), notifications[-1].id, events, tuple(refused))
    return read


def read_history(app: Application[Any], page_size: int = PAGE,
                 after: int = 0) -> Iterator[list[EventEnvelope]]:
    """Every event after ``after``, decoded, page by page, in this process."""
    for page in store_read(app, after, page_size=page_size)(WHOLE):
        yield page.events


@cache
def _kind_if_known(topic: str) -> str | None:
    """``kind_of_topic``, or None for a class this release lacks (a rollback reads a
    newer release's events)."""
    try:
        return kind_of_topic(topic)
    except Exception:
        return None


@cache  # a few dozen event classes
def kind_of_topic(topic: str) -> str:
    """The envelope kind (``agent``, ``queue``...) of a stored event's topic, undecoded:
    the kind its envelope's type will name."""
    return kind_and_name(class_type(resolve_topic(topic)))["kind"]


@contextmanager
def _recorder(app: Application[Any], *, forked: bool) -> Iterator[ApplicationRecorder]:
    """The app's recorder, or in a forked process, a PostgreSQL one of its own: the
    connections of the pool it inherited are its parent's, and another shard's. (An
    in-memory store's fork is a copy of it: read as it is.)"""
    if not forked or not isinstance(app.recorder, PostgresApplicationRecorder):
        yield app.recorder
        return
    factory = InfrastructureFactory.construct(Environment(app.name, {
        **app.env, **_READER_ENV}))
    try:
        yield factory.application_recorder()
    finally:
        factory.close()
