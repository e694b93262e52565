"""The provider interface: typed :class:`Track` values and the :class:`MusicProvider` protocol.

A provider is anything that can find tracks and hand over their bytes: the
local library (:class:`~dchat_bots.music.LocalLibrary`) and a Subsonic server
(:class:`~dchat_bots.music.SubsonicClient`) are the two built in. Providers are
synchronous (SQLite, file reads, a blocking HTTP client); an async bot calls
them in a worker thread (:func:`~dchat_bots.music.share_track` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractContextManager
    from pathlib import Path

__all__ = ("AUDIO_TYPES", "MAX_TEXT", "MusicProvider", "Track", "clean_text")

MAX_TEXT = 200
"""Characters kept of a title, artist or album (longer tags are cut)."""

AUDIO_TYPES = {
    "audio/mpeg": "audio/mpeg",
    "audio/mp3": "audio/mpeg",
    "audio/flac": "audio/flac",
    "audio/x-flac": "audio/flac",
    "audio/ogg": "audio/ogg",
    "audio/opus": "audio/ogg",
    "audio/wav": "audio/wav",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/mp4": "audio/mp4",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "audio/webm": "audio/webm",
}
"""Audio media types (and common aliases) that a dchat node takes as an audio attachment."""


def clean_text(value: object, limit: int = MAX_TEXT) -> str:
    """``value`` as one line of printable text, at most ``limit`` characters.

    Tags and server replies are outside data: control characters (newlines,
    terminal escapes, NULs) become spaces so that a title cannot forge lines of
    a bot's reply.
    """
    text = value if isinstance(value, str) else str(value)
    text = "".join(c if c.isprintable() else " " for c in text[: limit * 4])
    return " ".join(text.split())[:limit]


@dataclass(frozen=True, slots=True)
class Track:
    """One playable track, as a provider describes it.

    Attributes:
        id: the provider's id for it (opaque; pass it back to ``get``/``open``).
        title: from the tags (or the file name when untagged).
        artist: "" when unknown.
        album: "" when unknown.
        duration_ms: 0 when unknown.
        track_no: the number on its album, 0 when unknown.
        media_type: one of :data:`AUDIO_TYPES`' values, e.g. ``audio/flac``.
        size: bytes of the file, 0 when the provider does not say.
        cover_art: the provider's cover art id, or None.
        file_name: a name for the shared file, e.g. ``03 - Song.flac``.
    """

    id: str
    title: str
    artist: str = ""
    album: str = ""
    duration_ms: int = 0
    track_no: int = 0
    media_type: str = "audio/mpeg"
    size: int = 0
    cover_art: str | None = None
    file_name: str = "track"

    @property
    def label(self) -> str:
        """``Artist - Title (m:ss)``: one line for a list of results or a caption."""
        name = f"{self.artist} - {self.title}" if self.artist else self.title
        if self.duration_ms <= 0:
            return name
        seconds = self.duration_ms // 1000
        return f"{name} ({seconds // 60}:{seconds % 60:02d})"


@runtime_checkable
class MusicProvider(Protocol):
    """What a bot needs of a music source.

    Every method raises :class:`~dchat_bots.music.MusicError` subclasses only.
    """

    def search(self, query: str, *, limit: int = 10) -> list[Track]:
        """Tracks matching every word of ``query`` (at most ``limit``).

        Raises:
            InvalidQueryError: empty, too long or too many words.
        """
        ...

    def get(self, track_id: str) -> Track:
        """The track with this id.

        Raises:
            TrackNotFoundError / SubsonicNotFoundError: no such track.
        """
        ...

    def stream(self, track_id: str) -> Iterator[bytes]:
        """The track's bytes in chunks, at most the provider's size cap in total.

        Raises:
            TrackTooLargeError: the track is (or turns out to be) over the cap.
        """
        ...

    def open(self, track_id: str) -> AbstractContextManager[Path]:
        """A file holding the track, valid inside the ``with`` block (for an attachment)."""
        ...

    def cover_art(self, track_id: str) -> bytes | None:
        """The track's cover image, or None when it has none."""
        ...
