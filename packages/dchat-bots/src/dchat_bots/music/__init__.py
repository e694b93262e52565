"""Music for dchat bots: a provider interface, a local library, a Subsonic client, a bot's commands.

- :class:`MusicProvider` is what a bot needs of a music source (search, get,
  stream, open, cover art); :class:`Track` is what it returns.
- :class:`LocalLibrary` indexes a directory's audio files (tags read with
  mutagen: ``pip install 'dchat-bots[music]'``) in SQLite.
- :class:`SubsonicClient` speaks the Subsonic REST API (Navidrome, Airsonic,
  supysonic, ...).
- :class:`MusicCommands` turns ``/search``, ``/play``, ``/queue`` ... into
  replies; :func:`share_track` sends a track as an audio attachment through
  the bot's node (``examples/music_bot.py`` puts them together).

Errors: :class:`MusicError` and its tree (see ``_errors``).
"""

from __future__ import annotations

from ._commands import AudioSender as AudioSender
from ._commands import MusicCommands as MusicCommands
from ._commands import PlayReply as PlayReply
from ._commands import TextReply as TextReply
from ._commands import share_track as share_track
from ._errors import InvalidQueryError as InvalidQueryError
from ._errors import LibraryRootError as LibraryRootError
from ._errors import MusicDependencyError as MusicDependencyError
from ._errors import MusicError as MusicError
from ._errors import PathOutsideLibraryError as PathOutsideLibraryError
from ._errors import QueueFullError as QueueFullError
from ._errors import SubsonicApiError as SubsonicApiError
from ._errors import SubsonicAuthError as SubsonicAuthError
from ._errors import SubsonicError as SubsonicError
from ._errors import SubsonicForbiddenError as SubsonicForbiddenError
from ._errors import SubsonicNotFoundError as SubsonicNotFoundError
from ._errors import SubsonicProtocolError as SubsonicProtocolError
from ._errors import SubsonicUnreachableError as SubsonicUnreachableError
from ._errors import SubsonicVersionError as SubsonicVersionError
from ._errors import TrackNotFoundError as TrackNotFoundError
from ._errors import TrackTooLargeError as TrackTooLargeError
from ._errors import UnreadableTrackError as UnreadableTrackError
from ._library import LocalLibrary as LocalLibrary
from ._library import ScanReport as ScanReport
from ._queue import PlayQueue as PlayQueue
from ._subsonic import SubsonicClient as SubsonicClient
from ._subsonic import subsonic_token as subsonic_token
from ._tags import TrackTags as TrackTags
from ._tags import read_tags as read_tags
from ._track import MusicProvider as MusicProvider
from ._track import Track as Track

__all__ = (
    "AudioSender",
    "InvalidQueryError",
    "LibraryRootError",
    "LocalLibrary",
    "MusicCommands",
    "MusicDependencyError",
    "MusicError",
    "MusicProvider",
    "PathOutsideLibraryError",
    "PlayQueue",
    "PlayReply",
    "QueueFullError",
    "ScanReport",
    "SubsonicApiError",
    "SubsonicAuthError",
    "SubsonicClient",
    "SubsonicError",
    "SubsonicForbiddenError",
    "SubsonicNotFoundError",
    "SubsonicProtocolError",
    "SubsonicUnreachableError",
    "SubsonicVersionError",
    "TextReply",
    "Track",
    "TrackNotFoundError",
    "TrackTags",
    "TrackTooLargeError",
    "UnreadableTrackError",
    "read_tags",
    "share_track",
    "subsonic_token",
)
