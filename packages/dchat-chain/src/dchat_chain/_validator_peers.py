"""How validator peers are named in a node's configuration: ``NODEID@HOST:PORT``.

The link handshake pins the node id, so a validator talks only to the keys it
was given. What validators send each other over those links is the validator
wire (:mod:`._validator_wire`). Parsing is strict and sans-IO: anything but
``NODEID@HOST:PORT`` (an IPv6 host may be bracketed, the port is 0-65535)
raises :class:`PeerAddressError`, which names what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from dchat_core import DchatError, NodeId

from ._errors import PeerAddressError

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
        PeerAddressError: Not in that form.
    """
    node, sep, address = text.partition("@")
    if not sep:
        raise PeerAddressError(f"a peer is NODEID@HOST:PORT, not {text!r}")
    try:
        node_id = NodeId.parse(node)
    except DchatError:
        raise PeerAddressError(f"not a node id: {node!r}") from None
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdecimal() or not 0 <= int(port) <= 65535:
        raise PeerAddressError(f"not a HOST:PORT address: {address!r}")
    return PeerAddress(node_id, host.strip("[]"), int(port))
