"""``dialtone demo``: the platform with a call centre in it, calls flowing, in a minute.

Everything ``dialtone up`` runs (embedded PostgreSQL unless DATABASE_URL is set,
migrations, projections in-process, the routing process, the HTTP API), plus:
- a provisioned call centre: queues ``sales`` (position announcements, calls
  recorded) and ``support``, agents alice, bob, carol (sales; carol also
  support) and dave (support), an IVR menu ``main`` (1 sales, 2 support),
  numbers 5000 (sales) and 5001 (the menu);
- B2BUA workers (``dialtone b2bua``, 2 calls each: the pjsua2 wheel holds 4 legs
  per process);
- simulated agents: softphones that log in, answer after a ring and hang up
  after a while; simulated callers: a softphone every few seconds calling 5000
  (or 5001, pressing 1 or 2), playing a tone.

It prints what happens and where to look. Ctrl-C stops everything it started,
in order, and leaves no process behind.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import click

from application.callcentre import AlreadyExists, CallCentreService
from devtools.phones import Softphone, start_phone
from dialtone import bootstrap
from dialtone.commands.b2bua import spawn_worker
from dialtone.commands.up import WORKER_HOST, lost_calls_ender
from dialtone.commands.users import demo_login
from dialtone.database import EVENT_TABLES_READY, release_embedded, resolve_dsn
from dialtone.migrations import apply_migrations
from dialtone.narrate import Narrator
from dialtone.services.ports import busy_ports
from dialtone.services.processes import Spawn, Supervisor
from dialtone.services.serving import StopSignals, serve
from dialtone.settings import Settings
from domain.addressing import Target
from domain.agent import Agent, AgentState
from domain.errors import DomainError
from domain.ivr import IvrMenu
from domain.queue import Queue

log = logging.getLogger(__name__)

CALLS_PER_WORKER = 2


@dataclass(frozen=True)
class DemoAgent:
    key: str
    queues: tuple[str, ...]
    talk_s: float  # the agent hangs up after this long


AGENTS = (DemoAgent("alice", ("sales",), 8.0), DemoAgent("bob", ("sales",), 11.0),
          DemoAgent("carol", ("sales", "support"), 9.0), DemoAgent("dave", ("support",), 7.0))


def now() -> datetime:
    return datetime.now(UTC)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the call centre -------------------------------------------------------------------------


def provision(service: CallCentreService) -> None:
    """The demo's call centre; what exists already (an earlier run) is kept."""
    _once(lambda: service.create_queue("sales", "Sales", "longest_idle", occurred_at=now(),
                                       wrap_up_s=3.0, offer_timeout_s=10.0,
                                       announce_position=True, record_calls=True))
    _once(lambda: service.create_queue("support", "Support", "longest_idle", occurred_at=now(),
                                       wrap_up_s=2.0, offer_timeout_s=10.0))
    for agent in AGENTS:
        _once(_creator(service, agent.key))
        for queue in agent.queues:
            service.set_member(Queue.id_for(queue), Agent.id_for(agent.key), 0, now())
    sales, support = Target.queue(Queue.id_for("sales")), Target.queue(Queue.id_for("support"))
    _once(lambda: service.create_ivr_menu("main", "Main menu", "main-menu", occurred_at=now(),
                                          timeout_s=4.0, max_retries=1, default_action=sales,
                                          options={"1": sales, "2": support}))
    _once(lambda: service.create_number("5000", sales, occurred_at=now(), label="Sales line"))
    _once(lambda: service.create_number("5001", Target.ivr(IvrMenu.id_for("main")),
                                        occurred_at=now(), label="Main menu"))
    _clear_leftovers(service)


def _creator(service: CallCentreService, key: str) -> Callable[[], object]:
    return lambda: service.create_agent(key, key.title(), occurred_at=now())


def _once(create: Callable[[], object]) -> None:
    with contextlib.suppress(AlreadyExists):
        create()


def _clear_leftovers(service: CallCentreService) -> None:
    """An earlier run stopped hard may have left calls waiting and agents busy."""
    for key in ("sales", "support"):
        queue = service.get(Queue, Queue.id_for(key))
        for call in queue.calls:
            with contextlib.suppress(DomainError):
                service.abandon_call(queue.id, call.call_id, now())
    for agent in AGENTS:
        _log_out(service, Agent.id_for(agent.key))


def _log_out(service: CallCentreService, agent_id: UUID) -> None:
    agent = service.get(Agent, agent_id)
    call = agent.current_call_id
    with contextlib.suppress(DomainError):
        if agent.state is AgentState.RESERVED and call is not None:
            service.miss_offer(agent_id, call, now())
        elif agent.state is AgentState.ON_CALL and call is not None:
            service.end_agent_call(agent_id, call, now())
        if service.get(Agent, agent_id).state is not AgentState.LOGGED_OUT:
            service.logout(agent_id, now())


# -- the processes ---------------------------------------------------------------------------


class Demo(contextlib.ExitStack):
    def __init__(self, settings: Settings, database_url: str, workers: int, interval_s: float,
                 say: Callable[[str], None]) -> None:
        super().__init__()
        self.settings = settings
        self.database_url = database_url
        self.worker_count = workers
        self.interval_s = interval_s
        self.say = say
        self.work = settings.data_dir / "demo"
        self.work.mkdir(parents=True, exist_ok=True)
        self.service = bootstrap.callcentre_service(database_url)
        self.callback(self.service.close)
        self.worker_ports: list[int] = []
        self._callers: list[Softphone] = []
        self._stop = threading.Event()

    def start_platform(self) -> None:
        runners = [*([] if self.settings.kafka_bootstrap
                     else bootstrap.inprocess_runners(self.database_url)),
                   bootstrap.routing_runner(self.database_url)]
        for runner in runners:
            runner.start()
            self.callback(runner.stop)
        calls = bootstrap.call_service(self.database_url)
        self.callback(calls.close)
        narrator = Narrator(calls, self.service, self.say)
        narrator.start()
        self.callback(narrator.stop)

    def start_workers(self) -> None:
        # The event tables exist (created in __init__ and start_platform): the workers,
        # starting together, must not run the DDL again (they collided in the catalog).
        env = {**os.environ, "DATABASE_URL": self.database_url,
               "DIALTONE_DATA_DIR": str(self.settings.data_dir), "DIALTONE_LOG_LEVEL": "INFO",
               EVENT_TABLES_READY: "1", "DIALTONE_METRICS_PORT": "0"}  # no shared metrics port
        supervisor = Supervisor()  # a worker that dies comes back on its port
        self.callback(supervisor.stop)
        logs = []
        for _ in range(self.worker_count):
            port = free_port()
            logs.append(self.work / f"b2bua-{port}.log")
            supervisor.add(f"b2bua worker on udp {port}", _worker_spawner(port, env, logs[-1]),
                           on_exit=lost_calls_ender(self.database_url, port))
            self.worker_ports.append(port)
        supervisor.start()
        _wait_listening(logs)
        self.say(f"{len(logs)} B2BUA workers on udp ports {self.worker_ports} "
                 f"(logs: {self.work})")

    def start_agents(self) -> None:
        for agent in AGENTS:
            phone = start_phone(agent.key, free_port(), self.work / "phones", new_session=True,
                                args=["--answer-after", "1.5", "--hangup-after",
                                      str(agent.talk_s), "--tone", "1000"])
            self.callback(phone.stop)
            self.service.login(Agent.id_for(agent.key), phone.uri, now())
        # ExitStack unwinds in reverse: the agents log out before their phones stop, so
        # none is left "available" at a device URI nobody answers any more.
        self.callback(self._log_out_agents)

    def _log_out_agents(self) -> None:
        for agent in AGENTS:
            try:
                _log_out(self.service, Agent.id_for(agent.key))
            except Exception:  # the store may be unreachable; the next run clears them
                log.exception("agent %s was not logged out", agent.key)

    def start_callers(self) -> None:
        thread = threading.Thread(target=self._call_loop, name="demo-callers", daemon=True)
        thread.start()
        self.callback(self._stop_callers, thread)

    def _call_loop(self) -> None:
        rng = random.Random(7)  # noqa: S311 - simulated traffic, not secrets
        ports = itertools.cycle(self.worker_ports)
        for n in itertools.count(1):
            if self._stop.wait(self.interval_s * rng.uniform(0.6, 1.4)):
                return
            self._callers = [c for c in self._callers if c.process.poll() is None]
            if len(self._callers) >= len(self.worker_ports) * CALLS_PER_WORKER - 1:
                continue  # every worker busy: wait for a call to end
            try:
                caller = self._caller(n, next(ports), rng)
            except (AssertionError, OSError) as error:
                log.warning("caller %d did not start: %s", n, error)
                continue
            self._callers.append(caller)
            if self._stop.is_set():  # started while the demo was stopping
                caller.stop()
                return

    def _caller(self, n: int, worker_port: int, rng: random.Random) -> Softphone:
        menu = rng.random() < 0.35
        did = "5001" if menu else "5000"
        args = ["--dial", f"sip:{did}@127.0.0.1:{worker_port}", "--quit-after-call",
                "--lifetime", "120", "--tone", "440"]
        if menu:
            args += ["--send-dtmf", rng.choice("12"), "--dtmf-delay", "3.0"]
        return start_phone(f"caller{n}", free_port(), self.work / "phones", args=args,
                           new_session=True)

    def _stop_callers(self, thread: threading.Thread) -> None:
        self._stop.set()
        thread.join(30)  # a caller may be starting (a phone is up within seconds)
        for caller in self._callers:
            caller.stop()


def _wait_listening(logs: list[Path], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(p.exists() and "listening on udp" in p.read_text(errors="replace") for p in logs):
            return
        time.sleep(0.2)
    raise click.ClickException(f"B2BUA workers did not start; see {logs}")


# -- the command -----------------------------------------------------------------------------


@click.command("demo")
@click.option("--host", default=None, help="HTTP listen address (default DIALTONE_HTTP_HOST).")
@click.option("--port", type=int, default=None, help="HTTP port (default DIALTONE_HTTP_PORT).")
@click.option("--workers", default=3, show_default=True, help="B2BUA worker processes.")
@click.option("--interval", default=4.0, show_default=True,
              help="Mean seconds between simulated callers.")
@click.option("--run-for", type=float, default=None,
              help="Stop by itself after this many seconds (default: until Ctrl-C).")
@click.pass_obj
def command(settings: Settings, host: str | None, port: int | None, workers: int,
            interval: float, run_for: float | None) -> None:
    """Run the platform with a simulated call centre until Ctrl-C or SIGTERM."""
    say = click.echo
    if settings.log_level.upper() == "INFO":  # the default: the narration is the output
        logging.getLogger().setLevel(logging.WARNING)
    host, port = host or settings.http_host, port or settings.http_port
    busy = busy_ports(host, tcp=(port,))
    if busy:  # before anything starts: a second command must not disturb the first
        raise click.ClickException(
            f"{', '.join(busy)} already in use (is `dialtone up` running?); "
            "choose another with --port or DIALTONE_HTTP_PORT")
    stop = StopSignals().install()
    if run_for is not None:
        timer = threading.Timer(run_for, stop.request)
        timer.daemon = True
        timer.start()
    database_url = resolve_dsn(settings)
    try:
        apply_migrations(database_url)
        with Demo(settings, database_url, workers, interval, say) as demo:
            provision(demo.service)
            demo.start_platform()
            demo.start_workers()
            demo.start_agents()
            demo.start_callers()
            base = f"http://{host}:{port}"
            say(demo_login(database_url, settings.data_dir, base))
            say(f"dialtone demo is up. Calls arrive every ~{interval:.0f} s; watch them "
                f"(with a bearer credential, as above):\n"
                f"  {base}/v1/queues/sales/live   queue sales right now\n"
                f"  {base}/v1/agents              agents and their states\n"
                f"  {base}/v1/calls               calls in progress\n"
                f"  {base}/v1/cdrs                finished calls\n"
                f"  {base}/docs                   the whole API\n"
                f"  dial sip:5000@127.0.0.1:{demo.worker_ports[0]} (sales) or :5001 (menu) "
                f"from a softphone of your own. Ctrl-C stops everything.")
            serve(bootstrap.http_app(database_url), host, port, stop, log_level="warning")
            say("stopping: callers, agents, workers, routing, projections...")
    finally:
        release_embedded(settings)  # unless another command on this data dir still uses it
        say("dialtone demo stopped")


def _worker_spawner(port: int, env: dict[str, str], log_file: Path) -> Spawn:
    """Starts (and restarts) the worker on ``port``, its output appended to ``log_file``."""
    return lambda: spawn_worker(port, extra_args=["--max-calls", str(CALLS_PER_WORKER),
                                                  "--pj-log-level", "1", "--host", WORKER_HOST],
                                env=env, log_file=log_file, new_session=True)
