"""Errors raised by :mod:`dchat_sdk`::

DchatError
└── DchatSdkError                              root of this package's errors
    ├── NodeUnreachableError(TransportError)   the node's API did not answer
    ├── ApiError(CallerError)                  the node refused (status and code)
    └── _BadReplyError(PeerError, ValueError)  the answer is not the documented shape
        └── SseFormatError                     a broken event stream (``_sse``)
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, PeerError, TransportError

__all__ = ("ApiError", "DchatSdkError", "NodeUnreachableError", "_BadReplyError")


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


class _BadReplyError(DchatSdkError, PeerError, ValueError):
    """The node answered with something that is not the documented JSON."""
