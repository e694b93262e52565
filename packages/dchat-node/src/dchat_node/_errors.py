"""Errors of :mod:`dchat_node`.

::

    DchatNodeError(DchatError)
    ├── ConfigError(CallerError, ValueError)     the configuration is invalid or incomplete
    ├── ChannelError(PeerError, ValueError)      a payment-channel message is malformed,
    │                                            forged, stale or out of turn
    └── NodeStateError(CallerError)              the request does not fit the node's state
        (no identity yet, identity exists already, unknown contact, wrong role)
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, PeerError

__all__ = ("ChannelError", "ConfigError", "DchatNodeError", "NodeStateError")


class DchatNodeError(DchatError):
    """Root of the errors raised by :mod:`dchat_node`."""


class ConfigError(DchatNodeError, CallerError, ValueError):
    """The node configuration is invalid or incomplete."""


class NodeStateError(DchatNodeError, CallerError):
    """The request does not fit the node's current state.

    Attributes:
        code: Machine-readable reason, also used by the HTTP API.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ChannelError(DchatNodeError, PeerError, ValueError):
    """A payment-channel message or request is malformed, forged, stale or out of turn."""
