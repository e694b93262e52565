"""The errors of the Sphinx onion code (:mod:`dchat_privacy._sphinx` and friends).

::

    DchatPrivacyError
    └── SphinxError
        ├── SphinxUsageError (CallerError, ValueError)     bad route, oversized payload, bad key
        ├── MalformedPacketError (PeerError, ValueError)   wrong size, version, point or framing
        ├── InvalidPacketError (PeerError, ValueError)     authentication failed (one opaque error)
        ├── ReplayedPacketError (PeerError, ValueError)    a packet (or a reply block) seen before
        ├── ExpiredReplyError (PeerError, ValueError)      a reply under a block past its key epoch
        └── ReplayCacheFullError (PeerError)               the epoch's replay cache is full: rotate

:class:`InvalidPacketError` never says which check failed or which key was tried.
No message of these errors carries key material.
"""

from __future__ import annotations

from dchat_core import CallerError, PeerError

from ._padding import DchatPrivacyError

__all__ = (
    "ExpiredReplyError",
    "InvalidPacketError",
    "MalformedPacketError",
    "ReplayCacheFullError",
    "ReplayedPacketError",
    "SphinxError",
    "SphinxUsageError",
)


class SphinxError(DchatPrivacyError):
    """Root of the Sphinx onion errors."""


class SphinxUsageError(SphinxError, CallerError, ValueError):
    """The caller asked for something the format cannot carry (route, payload or key)."""


class MalformedPacketError(SphinxError, PeerError, ValueError):
    """A packet, reply block or failure message is not well formed."""


class InvalidPacketError(SphinxError, PeerError, ValueError):
    """A packet, reply or failure message failed authentication (no detail on purpose)."""


class ReplayedPacketError(SphinxError, PeerError, ValueError):
    """This packet (or single-use reply block) was already processed."""


class ExpiredReplyError(SphinxError, PeerError, ValueError):
    """A reply came under a reply block whose key epoch has ended (the block is dropped)."""


class ReplayCacheFullError(SphinxError, PeerError):
    """The replay cache of the current key epoch is full; the relay must rotate its key."""
