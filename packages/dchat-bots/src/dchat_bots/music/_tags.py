"""Tags of one audio file, read with mutagen (the ``dchat-bots[music]`` extra).

mutagen parses untrusted bytes; whatever it raises on a broken or hostile
file (its own errors, but also ``struct.error``, ``IndexError``, ...) becomes
one :class:`UnreadableTrackError`. Values are cut and cleaned
(:func:`clean_text`), durations bounded, track numbers parsed leniently
(``"3/12"`` is 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import MusicDependencyError, UnreadableTrackError
from ._track import clean_text

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ("TrackTags", "read_tags")

MAX_DURATION_MS = 24 * 3600 * 1000
"""Longer claimed durations are treated as unknown (a hostile header can claim years)."""

# Where each format keeps a field: Vorbis comments (FLAC, Ogg), ID3 (MP3, WAV,
# AIFF), MP4 atoms.
_KEYS = {
    "title": ("title", "TIT2", "\xa9nam"),
    "artist": ("artist", "TPE1", "\xa9ART", "albumartist", "TPE2", "aART"),
    "album": ("album", "TALB", "\xa9alb"),
    "track": ("tracknumber", "TRCK", "trkn"),
}
# mutagen's class name -> the media type a dchat node takes for it.
_TYPES = {
    "MP3": "audio/mpeg",
    "EasyMP3": "audio/mpeg",
    "FLAC": "audio/flac",
    "OggVorbis": "audio/ogg",
    "OggOpus": "audio/ogg",
    "OggFLAC": "audio/ogg",
    "WAVE": "audio/wav",
    "MP4": "audio/mp4",
    "EasyMP4": "audio/mp4",
}


@dataclass(frozen=True, slots=True)
class TrackTags:
    """What the tags say ("" / 0 where they say nothing)."""

    title: str
    artist: str
    album: str
    duration_ms: int
    track_no: int
    media_type: str
    has_picture: bool = False


def read_tags(path: Path) -> TrackTags:
    """The tags of the audio file at ``path``.

    Raises:
        UnreadableTrackError: not an audio format dchat can share, or a broken file.
        MusicDependencyError: mutagen is not installed.
    """
    try:
        import mutagen  # the optional extra, imported on first use
    except ImportError:
        raise MusicDependencyError("reading tags needs mutagen: dchat-bots[music]") from None
    try:
        audio = mutagen.File(path)
    except Exception as exc:  # mutagen raises many types on hostile input
        raise UnreadableTrackError(f"{path.name}: {type(exc).__name__}") from None
    if audio is None:
        raise UnreadableTrackError(f"{path.name}: not a known audio format")
    media_type = _TYPES.get(type(audio).__name__)
    if media_type is None:
        raise UnreadableTrackError(f"{path.name}: {type(audio).__name__} cannot be shared")
    tags = audio.tags if audio.tags is not None else {}
    return TrackTags(
        title=clean_text(_first(tags, "title")),
        artist=clean_text(_first(tags, "artist")),
        album=clean_text(_first(tags, "album")),
        duration_ms=_duration_ms(getattr(audio.info, "length", 0)),
        track_no=_track_no(_first(tags, "track")),
        media_type=media_type,
        has_picture=_has_picture(audio, tags),
    )


def picture(path: Path) -> bytes | None:
    """The first picture embedded in the file's tags (ID3 APIC, FLAC, MP4 covr), or None.

    Raises:
        UnreadableTrackError: the file cannot be parsed.
    """
    import mutagen

    try:
        audio = mutagen.File(path)
        if audio is None:
            return None
        for found in _pictures(audio, audio.tags if audio.tags is not None else {}):
            return bytes(found)
    except Exception as exc:  # mutagen raises many types on hostile input
        raise UnreadableTrackError(f"{path.name}: {type(exc).__name__}") from None
    return None


def _pictures(audio: Any, tags: Any) -> list[bytes]:
    found = [p.data for p in getattr(audio, "pictures", [])]  # FLAC
    if hasattr(tags, "getall"):  # ID3
        found += [frame.data for frame in tags.getall("APIC")]
    elif isinstance(tags.get("covr"), list):  # MP4
        found += list(tags["covr"])
    return found


def _has_picture(audio: Any, tags: Any) -> bool:
    try:
        return bool(_pictures(audio, tags))
    except Exception:  # a malformed picture block is no picture
        return False


def _first(tags: Any, field: str) -> object:
    """The first value of ``field`` under any of its keys, as a plain value ("" if none)."""
    for key in _KEYS[field]:
        try:
            value = tags.get(key)
        except (ValueError, KeyError, TypeError):
            continue
        value = getattr(value, "text", value)  # an ID3 frame holds its values in .text
        while isinstance(value, list | tuple) and value:
            value = value[0]
        if value not in (None, "", [], ()):
            return value
    return ""


def _duration_ms(length: object) -> int:
    if not isinstance(length, int | float) or not math.isfinite(length) or length < 0:
        return 0
    millis = round(length * 1000)
    return millis if millis <= MAX_DURATION_MS else 0


def _track_no(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        head = str(value)[:16].split("/")[0].strip()
        number = int(head) if head.isascii() and head.isdecimal() else 0
    return number if 0 <= number < 100_000 else 0
