"""``dialtone b2bua``: one pjsua2 B2BUA worker process (1 or 2 bridged calls: the
pjsua2 wheel caps a process at 4 call legs).

Scale out by running several on different ports against the same event store
(``spawn_worker`` starts one as a subprocess), behind Kamailio's dispatcher.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from uuid import UUID

import click

from adapters.media.player import MusicOnHold
from adapters.media.recorder import RecordingStore
from adapters.media.stats import StreamMonitor
from adapters.media.tones import hold_music
from adapters.sip.pjsua.admission import IPNetwork, parse_networks
from adapters.sip.pjsua.endpoint import EndpointConfig, EndpointError
from adapters.sip.routing import dialplan as dialplans
from adapters.sip.routing.directory import Directory
from adapters.sip.routing.follower import CentreFollower
from adapters.sip.store import unstored
from adapters.sip.store.centre_link import CentreLink
from adapters.sip.store.lost_calls import CallOwnership, end_lost_calls, worker_identity
from adapters.sip.store.storage import INFRASTRUCTURE_ERRORS, StorageThread
from adapters.sip.wiring import CentreWiring, WorkerConfig
from adapters.sip.worker import B2BUAWorker
from application.callcentre import CallCentreService
from application.calls import CallService
from application.heartbeats import Heartbeat
from application.tracing import setup_tracing
from dialtone import logs
from dialtone.commands import b2bua_pool
from dialtone.database import eventsourcing_env, resolve_dsn
from dialtone.services.metrics import start_metrics_server
from dialtone.services.processes import die_with_parent
from dialtone.settings import Settings

log = logging.getLogger(__name__)

# A stop's budget for what needs the store, inside the pool's 20 s before SIGKILL
# (dialtone.services.forkpool.PoolPolicy.stop_timeout_s) with the calls' drain
# and pjsua's shutdown: the call-centre link's queue, then the storage buffer.
# What the store does not take by then is kept on disk (adapters.sip.store.unstored).
LINK_STOP_S = 3.0
STORAGE_STOP_S = 8.0
# At start, how long the commands a previous stop kept may take to be stored
# before the worker takes calls anyway (they stay queued first in its buffer).
RECOVER_S = 20.0


def call_service_factory(dsn: str) -> CallService:
    # Pre-ping: after a database restart the pool must not hand out dead
    # connections; a short connect timeout keeps retries (and backoff) brisk.
    # One connection: only the storage thread writes, and workers are many.
    env = eventsourcing_env(dsn, POSTGRES_PRE_PING="y", POSTGRES_CONNECT_TIMEOUT="2",
                            POSTGRES_POOL_SIZE="1", POSTGRES_MAX_OVERFLOW="1")
    return CallService(env=env)


def callcentre_service_factory(dsn: str) -> CallCentreService:
    # One connection per use (command link, follower): workers are many. Workers
    # starting together take the event store's DDL in turn (dialtone.event_store_ddl).
    env = eventsourcing_env(dsn, POSTGRES_PRE_PING="y", POSTGRES_CONNECT_TIMEOUT="2",
                            POSTGRES_POOL_SIZE="1", POSTGRES_MAX_OVERFLOW="1")
    return CallCentreService(env=env)


def end_lost_worker_calls(dsn: str, host: str, port: int) -> list[UUID]:
    """End, with cause ``worker_lost``, every call the B2BUA worker serving SIP on
    ``host:port`` left open when it died; the call ids ended. For a supervisor
    that saw the worker die (and for the worker itself at start): never for a
    worker still running, whose live calls it would end."""
    service = call_service_factory(dsn)
    try:
        return end_lost_calls(dsn, worker_identity(host, port), service)
    finally:
        service.close()


def _trusted_networks(options: Sequence[str], settings: Settings) -> tuple[IPNetwork, ...]:
    """The networks of --trusted-source, else of DIALTONE_SIP_TRUSTED_SOURCES."""
    try:
        return parse_networks(options or [settings.sip_trusted_sources])
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--trusted-source") from None


def _directory(edge: str | None) -> Directory:
    """The call-centre directory; a bad --edge (DIALTONE_SIP_EDGE) is a usage error."""
    try:
        return Directory(edge)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--edge") from None


def _end_previous_calls(dsn: str, host: str, port: int) -> None:
    """A previous incarnation on this address (killed, aborted) may have left
    calls open: end them before taking any INVITE. With the store away, the
    worker still starts (calls are buffered); the claims wait for next time."""
    try:
        end_lost_worker_calls(dsn, host, port)
    except INFRASTRUCTURE_ERRORS as error:
        log.error("cannot end the calls a previous worker on %s:%d left (%s: %s); "
                  "they are ended at the next start", host, port, type(error).__name__, error)


@click.command("b2bua")
@click.option("--host", default="127.0.0.1", show_default=True, help="SIP/RTP bind address.")
@click.option("--port", default=5070, show_default=True, help="SIP UDP port.")
@click.option("--route", "routes", multiple=True, metavar="KIND:PATTERN=URI",
              help="Dialplan rule (exact|prefix|regex), e.g. "
                   "'prefix:1=sip:{number}@10.0.0.5:5060' (repeatable, first match wins).")
@click.option("--dialplan", "dialplan_file", type=click.Path(path_type=Path, exists=True),
              help="TOML/JSON file with [[route]] kind/pattern/target entries.")
@click.option("--max-calls", default=1, show_default=True, type=click.IntRange(1, 2),
              help="Bridged calls in this process (pjsua2 holds 4 legs). 2 behind Kamailio "
                   "(maxload=2): overflow with every leg held gets pjsua's stateless 486, "
                   "which Kamailio fails over; 1 keeps a leg to answer 503 itself.")
@click.option("--pjsua-calls", default=4, show_default=True, type=click.IntRange(1, 4),
              help="pjsua call slots (legs) of this process; admission counts them.")
@click.option("--no-answer-timeout", default=30.0, show_default=True, help="Seconds.")
@click.option("--rtp-port", default=0, help="First RTP port (0: derived from --port).")
@click.option("--pj-log-level", default=2, show_default=True, help="pjsip log level 0-5.")
@click.option("--hold-music", "hold_music_file", type=click.Path(path_type=Path),
              help="WAV (8 kHz mono 16-bit) played to held parties; default: generated.")
@click.option("--callcentre/--no-callcentre", default=True, show_default=True,
              help="Route numbers provisioned in the call centre (queues, IVR menus) and "
                   "ring agents the routing process reserves.")
@click.option("--recordings-dir", type=click.Path(path_type=Path),
              help="Where call recordings go (default: DIALTONE_DATA_DIR/recordings).")
@click.option("--announce-every", default=20.0, show_default=True,
              help="Seconds between queue position announcements (queues that ask for them).")
@click.option("--trusted-source", "trusted_sources", multiple=True, metavar="ADDRESS[/BITS]",
              help="Address or network INVITEs may come from: the SIP edge (repeatable or "
                   "comma-separated); others get 403. Default DIALTONE_SIP_TRUSTED_SOURCES "
                   "(loopback).")
@click.option("--device-auth/--no-device-auth", default=None,
              help="The edge authenticates devices' INVITEs (X-Dialtone-Tenant): a call to "
                   "none of our numbers is taken only from such a device, others get 403 "
                   "[env DIALTONE_SIP_DEVICE_AUTH; default off].")
@click.option("--edge", metavar="HOST[:PORT]", default=None,
              help="The SIP edge (Kamailio with the registrar): offers to registering "
              "devices go through it [env DIALTONE_SIP_EDGE].")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve Prometheus metrics on this TCP port (default DIALTONE_METRICS_PORT; "
                   "0: none). With --workers: the pool's, and worker i's on this + 1 + i.")
@click.option("--workers", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Fork this many workers on --port, --port + 1, ... from one parent that "
                   "restarts them (0: this process is the one worker).")
@click.option("--dispatcher-list", type=click.Path(path_type=Path),
              help="With --workers: write Kamailio's dispatcher list for the pool here.")
@click.option("--dispatcher-address", metavar="HOST",
              help="The workers' address in that list (default --host).")
@click.option("--kamailio-ctl", metavar="unix:PATH",
              help="With --dispatcher-list: Kamailio's control socket, told to reload the "
                   "list when it changed and to skip a dead worker until it is restarted "
                   "(kamcmd dispatcher.reload / dispatcher.set_state).")
@click.pass_context
def command(ctx: click.Context, host: str, port: int, routes: tuple[str, ...],
            dialplan_file: Path | None, max_calls: int, pjsua_calls: int,
            no_answer_timeout: float,
            rtp_port: int, pj_log_level: int, hold_music_file: Path | None,
            callcentre: bool, recordings_dir: Path | None, announce_every: float,
            trusted_sources: tuple[str, ...], device_auth: bool | None, edge: str | None,
            metrics_port: int | None,
            workers: int,
            dispatcher_list: Path | None, dispatcher_address: str | None,
            kamailio_ctl: str | None) -> None:
    """Run one SIP B2BUA worker (pjsua2), or a pool of them, until SIGTERM/SIGINT."""
    settings: Settings = ctx.obj
    # A typo in either fails at once.
    trusted, directory = (_trusted_networks(trusted_sources, settings),
                          _directory(edge or settings.sip_edge))
    try:  # so does a bad route, in the pool's parent too (not in each child, forever)
        dialplan = dialplans.load(routes, dialplan_file)
    except dialplans.DialplanError as error:
        raise click.BadParameter(str(error)) from None
    if workers:
        _run_pool(ctx, settings, workers, dispatcher_list, dispatcher_address, kamailio_ctl)
        return
    dsn = resolve_dsn(settings)
    start_metrics_server(settings, metrics_port)
    storage = StorageThread(lambda: call_service_factory(dsn),
                            ownership=CallOwnership(dsn, worker_identity(host, port)))
    kept = unstored.unstored_path(settings.data_dir, host, port)
    _recover(storage, kept, dsn, host, port)
    config = WorkerConfig(
        endpoint=EndpointConfig(host=host, port=port, rtp_port=rtp_port,
                                pj_log_level=pj_log_level, max_calls=pjsua_calls),
        max_bridged_calls=max_calls, no_answer_timeout=no_answer_timeout,
        trusted_sources=trusted,
        device_auth=settings.sip_device_auth if device_auth is None else device_auth)
    media_dir = settings.data_dir / "media"
    music = hold_music_file or hold_music(media_dir / "hold.wav")
    wiring: CentreWiring | None = None
    if callcentre:
        # The link posts its results to the worker, built just below.
        link = CentreLink(lambda: callcentre_service_factory(dsn),
                          lambda cb: worker.post(cb))  # noqa: PLW0108 - not built yet
        wiring = CentreWiring(link, directory, media_dir, music,
                              RecordingStore(recordings_dir or settings.data_dir / "recordings"),
                              announce_every)
    heartbeat = Heartbeat(dsn, "b2bua", f"{host}:{port}",
                          detail=lambda: {"calls": len(worker.sessions), "refused": worker.refused})
    worker = B2BUAWorker(config, dialplan, storage, overloaded=lambda: storage.overloaded,
                         music_on_hold=lambda: MusicOnHold(music), media=StreamMonitor(),
                         centre=wiring, alive=heartbeat.tick)
    follower = (CentreFollower(callcentre_service_factory(dsn), dsn, wiring.directory, worker)
                if wiring is not None else None)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()
        if follower is not None:
            # Ask it now, joined below: it leaves its LISTEN wait (up to tick_s, 2 s)
            # while the worker drains its calls and pjsua shuts down, instead of
            # after (it only feeds the worker, which takes no new call now).
            follower.stop(timeout=0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if wiring is not None and follower is not None:
        wiring.link.start()
        follower.load()  # the configuration is known before the first INVITE
        follower.start()
    log.info("b2bua worker on %s:%d, %d dialplan rules", host, port, len(dialplan.rules))
    heartbeat.start()
    try:
        worker.run(stop)
    except EndpointError as error:
        raise click.ClickException(str(error)) from None
    finally:
        if wiring is not None and follower is not None:
            follower.stop()
            wiring.link.stop(timeout=LINK_STOP_S)
            follower.service.close()
        _stop_storage(storage, kept)
        heartbeat.stop(timeout=1.0, clean=stop.is_set())  # an error leaves it to go stale


def _stop_storage(storage: StorageThread, kept: Path) -> None:
    """Store the buffer within STORAGE_STOP_S; with the store down, keep the rest
    in ``kept`` for the next start on this address rather than wait to be killed."""
    if not storage.stop(timeout=STORAGE_STOP_S):
        left = list(storage.snapshot())
        try:
            unstored.save(kept, left)
        except OSError:
            log.exception("%d commands not stored and not kept (%s): lost", len(left), kept)


def _recover(storage: StorageThread, kept: Path, dsn: str, host: str, port: int) -> None:
    """Before the first INVITE: store what a previous stop on this address kept,
    then end the calls a previous incarnation left open (after those: ending a
    call they end would refuse its real end)."""
    if _store_what_a_stop_kept(storage, kept):
        _end_previous_calls(dsn, host, port)


def _store_what_a_stop_kept(storage: StorageThread, kept: Path) -> bool:
    """Start ``storage`` with the commands a previous stop on this address could
    not store queued first; True once they are stored (their file removed) or
    there were none. False: the store has not taken them within RECOVER_S; they
    stay queued (and in their file, until stored or kept again by the next stop)."""
    try:
        commands = unstored.load(kept)
    except unstored.UnstoredFileError as error:
        # Unreadable, set aside for the operator: failing the start would not make
        # it readable; the calls it was about end as the lost calls below.
        log.error("%s", error)
        commands = []
    for queued in commands:
        storage.put(queued)
    storage.start()
    if not commands:
        return True
    if not storage.wait_idle(RECOVER_S):
        log.error("%d commands a previous stop kept in %s are not stored yet (event store "
                  "unavailable); the calls a previous worker left are ended at the next start",
                  storage.pending, kept)
        return False
    unstored.discard(kept)
    log.warning("stored %d commands a previous stop kept in %s", len(commands), kept)
    return True


def _run_pool(ctx: click.Context, settings: Settings, count: int, list_file: Path | None,
              address: str | None, ctl: str | None) -> None:
    """The pool's parent: each child runs this command as one worker on its port."""
    params = dict(ctx.params)
    pool_metrics = settings.metrics_port if params["metrics_port"] is None \
        else params["metrics_port"]

    def serve(index: int) -> None:
        rtp_port = params["rtp_port"]
        ctx.invoke(command, **{
            **params, "workers": 0, "dispatcher_list": None, "kamailio_ctl": None,
            "port": params["port"] + index,
            "rtp_port": rtp_port + index * EndpointConfig.rtp_port_range if rtp_port else 0,
            # Always explicit: a child reading DIALTONE_METRICS_PORT would take the pool's.
            "metrics_port": b2bua_pool.child_metrics_port(pool_metrics, index)})

    dispatcher = None
    if list_file is not None:
        dispatcher = b2bua_pool.PoolDispatcher(list_file, address or params["host"],
                                               params["port"], params["max_calls"], ctl)
    b2bua_pool.run_pool(count, serve, metrics_host=settings.metrics_host,
                        metrics_port=pool_metrics, dispatcher=dispatcher)


def spawn_worker(port: int, *, routes: Sequence[str] = (), dialplan_file: Path | None = None,
                 extra_args: Sequence[str] = (), env: dict[str, str] | None = None,
                 log_file: Path | None = None, new_session: bool = False,
                 ) -> subprocess.Popen[bytes]:
    """Start ``dialtone b2bua --port PORT`` as a child process (DATABASE_URL via ``env``).
    ``new_session``: out of the terminal's process group (Ctrl-C reaches only the parent,
    which stops its workers in order)."""
    args = [sys.executable, "-m", "dialtone.commands.b2bua", "--port", str(port)]
    for route in routes:
        args += ["--route", route]
    if dialplan_file is not None:
        args += ["--dialplan", str(dialplan_file)]
    args += list(extra_args)
    out = log_file.open("ab") if log_file is not None else subprocess.DEVNULL
    # A worker dies with its parent: a SIGKILLed `dialtone up` leaves no worker behind.
    return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=new_session,
                            preexec_fn=die_with_parent)  # noqa: PLW1509 - see die_with_parent


def main() -> None:
    """``python -m dialtone.commands.b2bua``: the same command without the CLI group."""
    settings = Settings()
    logs.configure("b2bua", settings.log_level)
    setup_tracing("b2bua")
    command.main(obj=settings, prog_name="dialtone b2bua")


if __name__ == "__main__":
    main()
