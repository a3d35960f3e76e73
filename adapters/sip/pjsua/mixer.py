"""Who hears whom in a call: the conference-bridge connections, declared.

``conversation`` says which audio ports should transmit to which, from the
call's parties (pure: works on any hashable port handles, so it is unit-tested
without pjsua2). ``Mixer`` makes pjsua2's bridge match it, connecting what is
missing and disconnecting what is no longer wanted, so every change of the
call (answer, hold, a supervisor joining or switching mode, recording) is one
recomputation instead of a hand-kept list of ``startTransmit`` calls.

Supervision modes (``SupervisionMode``):
- monitor: the supervisor hears the caller and the agent; nobody hears them;
- whisper: as monitor, and the agent hears the supervisor (the caller does not);
- barge: as monitor, and both hear the supervisor.
A recording hears the caller, the agent and a barging supervisor (what the
caller heard or said); a whisper stays off the record like it stays off the
caller's ear.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, TypeVar

import pjsua2 as pj

from domain.call import SupervisionMode

log = logging.getLogger(__name__)

P = TypeVar("P", bound=Hashable)
Route = tuple[Any, Any]


def conversation(caller: P | None, agent: P | None, *,
                 supervisors: Mapping[P, SupervisionMode] | None = None,
                 recorder: P | None = None, talking: bool = True) -> set[tuple[P, P]]:
    """The (source, sink) pairs of a call. ``talking`` False: the two parties
    do not hear each other (one holds the other, or a transfer is pending)."""
    routes: set[tuple[P, P]] = set()
    parties = [p for p in (caller, agent) if p is not None]
    if talking and caller is not None and agent is not None:
        routes |= {(caller, agent), (agent, caller)}
    for supervisor, mode in (supervisors or {}).items():
        routes |= {(party, supervisor) for party in parties}
        if mode is not SupervisionMode.MONITOR and agent is not None:
            routes.add((supervisor, agent))
        if mode is SupervisionMode.BARGE and caller is not None:
            routes.add((supervisor, caller))
    if recorder is not None:
        barging = [s for s, m in (supervisors or {}).items() if m is SupervisionMode.BARGE]
        routes |= {(source, recorder) for source in (*parties, *barging)}
    return routes


class Port:
    """A pjsua2 AudioMedia keyed by its bridge slot (the same port may come back
    as a new Python wrapper object on every ``getAudioMedia``)."""

    def __init__(self, media: pj.AudioMedia) -> None:
        self.media = media
        self.slot = int(media.getPortId())

    def __hash__(self) -> int:
        return self.slot

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Port) and other.slot == self.slot


def port(media: pj.AudioMedia | None) -> Port | None:
    return None if media is None else Port(media)


class Mixer:
    """Keeps the bridge connections it made equal to the wanted set."""

    def __init__(self) -> None:
        self._current: dict[tuple[int, int], tuple[Port, Port]] = {}

    def apply(self, wanted: Iterable[tuple[Port, Port]]) -> None:
        want = {(src.slot, dst.slot): (src, dst) for src, dst in wanted}
        for key in self._current.keys() - want.keys():
            src, dst = self._current[key]
            try:
                src.media.stopTransmit(dst.media)
            except pj.Error:
                log.debug("bridge slot %d or %d already gone", *key)
        # Every wanted connection again, not only the new ones: a slot freed by a
        # leg that hung up may have been reused by a new port since (connecting
        # twice is a no-op in the bridge).
        for key in list(want):
            src, dst = want[key]
            try:
                src.media.startTransmit(dst.media)
            except pj.Error as error:
                log.warning("cannot connect bridge slot %d to %d: %s", *key, error.info())
                del want[key]
        self._current = want

    def clear(self) -> None:
        self.apply(())

    def forget(self) -> None:
        """Drop the record without touching the bridge: the call's ports are going
        away, and pjsua removes a port's connections with it (a stop on a port
        already gone only makes pjsip log an error)."""
        self._current = {}

    @property
    def routes(self) -> set[tuple[int, int]]:
        return set(self._current)
