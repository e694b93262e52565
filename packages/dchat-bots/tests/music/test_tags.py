"""read_tags on hostile files: any bytes give tags or UnreadableTrackError, never another error."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutagen.flac import FLAC

from dchat_bots.music import MusicDependencyError, UnreadableTrackError, read_tags

RELAXED = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def test_tags_are_cleaned_cut_and_parsed_leniently(tmp_path: Path, audio) -> None:
    song = audio.write_wav(tmp_path / "song.wav", seconds=0.5)
    title = "Line one\nLine two\x1b[2J\t" + "y" * 5000  # (a NUL would end an ID3 value)
    audio.tag_wav(song, title=title, artist="  A  B  ", album="\u202eevil", track="x/12")
    tags = read_tags(song)
    assert tags.title.startswith("Line one Line two [2J y")
    assert len(tags.title) == 200
    assert (tags.artist, tags.track_no, tags.duration_ms) == ("A B", 0, 500)
    assert "\u202e" not in tags.album  # bidi overrides cannot reorder a bot's reply
    audio.tag_wav(song, title="T", artist="A", album="B", track="123456789")
    assert read_tags(song).track_no == 0


@RELAXED
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".mp3", ".flac", ".wav", ".ogg"]))
def test_random_bytes_never_raise_anything_else(tmp_path: Path, data: bytes, suffix: str) -> None:
    path = tmp_path / f"x{suffix}"
    path.write_bytes(data)
    with contextlib.suppress(UnreadableTrackError):
        read_tags(path)


@RELAXED
@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8))
def test_a_corrupted_tagged_file_never_raises_anything_else(tmp_path: Path, audio, flips) -> None:
    original = tmp_path / "original.wav"
    if not original.exists():
        audio.tag_wav(audio.write_wav(original), title="T", artist="A", album="B", track="1")
    data = bytearray(original.read_bytes())
    for offset, value in flips:
        data[offset % len(data)] = value
    broken = tmp_path / "broken.wav"
    broken.write_bytes(bytes(data))
    try:
        tags = read_tags(broken)
    except UnreadableTrackError:
        return
    assert len(tags.title) <= 200
    assert 0 <= tags.duration_ms <= 24 * 3600 * 1000


def test_a_huge_claimed_duration_is_unknown(tmp_path: Path) -> None:
    # A FLAC header is enough for mutagen; claim 2**36 samples at 1 Hz (over 2000 years).
    info = (16).to_bytes(2, "big") * 2 + bytes(6)  # block sizes, frame sizes
    info += ((1 << 44) | (0 << 41) | (15 << 36) | (2**36 - 1)).to_bytes(8, "big") + bytes(16)
    path = tmp_path / "long.flac"
    path.write_bytes(b"fLaC" + b"\x80" + len(info).to_bytes(3, "big") + info)
    assert FLAC(path).info.length > 1e9
    assert read_tags(path).duration_ms == 0


def test_without_mutagen_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "mutagen", None)
    with pytest.raises(MusicDependencyError, match=r"dchat-bots\[music\]"):
        read_tags(tmp_path / "any.mp3")
