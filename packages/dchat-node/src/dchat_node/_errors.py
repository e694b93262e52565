"""Errors of :mod:`dchat_node`.

::

    DchatNodeError(DchatError)
    ├── ConfigError(CallerError, ValueError)     the configuration is invalid or incomplete
    ├── ChannelError(PeerError, ValueError)      a payment-channel message is malformed,
    │                                            forged, stale or out of turn
    ├── NodeStateError(CallerError)              the request does not fit the node's state
    │   (no identity yet, identity exists already, unknown contact, wrong role)
    ├── ChainAnswerError(PeerError, ValueError)  a node's chain answer is malformed or does
    │   │                                        not match what the light client verified
    │   └── StaleAnswerError                     it speaks of a state older than one verified
    └── LightStateError(CallerError, ValueError) the light-client state file is corrupt or
                                                 anchored to another genesis

The light client's own refusals (forged certificate, foreign or out-of-order
header, untrusted set, bad Merkle proof) keep their :mod:`dchat_chain` types.
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, PeerError

__all__ = (
    "ChainAnswerError",
    "ChannelError",
    "ConfigError",
    "DchatNodeError",
    "LightStateError",
    "NodeStateError",
    "StaleAnswerError",
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


class ChannelError(DchatNodeError, PeerError, ValueError):
    """A payment-channel message or request is malformed, forged, stale or out of turn."""


class ChainAnswerError(DchatNodeError, PeerError, ValueError):
    """A node's chain answer is malformed or does not match what the light client verified."""


class StaleAnswerError(ChainAnswerError):
    """The answer is for a state older than the newest header the light client verified."""


class LightStateError(DchatNodeError, CallerError, ValueError):
    """The persisted light-client state is corrupt or anchored to another genesis."""
