"""Music on hold through pjsua2's conference bridge.

One looping AudioMediaPlayer per worker feeds every held party (a bridge port
may transmit to many sinks). Create it on the pjsua2 thread after the Endpoint
started and drop it before the Endpoint is destroyed.
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
