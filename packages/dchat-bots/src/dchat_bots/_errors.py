"""Errors raised by :mod:`dchat_bots`::

DchatError
└── DchatBotsError                                 root of this package's errors
    ├── BotApiError(CallerError)                   the Bot API answered ``ok: false``
    │   ├── BadRequestError                        400: bad parameters
    │   ├── UnauthorizedError                      401: unknown, wrong or revoked token
    │   ├── ForbiddenError                         403: the token lacks the method's scope
    │   ├── MethodNotFoundError                    404: the node does not serve the method
    │   └── ConflictError                          409: another consumer of the updates
    ├── BotNetworkError(TransportError)            the node did not answer (refused, timeout)
    ├── MalformedReplyError(PeerError, ValueError) an answer or update is not the documented shape
    ├── BotFileError(CallerError, ValueError)      a file to send or fetch is unusable
    │   └── FileTooLargeError                      over the upload or download size cap
    └── StateStorageError(CallerError)             conversation state cannot be stored
        └── StateDataError(TypeError)              state data that is not JSON
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, PeerError, TransportError

__all__ = (
    "BadRequestError",
    "BotApiError",
    "BotFileError",
    "BotNetworkError",
    "ConflictError",
    "DchatBotsError",
    "FileTooLargeError",
    "ForbiddenError",
    "MalformedReplyError",
    "MethodNotFoundError",
    "StateDataError",
    "StateStorageError",
    "UnauthorizedError",
    "api_error",
)


class DchatBotsError(DchatError):
    """Root of the errors raised by :mod:`dchat_bots`."""


class BotApiError(DchatBotsError, CallerError):
    """The Bot API refused a call (``{"ok": false, "error_code", "description"}``).

    Attributes:
        error_code: The envelope's ``error_code`` (the HTTP status).
        description: The envelope's ``description``, e.g. ``Bad Request: ...``.
    """

    def __init__(self, error_code: int, description: str) -> None:
        super().__init__(f"{description} (error_code {error_code})")
        self.error_code = error_code
        self.description = description


class BadRequestError(BotApiError):
    """400: a parameter is missing, malformed or out of range."""


class UnauthorizedError(BotApiError):
    """401: the token is malformed, unknown, wrong or revoked (the node never says which)."""


class ForbiddenError(BotApiError):
    """403: the token is live but lacks the scope this method needs."""


class MethodNotFoundError(BotApiError):
    """404: the node does not serve this method."""


class ConflictError(BotApiError):
    """409: the updates go elsewhere (a webhook is set, or another poller holds them)."""


_BY_CODE: dict[int, type[BotApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: MethodNotFoundError,
    409: ConflictError,
}


def api_error(error_code: int, description: str) -> BotApiError:
    """The typed error for an ``ok: false`` envelope."""
    return _BY_CODE.get(error_code, BotApiError)(error_code, description)


class BotNetworkError(DchatBotsError, TransportError):
    """The bot's node could not be reached or did not answer in time."""


class MalformedReplyError(DchatBotsError, PeerError, ValueError):
    """An answer or an update is not the documented shape (not JSON, a field of the wrong type)."""


class BotFileError(DchatBotsError, CallerError, ValueError):
    """A file to send or download is unusable (unreadable, not a file, a bad file path)."""


class FileTooLargeError(BotFileError):
    """A file is over the cap: an upload over the node's limit, a download over ``max_size``."""


class StateStorageError(DchatBotsError, CallerError):
    """Conversation state could not be read or written (a broken or foreign database)."""


class StateDataError(StateStorageError, TypeError):
    """Conversation data must be a JSON object of JSON values (str, int, float, bool, None, ...)."""
