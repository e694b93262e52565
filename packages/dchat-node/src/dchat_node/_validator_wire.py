"""What validators send each other over their links, and how peers are named.

Every link message is one tag byte and a payload::

    0x01 consensus   a ConsensusMessage (proposal, vote, decided) as dchat-chain encodes it
    0x02 txs         canonical [tx bytes, ...] (at most MAX_GOSSIP_TXS): mempool gossip
    0x03 sync-req    a SyncRequest
    0x04 sync-resp   a SyncResponse (the answer to a sync-req, on the same link)

Each validator dials every peer and sends its consensus traffic, gossip and sync
requests on that outbound link; it reads them on the links peers dial to it and
answers sync requests there. A peer is written ``NODEID@HOST:PORT``; the link
handshake pins the node id, so a validator talks only to the keys it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from dchat_core import (
    DchatError,
    DecodeError,
    DecodeLimits,
    NodeId,
    canonical_decode,
    canonical_encode,
)

from ._errors import ConfigError
from .config import parse_hostport

__all__ = (
    "CONSENSUS",
    "MAX_GOSSIP_TXS",
    "SYNC_REQUEST",
    "SYNC_RESPONSE",
    "TXS",
    "PeerAddress",
    "decode_txs",
    "encode_txs",
    "parse_peer",
)

CONSENSUS: Final = 0x01
TXS: Final = 0x02
SYNC_REQUEST: Final = 0x03
SYNC_RESPONSE: Final = 0x04
MAX_GOSSIP_TXS: Final = 2048
_TX_LIMITS: Final = DecodeLimits(max_size=1 << 20, max_depth=2, max_items=MAX_GOSSIP_TXS)


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


def encode_txs(txs: list[bytes]) -> bytes:
    """A gossip message carrying ``txs``."""
    return bytes([TXS]) + canonical_encode(txs)


def decode_txs(payload: bytes) -> list[bytes]:
    """The transactions of a gossip payload (after the tag).

    Raises:
        DecodeError: Not a list of byte strings within the limits.
    """
    items = canonical_decode(payload, _TX_LIMITS)
    if not isinstance(items, list) or not all(isinstance(t, bytes) for t in items):
        raise DecodeError("gossip: expected a list of transactions")
    return items
