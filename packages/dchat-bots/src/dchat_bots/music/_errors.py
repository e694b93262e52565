"""Errors of the music integration: one root, each error with the dchat kind saying whose fault::

    MusicError (DchatBotsError, the package's root)
    ├── MusicDependencyError(CallerError, ImportError)   mutagen missing: install dchat-bots[music]
    ├── InvalidQueryError(CallerError, ValueError)       empty, too long or too many words
    ├── LibraryRootError(CallerError, ValueError)        the library root is not a directory
    ├── QueueFullError(CallerError, OverflowError)       the play queue is at its cap
    ├── TrackNotFoundError(CallerError, LookupError)     no track with this id (local library)
    ├── PathOutsideLibraryError(CallerError, ValueError) a path leaves the root (.., symlink)
    ├── UnreadableTrackError(PeerError, ValueError)      a file's tags or format cannot be read
    ├── TrackTooLargeError(PeerError, ValueError)        a track or cover exceeds the size cap
    └── SubsonicError                                    root of the Subsonic client's errors
        ├── SubsonicUnreachableError(TransportError)     refused, reset, timed out
        ├── SubsonicProtocolError(PeerError, ValueError) the reply is not a Subsonic reply
        └── SubsonicApiError(PeerError)                  the server answered status "failed"
            ├── SubsonicAuthError                        codes 40-44: credentials or auth scheme
            ├── SubsonicVersionError                     codes 20, 30: protocol versions differ
            ├── SubsonicForbiddenError                   code 50: the user may not do this
            └── SubsonicNotFoundError(LookupError)       code 70: no such song or cover

Files on disk and a Subsonic server are outside data: what they hold is a
:class:`~dchat_core.PeerError` when it is malformed or oversized.
"""

from __future__ import annotations

from dchat_core import CallerError, PeerError, TransportError

from .._errors import DchatBotsError

__all__ = (
    "InvalidQueryError",
    "LibraryRootError",
    "MusicDependencyError",
    "MusicError",
    "PathOutsideLibraryError",
    "QueueFullError",
    "SubsonicApiError",
    "SubsonicAuthError",
    "SubsonicError",
    "SubsonicForbiddenError",
    "SubsonicNotFoundError",
    "SubsonicProtocolError",
    "SubsonicUnreachableError",
    "SubsonicVersionError",
    "TrackNotFoundError",
    "TrackTooLargeError",
    "UnreadableTrackError",
)


class MusicError(DchatBotsError):
    """Root of the errors raised by :mod:`dchat_bots.music`."""


class MusicDependencyError(MusicError, CallerError, ImportError):
    """Reading tags needs mutagen: ``pip install 'dchat-bots[music]'``."""


class InvalidQueryError(MusicError, CallerError, ValueError):
    """A search query that is empty, too long or has too many words."""


class LibraryRootError(MusicError, CallerError, ValueError):
    """The library's root is missing or is not a directory."""


class QueueFullError(MusicError, CallerError, OverflowError):
    """The play queue already holds its maximum number of tracks."""


class TrackNotFoundError(MusicError, CallerError, LookupError):
    """No track has this id (it never existed or its file is gone)."""


class PathOutsideLibraryError(MusicError, CallerError, ValueError):
    """A path that leaves the library's root: ``..``, an absolute path or a symlink out."""


class UnreadableTrackError(MusicError, PeerError, ValueError):
    """A file whose format or tags cannot be read (broken, truncated, hostile)."""


class TrackTooLargeError(MusicError, PeerError, ValueError):
    """A track or cover larger than the provider's size cap."""


class SubsonicError(MusicError):
    """Root of the errors of :class:`~dchat_bots.music.SubsonicClient`."""


class SubsonicUnreachableError(SubsonicError, TransportError):
    """The server did not answer: refused, reset or timed out."""


class SubsonicProtocolError(SubsonicError, PeerError, ValueError):
    """The server's reply is not a well-formed Subsonic reply (or is too large)."""


class SubsonicApiError(SubsonicError, PeerError):
    """The server answered ``status: failed`` with a Subsonic error code.

    Attributes:
        code: the Subsonic error code (0 generic, 10 missing parameter, ...).
        message: the server's message, cut to 200 characters.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"Subsonic error {code}: {message}")
        self.code = code
        self.message = message


class SubsonicAuthError(SubsonicApiError):
    """Codes 40-44: wrong credentials, or the server does not take this auth scheme."""


class SubsonicVersionError(SubsonicApiError):
    """Codes 20 and 30: the client's and the server's protocol versions are incompatible."""


class SubsonicForbiddenError(SubsonicApiError):
    """Code 50: the user is not authorized for this operation."""


class SubsonicNotFoundError(SubsonicApiError, LookupError):
    """Code 70: the requested song or cover art does not exist."""
