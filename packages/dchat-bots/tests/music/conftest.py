"""A small real music library, made by the tests: WAV files (stdlib ``wave``) tagged with mutagen.

``audio``: the helpers that write and tag WAV files.
``library_dir``: ``The Testers/Tones/`` holds two tagged tracks and a PNG
cover, ``loose/hum.wav`` has no tags (its title is its file name).
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import pytest
from mutagen.id3 import APIC, TALB, TIT2, TPE1, TRCK
from mutagen.wave import WAVE

PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf000003010100c9fe92ef0000000049454e44ae426082"
)


def write_wav(path: Path, *, seconds: float = 0.25, freq: float = 440.0) -> Path:
    """A real mono 8 kHz 16-bit WAV: a sine tone of ``seconds``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = 8000
    samples = (
        int(6000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


def tag_wav(
    path: Path, *, title: str, artist: str, album: str, track: str, picture: bytes = b""
) -> Path:
    """ID3 tags in the WAV's ``id3 `` chunk (how mutagen and most players tag WAV)."""
    audio = WAVE(str(path))
    if audio.tags is None:
        audio.add_tags()
    assert audio.tags is not None
    audio.tags.add(TIT2(encoding=3, text=title))
    audio.tags.add(TPE1(encoding=3, text=artist))
    audio.tags.add(TALB(encoding=3, text=album))
    audio.tags.add(TRCK(encoding=3, text=track))
    if picture:
        audio.tags.add(APIC(encoding=3, mime="image/png", type=3, desc="cover", data=picture))
    audio.save()
    return path


class AudioFiles:
    """The helpers above, as the ``audio`` fixture (test modules cannot import conftest)."""

    png = PNG_1X1
    write_wav = staticmethod(write_wav)
    tag_wav = staticmethod(tag_wav)


@pytest.fixture(scope="session")
def audio() -> AudioFiles:
    return AudioFiles()


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    album = root / "The Testers" / "Tones"
    tag_wav(
        write_wav(album / "01 blue.wav", freq=440),
        title="Blue Moon",
        artist="The Testers",
        album="Tones",
        track="1/2",
    )
    tag_wav(
        write_wav(album / "02 red.wav", seconds=1.5, freq=660),
        title="Red Sun",
        artist="The Testers",
        album="Tones",
        track="2/2",
    )
    (album / "cover.png").write_bytes(PNG_1X1)
    write_wav(root / "loose" / "hum.wav", freq=220)
    return root
