"""Kamailio for tests and benchmarks: the project's configuration (infra/kamailio/,
the same files the compose stack and the Kubernetes init step render) written into
a work directory with its placeholders filled, and started in the foreground.

Optional parts of the configuration are switched on with preprocessor defines
(``kamailio -A NAME``), as the included files' ``#!ifdef`` blocks say.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "infra" / "kamailio"
KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
KAMCMD = shutil.which("kamcmd") or "/usr/sbin/kamcmd"


def dispatcher_list(worker_ports: Iterable[int], *, host: str = "127.0.0.1",
                    maxload: int = 2) -> str:
    """Dispatcher set 1, one worker a line, each allowed ``maxload`` calls at once
    (2: a worker's four pjsua2 legs; docs/edge.md, *Admission and capacity*)."""
    return "".join(f"1 sip:{host}:{port} 0 0 duid=w{port};maxload={maxload}\n"
                   for port in worker_ports)


def render_config(out: Path, values: Mapping[str, str]) -> Path:
    """Every ``*.cfg`` of infra/kamailio/ into ``out`` with each placeholder (a key of
    ``values``) replaced; returns the main file's path."""
    out.mkdir(parents=True, exist_ok=True)
    for source in sorted(CONFIG_DIR.glob("*.cfg")):
        text = source.read_text()
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        (out / source.name).write_text(text)
    return out / "kamailio.cfg"


@dataclass
class Kamailio:
    """One running Kamailio and where its output goes."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    control: Path | None = None  # the ctl module's socket (kamcmd -s unix:<path>)
    config: Path | None = None  # its main file: on every child's command line too

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def rpc(self, *command: str, timeout: float = 10) -> str:
        """``kamcmd <command>`` against this Kamailio (e.g. ``htable.dump blocked``): its
        output; raises CalledProcessError when kamcmd fails."""
        if self.control is None:
            raise RuntimeError("this Kamailio has no control socket")
        done = subprocess.run([KAMCMD, "-s", f"unix:{self.control}", *command],
                              capture_output=True, text=True, timeout=timeout, check=True)
        return done.stdout


    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM Kamailio, give it ``timeout`` s, then SIGKILL it and whatever is left
        of its children: a child stuck on a shared-memory lock ignores SIGTERM and
        outlives the main process, holding its port (seen with the registrar's modules
        loaded: an orphan on a futex after the test's SIGKILL of the main process).
        Children orphaned before this call (the main process killed or crashed) are
        found by the configuration file on their command line."""
        children = set(child_pids(self.process.pid))
        if self.config is not None:
            children.update(_running(self.config))
        children.discard(self.process.pid)  # reaped below: its pid may be reused
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for pid in children:
            if _is_kamailio(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Kamailio forks every child from its
    main process), read from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def _running(config: Path) -> list[int]:
    """The Kamailio processes running ``config`` (forked children keep the main
    process's command line, ``-f <config>`` included), whoever their parent now is."""
    wanted = str(config).encode()
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            args = cmdline.read_bytes().split(b"\0")
            if args and args[0].endswith(b"kamailio") and wanted in args:
                found.append(int(cmdline.parent.name))
    return found


def _is_kamailio(pid: int) -> bool:
    """Whether ``pid`` is (still) a Kamailio process, not a pid reused since."""
    try:
        return b"kamailio" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _control_socket(work: Path) -> Path:
    """Where the ctl module listens: in ``work`` unless that path is too long for a
    unix socket (108 bytes with its NUL), then in a fresh directory under /tmp."""
    path = work / "ctl"
    if len(str(path)) < 100:
        return path
    return Path(tempfile.mkdtemp(prefix="kamctl-")) / "ctl"


def start_kamailio(work: Path, worker_ports: Sequence[int], *, port: int,
                   defines: Sequence[str] = (), values: Mapping[str, str] | None = None,
                   maxload: int = 2, settle_s: float = 1.0) -> Kamailio:
    """Render the configuration into ``work`` and start Kamailio listening on
    127.0.0.1:``port`` in front of the workers on ``worker_ports``.

    Raises RuntimeError with Kamailio's log when it exits at start (a config it
    refuses, a port in use)."""
    ds_list = work / "dispatcher.list"
    ds_list.parent.mkdir(parents=True, exist_ok=True)
    ds_list.write_text(dispatcher_list(worker_ports, maxload=maxload))
    control = _control_socket(work)
    # EDGE_SIP_DOMAINS: none but the proxy's own address, unless ``values`` says.
    config = render_config(work, {"LISTEN_ADDR": f"127.0.0.1:{port}",
                                  "DISPATCHER_LIST": str(ds_list), "EDGE_SIP_DOMAINS": "",
                                  "EDGE_CTL_SOCKET": str(control), **(values or {})})
    log = work / "kamailio.log"
    args = [KAMAILIO, "-DD", "-E", "-f", str(config)]
    for define in defines:
        args += ["-A", define]
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    kamailio = Kamailio(process, port, log, control, config)
    time.sleep(settle_s)  # it binds within milliseconds, or exits on a bad config
    if not kamailio.alive():
        raise RuntimeError(f"kamailio exited at start:\n{kamailio.log_text()}")
    return kamailio
