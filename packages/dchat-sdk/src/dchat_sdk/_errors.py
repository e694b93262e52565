"""Errors raised by :mod:`dchat_sdk`::

DchatError
└── DchatSdkError                              root of this package's errors
    ├── NodeUnreachableError(TransportError)   the node's API did not answer
    ├── ApiError(CallerError)                  the node refused (status and code)
    ├── EmbeddedNodeError(CallerError)         ``Client.embedded`` could not start the node
    │   ├── DataDirLockedError                 another node holds the data directory
    │   └── WrongPassphraseError               the passphrase does not unlock its database
    ├── _BadReplyError(PeerError, ValueError)  the answer is not the documented shape
    │   └── SseFormatError                     a broken event stream (``_sse``)
    └── WebhookSignatureError(PeerError, ValueError)  a webhook delivery does not verify
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, PeerError, TransportError

__all__ = (
    "ApiError",
    "DataDirLockedError",
    "DchatSdkError",
    "EmbeddedNodeError",
    "NodeUnreachableError",
    "WrongPassphraseError",
    "_BadReplyError",
)


class DchatSdkError(DchatError):
    """Root of the errors raised by :mod:`dchat_sdk`."""


class NodeUnreachableError(DchatSdkError, TransportError):
    """The node's API could not be reached (not running, wrong address, timeout)."""


class ApiError(DchatSdkError, CallerError):
    """The node refused a request.

    Attributes:
        status: HTTP status code.
        code: Machine-readable error code from the node.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code


class EmbeddedNodeError(DchatSdkError, CallerError):
    """An embedded node could not start (bad configuration, unusable data directory).

    The message is the node's own one-line reason.
    """


class DataDirLockedError(EmbeddedNodeError):
    """Another node (a process, or an embedded client) is running on this data directory."""


class WrongPassphraseError(EmbeddedNodeError):
    """The passphrase does not unlock the data directory's database."""


class _BadReplyError(DchatSdkError, PeerError, ValueError):
    """The node answered with something that is not the documented JSON."""
