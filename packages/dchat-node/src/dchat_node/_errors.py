"""Errors of :mod:`dchat_node`.

::

    DchatNodeError(DchatError)
    ├── ConfigError(CallerError, ValueError)     the configuration is invalid or incomplete
    └── NodeStateError(CallerError)              the request does not fit the node's state
        (no identity yet, identity exists already, unknown contact, wrong role)

Chain errors keep their :mod:`dchat_chain` types: the light client's refusals
(forged certificate, foreign or out-of-order header, untrusted set, bad Merkle
proof), a malformed or stale chain answer (``ChainAnswerError``,
``StaleAnswerError``), a corrupt light state (``LightStateError``) and a bad
payment-channel message (``ChannelError``).
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError

__all__ = (
    "ConfigError",
    "DchatNodeError",
    "NodeStateError",
)


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
