"""Recorded media a tenant dropped in (prompts, music on hold), and what a WAV
file's RIFF header says about it.

Each tenant's files are its own: ``<media>/tenants/<tenant>/prompts/<name>.wav``
and ``.../moh/<name>.wav``. The directories of before tenants, ``<media>/prompts``
and ``<media>/moh``, are the default tenant's alone, looked up after its own:
another tenant naming a file there (or another tenant's) gets its generated
prompt or the default music, never that file. (Tenants live under ``tenants/``
so that no tenant's slug, ``prompts`` or ``moh`` say, names the shared ones.)

A prompt is timed from its length (the player's end of file is not waited for,
see ``player.py``), so the length of every WAV the media bridge plays must be
known: 16-bit PCM, and the G.711 A-law and mu-law that telephony recordings
usually are. The standard library's ``wave`` reads PCM only and raises on the
others, so the header is read here: the ``fmt `` chunk's byte rate and the
``data`` chunk's size.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from pathlib import Path

from domain.addressing import DEFAULT_TENANT, KEY_PATTERN, RECORDING_PATTERN

log = logging.getLogger(__name__)

PCM, ALAW, MULAW, EXTENSIBLE = 1, 6, 7, 0xFFFE
# What pjmedia's WAV player opens (format tag, bits per sample); it refuses the rest,
# WAVE_FORMAT_EXTENSIBLE and 8-bit PCM among them (PJMEDIA_EWAVEUNSUPP).
PLAYABLE = frozenset({(PCM, 16), (ALAW, 8), (MULAW, 8)})
FORMAT_NAMES = {PCM: "PCM", ALAW: "A-law", MULAW: "mu-law", EXTENSIBLE: "WAVE_FORMAT_EXTENSIBLE"}


@dataclass(frozen=True)
class WavInfo:
    format_tag: int
    channels: int
    rate: int
    bits: int
    seconds: float

    @property
    def playable(self) -> bool:
        return (self.format_tag, self.bits) in PLAYABLE

    def describe(self) -> str:
        name = FORMAT_NAMES.get(self.format_tag, f"format {self.format_tag:#x}")
        return f"{name} {self.bits}-bit {self.rate} Hz"


def tenant_file(media_dir: Path, tenant: str, kind: str, name: str) -> Path | None:
    """The tenant's ``kind`` (``prompts``, ``moh``) file called ``name`` (``.wav``
    added unless it ends so), if it exists; for the default tenant also the shared
    directory's (see the module's docstring). None for a name that is no file name,
    and for a file that cannot be looked up (logged): the caller plays its fallback
    (the default music, the generated melody, a goodbye) rather than nothing."""
    if not RECORDING_PATTERN.fullmatch(name) or not KEY_PATTERN.fullmatch(tenant):
        return None  # (no segment is ``..``: each starts with a letter or a digit)
    file_name = name if name.endswith(".wav") else f"{name}.wav"
    roots = [media_dir / "tenants" / tenant / kind]
    if tenant == DEFAULT_TENANT:
        roots.append(media_dir / kind)
    for root in roots:
        try:
            if (root / file_name).is_file():
                return root / file_name
        except OSError as error:  # a directory the worker may not read (EACCES), an I/O error
            log.error("media file %s cannot be looked up (%s): taken as missing",
                      root / file_name, error)
    return None


def read_wav(path: Path) -> WavInfo:
    """The format and length of the WAV at ``path``; ValueError if it is not a RIFF
    WAVE file with a format and data (OSError if it cannot be read)."""
    with path.open("rb") as wav:
        size = path.stat().st_size
        head = wav.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
            raise ValueError(f"{path} is not a RIFF WAVE file")
        fmt: tuple[int, ...] | None = None
        data: int | None = None
        while fmt is None or data is None:
            chunk = wav.read(8)
            if len(chunk) < 8:
                raise ValueError(f"{path} has no {'fmt ' if fmt is None else 'data'} chunk")
            name, length = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"fmt ":
                body = wav.read(length)
                if len(body) < 16:
                    raise ValueError(f"{path} has a short fmt chunk")
                fmt = struct.unpack("<HHIIHH", body[:16])
                wav.seek(length % 2, 1)
            else:
                if name == b"data":  # a streamed file's size may be unset (0xFFFFFFFF)
                    data = min(length, size - wav.tell())
                wav.seek(length + length % 2, 1)
    tag, channels, rate, byte_rate, _, bits = fmt
    if byte_rate == 0:
        raise ValueError(f"{path} says it plays 0 bytes a second")
    return WavInfo(tag, channels, rate, bits, data / byte_rate)
