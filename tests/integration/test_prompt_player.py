"""A prompt's pjsua2 player, on a real pjsua2 Endpoint: stopped when its prompt has
been said, it keeps its bridge port for a moment, so that an end-of-file event
already on its way never reaches a freed player (adapters/media/player.py; the
worker died of a segmentation fault at a menu prompt's end on 2026-12-05)."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pjsua2 as pj
import pytest

from adapters.media.player import RELEASE_AFTER_S, MusicLibrary, MusicOnHold, PromptPlayer
from adapters.media.tones import write_wav
from adapters.sip.pjsua.endpoint import EndpointConfig, EventLoop, create_endpoint
from tests.fixtures.sip import free_udp_port

pytestmark = pytest.mark.sip

PROMPT_S = 0.2


@dataclass
class Bridge:
    """A running conference bridge with one prompt file to play into it."""

    endpoint: pj.Endpoint
    loop: EventLoop
    wav: Path
    sink: pj.AudioMedia
    idle_ports: int

    def prompt(self) -> PromptPlayer:
        return PromptPlayer(self.wav, self.sink, self.loop.call_later)

    def stop_prompts(self, count: int) -> int:
        """Start and stop up to ``count`` prompts at once; how many before pjsua refused one."""
        for started in range(count):
            try:
                self.prompt().stop()
            except pj.Error:
                return started
        return count

    def poll_until(self, done: Callable[[], bool], seconds: float) -> bool:
        """Run the loop until ``done`` or ``seconds`` have passed; whether ``done``."""
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            self.loop.poll(10)
        return done()

    def idle(self) -> bool:
        return bool(self.endpoint.mediaActivePorts() == self.idle_ports)


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Bridge]:
    endpoint, writer = create_endpoint(EndpointConfig(port=free_udp_port()))
    wav = tmp_path / "prompt.wav"
    write_wav(wav, [(660.0, PROMPT_S)])
    sink = endpoint.audDevManager().getPlaybackDevMedia()
    # Music keeps the bridge's clock going, as a call's audio does: pjsua closes an
    # idle sound device after a second, and a port leaves the bridge on a clock tick.
    music = MusicOnHold(wav)
    music.play_to(sink)
    loop = EventLoop(endpoint)
    try:
        yield Bridge(endpoint, loop, wav, sink, endpoint.mediaActivePorts())
    finally:
        loop.clear()  # players still held go before libDestroy, as the worker drops them
        music.stop_to(sink)
        del music
        endpoint.libDestroy()
        del writer


def test_a_prompt_stopped_at_its_end_keeps_its_port_a_moment_then_releases_it(
        bridge: Bridge) -> None:
    prompt = bridge.prompt()
    assert bridge.endpoint.mediaActivePorts() == bridge.idle_ports + 1
    bridge.poll_until(lambda: False, PROMPT_S + 0.1)  # said to its end, as FrontAudio times it
    prompt.stop()
    stopped_at = time.monotonic()

    assert not bridge.poll_until(bridge.idle, RELEASE_AFTER_S / 2), \
        "the player was released as it stopped"
    assert bridge.poll_until(bridge.idle, RELEASE_AFTER_S + 5), "the player was never released"
    assert time.monotonic() - stopped_at >= RELEASE_AFTER_S
    prompt.stop()  # a second stop is a no-op
    assert bridge.idle()


def test_prompts_stopped_faster_than_they_are_released_run_out_only_for_that_moment(
        bridge: Bridge) -> None:
    # A caller pressing keys through menus stops a prompt per key; pjsua has a fixed
    # number of players and bridge ports, so a burst of held prompts can fill them.
    # The worker then skips the prompt ("cannot play"); the room must come back.
    more_than_can_be_held = bridge.endpoint.mediaMaxPorts()
    assert bridge.stop_prompts(more_than_can_be_held) < more_than_can_be_held

    assert bridge.poll_until(bridge.idle, RELEASE_AFTER_S + 5), "held prompts were never released"
    bridge.prompt().stop()  # room again


def test_music_on_hold_is_the_queue_tenants_file_or_else_the_default(
        bridge: Bridge, tmp_path: Path) -> None:
    moh = tmp_path / "media" / "tenants" / "acme" / "moh"
    write_wav(moh / "jazz.wav", [(440.0, 0.2)])
    # WAVE_FORMAT_EXTENSIBLE, which pjmedia's player refuses (PJMEDIA_EWAVEUNSUPP).
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 8000, 16000, 2, 16, 22, 16, 4) + b"\1" * 16
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + \
        struct.pack("<I", 1600) + b"\0" * 1600
    (moh / "broken.wav").write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    library = MusicLibrary(tmp_path / "media", bridge.wav)
    try:
        default = library.music("default", "acme")
        assert library.music("jazz", "acme") is not default
        assert library.music("jazz", "globex") is default  # acme's music is acme's
        assert library.music("broken", "acme") is default  # logged, never raised
    finally:
        library.close()  # its players go before the endpoint
