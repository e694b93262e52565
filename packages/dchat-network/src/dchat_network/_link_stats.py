"""Counters of a listener's links, for a node's metrics.

:func:`~dchat_network.serve_links` updates a :class:`LinkStats` (when given
one) as connections come and go: accepted connections, links open now, and
why connections ended before or after their handshake, by error class name
(a fixed, small set: ``HandshakeFailedError``, ``LinkTimeoutError``,
``LinkClosedError``, ...). Only names of error classes are kept, never an
address or key, so the counts can be published as they are.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ("LinkStats",)


@dataclass(slots=True)
class LinkStats:
    """What a link listener has seen."""

    accepted: int = 0
    """TCP connections accepted."""
    open: int = 0
    """Links whose handshake completed and that are still open."""
    handshake_failures: Counter[str] = field(default_factory=Counter)
    """Connections that never completed the handshake, by error class."""
    ended: Counter[str] = field(default_factory=Counter)
    """Established links that ended with an error, by error class."""
