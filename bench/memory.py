"""Memory of a group of processes as the benchmarks report it: PSS beside RSS.

RSS counts every page a process maps, shared or not, so N forked workers sharing
their parent's pages look N times as big as they are. PSS (proportional set size,
``/proc/<pid>/smaps_rollup``) divides each shared page between the processes that
map it: the sum over a group is what the group really costs the machine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Memory:
    """A group's memory at one moment, in KiB (sums over its processes)."""

    pss_kb: int = 0
    rss_kb: int = 0
    processes: int = 0

    def __add__(self, other: Memory) -> Memory:
        return Memory(self.pss_kb + other.pss_kb, self.rss_kb + other.rss_kb,
                      self.processes + other.processes)

    def per(self, count: float) -> tuple[float, float]:
        """(PSS, RSS) in MiB per ``count`` (workers, bridged calls)."""
        if count <= 0:
            return 0.0, 0.0
        return self.pss_kb / 1024 / count, self.rss_kb / 1024 / count

    def describe(self, workers: int, calls: float) -> str:
        pss_w, rss_w = self.per(workers)
        line = (f"PSS {self.pss_kb / 1024:.1f} MiB (RSS {self.rss_kb / 1024:.1f}) over "
                f"{self.processes} processes; per worker PSS {pss_w:.1f} MiB (RSS {rss_w:.1f})")
        if calls > 0:
            pss_c, rss_c = self.per(calls)
            line += f"; per bridged call ({calls:.1f}) PSS {pss_c:.1f} MiB (RSS {rss_c:.1f})"
        return line


def process_memory(pid: int) -> Memory:
    """One process's PSS and RSS from smaps_rollup (nothing if it has gone)."""
    fields: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("Pss", "Rss"):
                fields[name] = int(rest.split()[0])
    if not fields:
        return Memory()
    return Memory(fields.get("Pss", 0), fields.get("Rss", 0), 1)


def group_memory(pids: Iterable[int]) -> Memory:
    total = Memory()
    for pid in pids:
        total += process_memory(pid)
    return total


def with_children(pid: int) -> list[int]:
    """``pid`` and its direct children (a B2BUA pool: the parent and its workers)."""
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text()
            children += [int(p) for p in text.split()]
    return [pid, *children]


class PeakMemory:
    """The group's memory when it carried the most calls (of repeated samples): what
    a bridged call costs is that memory over those calls."""

    def __init__(self) -> None:
        self.peak = Memory()
        self.calls_at_peak = 0.0

    def sample(self, pids: Iterable[int], calls: float) -> Memory:
        now = group_memory(pids)
        if (calls, now.pss_kb) > (self.calls_at_peak, self.peak.pss_kb):
            self.peak, self.calls_at_peak = now, calls
        return now
