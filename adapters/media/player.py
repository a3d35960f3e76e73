"""Music on hold and prompts through pjsua2's conference bridge.

One looping AudioMediaPlayer per piece of music per worker feeds every party
that should hear it (a bridge port may transmit to many sinks). A prompt is a
one-shot player, created for one party and dropped when it ends. Create them
on the pjsua2 thread after the Endpoint started and drop them before the
Endpoint is destroyed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pjsua2 as pj

log = logging.getLogger(__name__)


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
    """Music on hold by name: ``default`` is the worker's own; any other name is
    ``<media>/moh/<name>.wav`` when that file exists, else the default."""

    def __init__(self, media_dir: Path, default: Path) -> None:
        self._dir = media_dir / "moh"
        self._default = default
        self._players: dict[Path, MusicOnHold] = {}

    def music(self, name: str) -> MusicOnHold:
        path = self._dir / f"{name}.wav"
        if name == "default" or "/" in name or not path.is_file():
            path = self._default
        if path not in self._players:
            self._players[path] = MusicOnHold(path)
        return self._players[path]

    def close(self) -> None:
        self._players.clear()


class PromptPlayer:
    """Plays one file once to one party."""

    def __init__(self, wav: Path, sink: pj.AudioMedia) -> None:
        self._sink = sink
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
