"""How validator peers are named in the configuration: ``NODEID@HOST:PORT``.

The link handshake pins the node id, so a validator talks only to the keys it
was given. What validators send each other over those links is dchat-chain's
validator wire (:class:`dchat_chain.lowlevel.PeerTag`).
"""

from __future__ import annotations

from dataclasses import dataclass

from dchat_core import DchatError, NodeId

from .._errors import ConfigError
from ..config import parse_hostport

__all__ = ("PeerAddress", "parse_peer")


@dataclass(frozen=True)
class PeerAddress:
    """A peer validator: its pinned node id and link address."""

    node_id: NodeId
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.node_id}@{self.host}:{self.port}"


def parse_peer(text: str) -> PeerAddress:
    """Parse ``NODEID@HOST:PORT``.

    Raises:
        ConfigError: Not in that form.
    """
    node, sep, address = text.partition("@")
    if not sep:
        raise ConfigError(f"a peer is NODEID@HOST:PORT, not {text!r}")
    try:
        node_id = NodeId.parse(node)
    except DchatError:
        raise ConfigError(f"not a node id: {node!r}") from None
    host, port = parse_hostport(address)
    return PeerAddress(node_id, host, port)
