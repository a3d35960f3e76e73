"""Music on hold and prompts through pjsua2's conference bridge.

One looping AudioMediaPlayer per piece of music per worker feeds every party
that should hear it (a bridge port may transmit to many sinks). A prompt is a
one-shot player, created for one party and released a moment after it ends.
Create them on the pjsua2 thread after the Endpoint started and drop them
before the Endpoint is destroyed.

Why a prompt's player outlives its prompt by a second: pjsua2 2.15 delivers a
player's end of file on its media event thread, after the bridge read the last
frame, and calls back into the C++ player then. A player destroyed while that
event is on its way is used after it was freed, and the worker dies of a
segmentation fault with every call it holds (pjproject issue 4812, fixed by
pull request 5045 after 2.15.1, the wheel used here). A prompt's end is timed
from its length, so stopping it races exactly that event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pjsua2 as pj

from adapters.media.files import tenant_file

log = logging.getLogger(__name__)

# Time for an end-of-file event already on its way to reach a stopped player. The
# bridge ticks every 20 ms and the event follows its tick; a second is fifty ticks
# of margin for a loaded machine, at the cost of one bridge port held that long.
# Ports and pjsua players are fixed in number (32 each in this build): only about 30
# prompts stopped within one second fill them, and then FrontAudio skips the prompt
# ("cannot play") until they come back (tests/integration/test_prompt_player.py).
RELEASE_AFTER_S = 1.0


class MusicOnHold:
    def __init__(self, wav: Path) -> None:
        self._player = pj.AudioMediaPlayer()
        self._player.createPlayer(str(wav), 0)  # 0: loop for ever

    def play_to(self, sink: pj.AudioMedia) -> None:
        self._player.startTransmit(sink)  # connecting twice is a no-op in the bridge

    def stop_to(self, sink: pj.AudioMedia) -> None:
        try:
            self._player.stopTransmit(sink)
        except pj.Error:
            log.debug("hold music sink already gone")  # the party hung up meanwhile


class MusicLibrary:
    """Music on hold by name and tenant: ``default`` is the worker's own; any other
    name is the tenant's file of that name (``files.tenant_file``: ``tenants/<tenant>/
    moh/<name>.wav``, and for the default tenant ``moh/<name>.wav``) when it exists
    and the bridge can play it, else the default."""

    def __init__(self, media_dir: Path, default: Path) -> None:
        self._media_dir = media_dir
        self._default = default
        self._players: dict[Path, MusicOnHold] = {}

    def music(self, name: str, tenant: str) -> MusicOnHold:
        found = tenant_file(self._media_dir, tenant, "moh", name) if name != "default" else None
        if found is not None and found not in self._players:
            try:
                self._players[found] = MusicOnHold(found)
            except pj.Error as error:  # a format pjmedia does not play, a damaged file
                log.error("music on hold %s cannot be played (%s): the default plays",
                          found, error.info())
                found = None
        path = found or self._default
        if path not in self._players:
            self._players[path] = MusicOnHold(path)
        return self._players[path]

    def close(self) -> None:
        self._players.clear()


class PromptPlayer:
    """Plays one file once to one party; ``later`` (the pjsua2 thread's timers)
    releases the player once it has stopped (see the module's docstring)."""

    def __init__(self, wav: Path, sink: pj.AudioMedia,
                 later: Callable[[float, Callable[[], None]], object]) -> None:
        self._sink = sink
        self._later = later
        self._player: pj.AudioMediaPlayer | None = pj.AudioMediaPlayer()
        self._player.createPlayer(str(wav), pj.PJMEDIA_FILE_NO_LOOP)
        self._player.startTransmit(sink)

    def stop(self) -> None:
        player, self._player = self._player, None
        if player is None:
            return
        try:
            player.stopTransmit(self._sink)
        except pj.Error:
            log.debug("prompt sink already gone")
        self._later(RELEASE_AFTER_S, partial(_released, player))


def _released(player: pj.AudioMediaPlayer) -> None:
    """The release timer's callback: holding ``player`` was its whole job (the timer
    had the last reference to it, and drops it once this returns)."""
