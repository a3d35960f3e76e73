"""Shared fixtures: one real PostgreSQL per test session, a fresh database per test.

With DATABASE_URL set the tests use that server instead of the embedded one.

Migrating a database takes yoyo about a second on the CI machine (it parses and runs
every SQL file), and most integration tests start by migrating theirs. A module
whose tests all do so carries ``pytestmark = pytest.mark.migrated_database``: its
``database_url`` is then a copy (CREATE DATABASE ... TEMPLATE, a file copy) of one
database migrated once per session by the same ``apply_migrations``, so the tests'
own ``apply_migrations`` calls find nothing left to apply. Tests about migrating
itself, or about an unmigrated database, stay in unmarked modules.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _pytest.nodeid import NodeId  # pytest >= 9.2 (see _join_group)
from psycopg import sql

from dialtone.database import drop_database, ensure_database, with_database
from dialtone.migrations import apply_migrations
from dialtone.services import ports
from dialtone.services.ports import free_port
from dialtone.services.postgres import EmbeddedPostgres
from tests.fixtures.shared import note_users, release_unneeded

# Two xdist workers choose ports at once: each (and what it starts) takes its own share, or
# one's server can bind a port the other has chosen but not yet bound (seen in ci82).
if "PYTEST_XDIST_WORKER" in os.environ:  # gw0, gw1, ...
    ports.take_share(int(os.environ["PYTEST_XDIST_WORKER"].removeprefix("gw")),
                     int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))

# processes first: the others import it, and pytest rewrites a plugin's asserts only when
# it is the first to import the module (otherwise PytestAssertRewriteWarning, and bare asserts).
pytest_plugins = ["tests.fixtures.processes", "tests.fixtures.sip", "tests.fixtures.kafka",
                  "tests.fixtures.matrix_stack", "tests.fixtures.tracing",
                  "tests.fixtures.kamailio"]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres | None]:
    if os.environ.get("DATABASE_URL"):
        yield None
        return
    # Not under pytest's temp root: every new pytest session resets that root to
    # mode 0700, which would lock the server's unprivileged user out of its data.
    root = Path(tempfile.mkdtemp(prefix="dialtone-test-pg-"))
    server = EmbeddedPostgres(root / "data", free_port())
    server.start()
    yield server
    server.destroy()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_scratch_dir() -> Iterator[Path]:
    """A directory for a test's own PostgreSQL server, outside pytest's temp root
    (which another pytest session may chmod 0700 at any time, see pg_server)."""
    root = Path(tempfile.mkdtemp(prefix="dialtone-test-own-pg-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_admin_dsn(pg_server: EmbeddedPostgres | None) -> str:
    if pg_server is None:
        return os.environ["DATABASE_URL"]
    return pg_server.dsn("postgres")


def _scratch_database(pg_admin_dsn: str, prefix: str, template: str | None = None
                      ) -> Iterator[str]:
    """A DSN to a brand-new database on the test server (empty, or a copy of the
    database `template`), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    dsn = with_database(pg_admin_dsn, name)
    if template is None:
        ensure_database(dsn)
    else:
        with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)))
    yield dsn
    drop_database(dsn)


@pytest.fixture(scope="session")
def migrated_template(pg_admin_dsn: str) -> Iterator[str]:
    """The name of a database migrated once per session: the template of the
    ``migrated_database`` tests' own databases (see the module's docstring)."""
    name = f"template_{uuid.uuid4().hex[:16]}"
    dsn = with_database(pg_admin_dsn, name)
    ensure_database(dsn)
    apply_migrations(dsn)
    # yoyo's backend keeps its connection open until it is collected, and PostgreSQL
    # copies no database that has a session open on it.
    gc.collect()
    with psycopg.connect(pg_admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                     " WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
    yield name
    drop_database(dsn)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, pg_admin_dsn: str) -> Iterator[str]:
    """A DSN to a brand-new database, dropped after the test: empty, or already
    migrated in a module marked ``migrated_database``."""
    template = None
    if request.node.get_closest_marker("migrated_database") is not None:
        template = request.getfixturevalue("migrated_template")
    yield from _scratch_database(pg_admin_dsn, "t", template)


@pytest.fixture
def second_database(pg_admin_dsn: str) -> Iterator[str]:
    """Another brand-new, empty database beside database_url (a restore's target, say),
    dropped after the test."""
    yield from _scratch_database(pg_admin_dsn, "r")


# Servers and processes that keep a test out of the ``parallel`` run, whatever its
# module says: it goes to the pooled one (see pytest_collection_modifyitems).
POOLED_FIXTURES = {"kafka_broker", "kafka_bootstrap", "sipp", "b2bua", "kamailio",
                   "dialtone_processes", "pg_scratch_dir", "restartable"}
# Tests that need the machine to themselves (the ``alone`` run of ./dev test): a time
# budget (test_api_contract: PostgreSQL is all it needs, but sharing the cores would
# leave Schemathesis fewer examples in the same time), the memory stage (RSS growth
# of services under calls), floods whose pass depends on a worker keeping up with
# sipp's rate. A new module says so with ``pytestmark = pytest.mark.alone``.
ALONE = {"tests/integration/test_api_contract.py", "tests/integration/test_b2bua_flood.py",
         "tests/memory/test_memory_budgets.py"}
# Servers a test session builds once and hands to every test asking for them (session
# fixtures and tests/fixtures/shared.py). Under ``--dist loadgroup`` each pytest-xdist
# worker is a process of its own, so it would build its own copy: the modules using one
# of them run on one worker (see pooled_groups). The fault matrix's kafka_stack, say,
# is one PostgreSQL, one broker and five services for three modules.
SESSION_SERVERS = {"kafka_broker": "kafka", "kafka_bootstrap": "kafka",
                   "killable_kafka_broker": "kafka-killable",
                   "shared_scram_kafka_broker": "kafka-scram", "kafka_stack": "kafka-stack",
                   "redis_server": "redis", "s3_server": "s3"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Sort the tests into the three runs of ./dev test (run_tests):

    - ``parallel``: the unit tests and the ``migrated_database`` modules' tests, which
      use nothing but their own database on the session's PostgreSQL (each xdist
      worker has its own server), on both cores a module at a time (``--dist loadfile``);
    - ``alone``: the tests that need the machine to themselves (ALONE), one at a time;
    - the rest (SIP, Kafka, dialtone processes, outages) on two xdist workers too
      (``--dist loadgroup``): most of their time is spent waiting (a JVM or pjsua
      starting, a broker restarting, a bounded poll), not computing. Every port is a
      free one and every directory a private one, so two of them side by side do not
      meet; the groups keep a module, and every module sharing a session server with
      it, on one worker (see pooled_groups and _join_group).
    """
    root = Path(__file__).resolve().parent.parent
    pooled: list[tuple[str, pytest.Item]] = []
    for item in items:
        where = item.path.relative_to(root).as_posix()
        if where in ALONE or item.get_closest_marker("alone"):
            item.add_marker(pytest.mark.alone)
            continue
        if item.get_closest_marker("kafka") \
                or item.get_closest_marker("sip") \
                or POOLED_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            pooled.append((where, item))
            continue
        if where.startswith("tests/unit/") or item.get_closest_marker("migrated_database"):
            item.add_marker(pytest.mark.parallel)
        else:
            pooled.append((where, item))
    if getattr(config.option, "loadgroup", False):  # in an xdist worker, --dist loadgroup
        for item, group in pooled_groups(pooled):
            _join_group(item, group)


def _join_group(item: pytest.Item, group: str) -> None:
    """Put `item` in xdist's group `group` as pytest-xdist's own ``xdist_group`` mark
    would: the scheduler reads the group from a ``@group`` suffix of the node id. From
    pytest 9.2 on, the node id comes from a structured id and xdist's write to the old
    field is lost: the mark alone groups nothing, silently (pytest-xdist issue #1386,
    open). Set it where this pytest reads it, and fail loudly if that ever changes."""
    tagged = f"{item.nodeid}@{group}"
    if hasattr(item, "_id"):  # pytest >= 9.2
        item._id = NodeId.parse(tagged)
    else:
        item._nodeid = tagged
    if item.nodeid != tagged:
        raise pytest.UsageError(f"cannot group {tagged} for --dist loadgroup")


def pooled_groups(pooled: list[tuple[str, pytest.Item]]) -> list[tuple[pytest.Item, str]]:
    """The xdist group of each pooled test: its module's path, joined with every other
    module using one of the same SESSION_SERVERS (connected modules, transitively: one
    using the shared broker and the killable one ties both families together), named
    after the servers. A module's tests stay together for its module-scoped fixtures."""
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        while parent.setdefault(node, node) != node:
            node = parent[node]
        return node

    for where, item in pooled:
        for fixture in SESSION_SERVERS.keys() & set(getattr(item, "fixturenames", ())):
            parent[find(where)] = find("server:" + SESSION_SERVERS[fixture])
    servers: dict[str, set[str]] = {}
    for node in list(parent):
        if node.startswith("server:"):
            servers.setdefault(find(node), set()).add(node.removeprefix("server:"))
    groups: list[tuple[pytest.Item, str]] = []
    for where, item in pooled:
        top = find(where)
        groups.append((item, "+".join(sorted(servers[top])) if top in servers else where))
    return groups


def pytest_collection_finish(session: pytest.Session) -> None:
    note_users(session.items)  # for release_unneeded below


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Once the test's own fixtures are torn down (they may still talk to a shared
    server), stop the shared servers no later test uses (tests/fixtures/shared.py)."""
    yield
    release_unneeded(item, nextitem)
