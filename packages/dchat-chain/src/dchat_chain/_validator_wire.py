"""What validators send each other over their links: one tag byte and a payload.

::

    0x01 consensus   a ConsensusMessage (proposal, vote, decided), as :mod:`._consensus_messages`
                     encodes it
    0x02 txs         canonical [tx bytes, ...] (at most MAX_GOSSIP_TXS): mempool gossip
    0x03 sync-req    a SyncRequest
    0x04 sync-resp   a SyncResponse (the answer to a sync-req, on the same link)

This module only frames: :func:`split_peer_message` checks the tag and hands
back the payload, which its consumer decodes (the engine a consensus message,
:class:`~dchat_chain.lowlevel.SyncRequest` a request, the validator driver a
sync response, :func:`decode_txs` a gossip batch). Every malformed input gives
a typed peer error (:class:`~dchat_chain.InvalidMessageError` or
:class:`~dchat_chain.SyncError`), so a shell can close the link of a peer that
sends one.

A validator's two link directions carry different messages: a link a peer
dialled brings consensus messages, gossip and sync requests
(:func:`decode_inbound` decodes all three), and the answer to a sync request
comes back on the link we dialled (:func:`sync_response_payload`). Anything
else is a protocol violation.
"""

from __future__ import annotations

import enum
from typing import Final

from dchat_core import DchatError, DecodeLimits, canonical_decode, canonical_encode

from ._errors import InvalidMessageError
from ._sync import SyncRequest

__all__ = (
    "MAX_GOSSIP_TXS",
    "PeerTag",
    "decode_inbound",
    "decode_txs",
    "encode_peer_message",
    "encode_txs",
    "split_peer_message",
    "sync_response_payload",
)

MAX_GOSSIP_TXS: Final = 2048
_TX_LIMITS: Final = DecodeLimits(max_size=1 << 20, max_depth=2, max_items=MAX_GOSSIP_TXS)


class PeerTag(enum.IntEnum):
    """The first byte of every validator link message."""

    CONSENSUS = 0x01
    TXS = 0x02
    SYNC_REQUEST = 0x03
    SYNC_RESPONSE = 0x04


def encode_peer_message(tag: PeerTag, payload: bytes) -> bytes:
    """One link message: the tag byte, then ``payload``."""
    return bytes([tag]) + payload


def split_peer_message(data: bytes) -> tuple[PeerTag, bytes]:
    """The tag and payload of a link message (the payload is not decoded).

    Raises:
        InvalidMessageError: Empty, or an unknown tag.
    """
    if not data:
        raise InvalidMessageError("empty validator link message")
    try:
        tag = PeerTag(data[0])
    except ValueError:
        raise InvalidMessageError(f"unknown validator link message tag {data[0]:#04x}") from None
    return tag, bytes(data[1:])


def encode_txs(txs: list[bytes]) -> bytes:
    """A gossip message (tag included) carrying ``txs`` (at most ``MAX_GOSSIP_TXS``)."""
    return encode_peer_message(PeerTag.TXS, canonical_encode(txs))


def decode_txs(payload: bytes) -> list[bytes]:
    """The transactions of a gossip payload (after the tag).

    Raises:
        InvalidMessageError: Not a list of byte strings within the limits.
    """
    try:
        items = canonical_decode(payload, _TX_LIMITS)
    except DchatError as exc:
        raise InvalidMessageError(f"gossip: {exc}") from None
    if not isinstance(items, list) or not all(isinstance(t, bytes) for t in items):
        raise InvalidMessageError("gossip: expected a list of transactions")
    return items


def decode_inbound(data: bytes) -> bytes | list[bytes] | SyncRequest:
    """A message on a link a peer dialled: consensus payload, gossip batch or sync request.

    The consensus payload is returned undecoded (the engine decodes and checks it).

    Raises:
        InvalidMessageError: Malformed, or a sync response (those come back on
            our own links only).
        SyncError: A malformed sync request.
    """
    tag, payload = split_peer_message(data)
    if tag is PeerTag.CONSENSUS:
        return payload
    if tag is PeerTag.TXS:
        return decode_txs(payload)
    if tag is PeerTag.SYNC_REQUEST:
        return SyncRequest.from_bytes(payload)
    raise InvalidMessageError("a sync response on a link the peer dialled")


def sync_response_payload(data: bytes) -> bytes:
    """The payload of a message on a link we dialled, which must be a sync response.

    Raises:
        InvalidMessageError: Anything else.
    """
    if data[:1] != bytes([PeerTag.SYNC_RESPONSE]):
        raise InvalidMessageError("only sync responses come back on a dialled link")
    return bytes(data[1:])
