"""A prompt's pjsua2 player, on a real pjsua2 Endpoint: stopped when its prompt has
been said, it keeps its bridge port for a moment, so that an end-of-file event
already on its way never reaches a freed player (adapters/media/player.py; the
worker died of a segmentation fault at a menu prompt's end on 2026-12-05)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pjsua2 as pj
import pytest

from adapters.media.player import RELEASE_AFTER_S, MusicOnHold, PromptPlayer
from adapters.media.tones import write_wav
from adapters.sip.pjsua.endpoint import EndpointConfig, EventLoop, create_endpoint
from tests.fixtures.sip import free_udp_port

pytestmark = pytest.mark.sip

PROMPT_S = 0.2


@pytest.fixture
def endpoint() -> Iterator[pj.Endpoint]:
    endpoint, writer = create_endpoint(EndpointConfig(port=free_udp_port()))
    try:
        yield endpoint
    finally:
        endpoint.libDestroy()
        del writer


def poll_until(loop: EventLoop, done: Callable[[], bool], seconds: float) -> bool:
    """Run the loop until ``done`` or ``seconds`` have passed; whether ``done``."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        loop.poll(10)
    return done()


def test_a_prompt_stopped_at_its_end_keeps_its_port_a_moment_then_releases_it(
        endpoint: pj.Endpoint, tmp_path: Path) -> None:
    loop = EventLoop(endpoint)
    wav = tmp_path / "prompt.wav"
    write_wav(wav, [(660.0, PROMPT_S)])
    sink = endpoint.audDevManager().getPlaybackDevMedia()
    # Music keeps the bridge's clock going, as a call's audio does: pjsua closes an
    # idle sound device after a second, and a port leaves the bridge on a clock tick.
    music = MusicOnHold(wav)
    music.play_to(sink)
    idle_ports = endpoint.mediaActivePorts()

    prompt = PromptPlayer(wav, sink, loop.call_later)
    assert endpoint.mediaActivePorts() == idle_ports + 1
    poll_until(loop, lambda: False, PROMPT_S + 0.1)  # said to its end, as FrontAudio times it
    prompt.stop()
    stopped_at = time.monotonic()

    assert not poll_until(loop, lambda: endpoint.mediaActivePorts() == idle_ports,
                          RELEASE_AFTER_S / 2), "the player was released as it stopped"
    assert poll_until(loop, lambda: endpoint.mediaActivePorts() == idle_ports,
                      RELEASE_AFTER_S + 5), "the player was never released"
    assert time.monotonic() - stopped_at >= RELEASE_AFTER_S
    prompt.stop()  # a second stop is a no-op
    assert endpoint.mediaActivePorts() == idle_ports
    music.stop_to(sink)
    del music  # before libDestroy, as the worker drops its players
