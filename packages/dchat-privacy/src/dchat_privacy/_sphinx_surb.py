"""Single-use reply blocks (SURBs): answer a sender without learning its relays.

The block's owner (Alice) builds an ordinary onion header for a route of relays
that ends at her own mailbox relay, whose hop payload names her mailbox; she
keeps the route's shared secrets and a fresh 32-byte reply key, and gives the
recipient (Bob) ``first hop key || header || reply key``. Bob seals his answer
with ChaCha20-Poly1305 under the reply key and a random nonce (so that a block
misused twice does not reuse a nonce) and sends ``header || nonce || sealed``
to the first hop. Each relay peels the
header and adds its body layer exactly as for a first message, so relays cannot
tell a reply from a first message by its processing. The last relay reports the
reply id (derived from its shared secret) with the delivery; Alice looks the
id up in her :class:`ReplyBook`, strips every layer and opens the seal. Bob
learns one relay's key (the first hop's) and nothing of the rest of the route.

Single use: the relays' replay caches refuse a second use of the header within
the key epoch (same ephemeral key, same shared secret), and the book forgets a
block once a reply has opened. A block is only usable until the first relay's
key epoch ends.
"""

from __future__ import annotations

import math
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from ._padding import PaddingError, PaddingTooLargeError, pad, unpad
from ._sphinx import PACKET_SIZE, POINT_SIZE, OnionPublicKey, SharedSecret, build_onion
from ._sphinx_errors import (
    ExpiredReplyError,
    InvalidPacketError,
    MalformedPacketError,
    ReplayedPacketError,
    SphinxUsageError,
)
from ._sphinx_message import BODY_SIZE, MESSAGE_ASSOCIATED_DATA, body_layer, reply_id_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._sphinx import OnionPrivateKey

__all__ = (
    "REPLY_BLOCK_SIZE",
    "ReplyBlock",
    "ReplyBook",
    "ReplyKeys",
    "build_reply_block",
    "write_reply",
)

REPLY_BLOCK_VERSION: Final = 1
REPLY_KEY_SIZE: Final = 32
REPLY_BLOCK_SIZE: Final = 1 + POINT_SIZE + PACKET_SIZE + REPLY_KEY_SIZE  # 1432
_NONCE_SIZE: Final = 12
_PADDED_SIZE: Final = BODY_SIZE - _NONCE_SIZE - 16  # 4068
MAX_REPLY_DATA: Final = _PADDED_SIZE - 4  # 4064
_REPLY_AD: Final = b"dchat onion reply v1"


@dataclass(frozen=True, eq=False)
class ReplyBlock:
    """What the recipient gets: the first hop's key, the header, the reply key."""

    first_hop: OnionPublicKey
    header: bytes
    reply_key: bytes = field(repr=False)

    def to_bytes(self) -> bytes:
        """``0x01 || first hop (33) || header (1366) || reply key (32)`` = 1432 bytes."""
        first = self.first_hop.to_bytes()
        return bytes([REPLY_BLOCK_VERSION]) + first + self.header + self.reply_key

    @classmethod
    def from_bytes(cls, data: bytes) -> ReplyBlock:
        """Raises :class:`MalformedPacketError` for a wrong size, version or key."""
        if len(data) != REPLY_BLOCK_SIZE or data[0] != REPLY_BLOCK_VERSION:
            raise MalformedPacketError("not a reply block")
        try:
            first = OnionPublicKey.from_bytes(data[1 : 1 + POINT_SIZE])
        except SphinxUsageError:
            raise MalformedPacketError("reply block's first hop is not a public key") from None
        header = data[1 + POINT_SIZE : 1 + POINT_SIZE + PACKET_SIZE]
        return cls(first, bytes(header), bytes(data[-REPLY_KEY_SIZE:]))


@dataclass(frozen=True, eq=False)
class ReplyKeys:
    """What the block's owner keeps to open the reply."""

    reply_id: bytes
    shared_secrets: tuple[SharedSecret, ...] = field(repr=False)
    reply_key: bytes = field(repr=False)
    until: float = math.inf
    """When the block's route stops peeling it (its first relay's key epoch ends)."""


def build_reply_block(
    route: Sequence[tuple[OnionPublicKey, bytes]],
    *,
    session_key: OnionPrivateKey,
    reply_key: bytes | None = None,
    until: float = math.inf,
) -> tuple[ReplyBlock, ReplyKeys]:
    """A reply block for ``route`` (its last hop delivers to the owner's mailbox).

    ``session_key`` and ``reply_key`` must be fresh and random (``reply_key``
    defaults to 32 random bytes). ``until``: when the route's keys expire (a
    reply opened later is refused).

    Raises:
        SphinxUsageError: a bad route (see :func:`build_onion`) or reply key size.
    """
    key = secrets.token_bytes(REPLY_KEY_SIZE) if reply_key is None else bytes(reply_key)
    if len(key) != REPLY_KEY_SIZE:
        raise SphinxUsageError("a reply key is 32 bytes")
    header, circuit = build_onion(
        route, session_key=session_key, associated_data=MESSAGE_ASSOCIATED_DATA
    )
    block = ReplyBlock(route[0][0], header, key)
    reply_id = reply_id_of(circuit.shared_secrets[-1])
    return block, ReplyKeys(reply_id, circuit.shared_secrets, key, until)


def write_reply(block: ReplyBlock, data: bytes, *, nonce: bytes | None = None) -> bytes:
    """The message to send to ``block.first_hop``: the header and ``data`` sealed.

    ``nonce`` (12 bytes) defaults to random; pass one only to reproduce a message.

    Raises:
        SphinxUsageError: ``data`` is longer than 4064 bytes, or a bad nonce size.
    """
    nonce = secrets.token_bytes(_NONCE_SIZE) if nonce is None else bytes(nonce)
    if len(nonce) != _NONCE_SIZE:
        raise SphinxUsageError("a reply nonce is 12 bytes")
    try:
        padded = pad(data, (_PADDED_SIZE,))
    except PaddingTooLargeError:
        raise SphinxUsageError(f"reply data is at most {MAX_REPLY_DATA} bytes") from None
    sealed = ChaCha20Poly1305(block.reply_key).encrypt(nonce, padded, _REPLY_AD)
    return block.header + nonce + sealed


class ReplyBook:
    """The owner's pending reply blocks: each opens one reply, then is forgotten (sans-IO)."""

    def __init__(self, *, max_pending: int = 1024, remember_used: int = 4096) -> None:
        self._pending: OrderedDict[bytes, ReplyKeys] = OrderedDict()
        self._max_pending = max_pending
        self._used: deque[bytes] = deque(maxlen=remember_used)

    def add(self, keys: ReplyKeys) -> None:
        """Remember ``keys``; past ``max_pending`` the oldest block is dropped."""
        self._pending[keys.reply_id] = keys
        while len(self._pending) > self._max_pending:
            self._pending.popitem(last=False)

    def __len__(self) -> int:
        return len(self._pending)

    def pending(self) -> list[ReplyKeys]:
        """The blocks not used yet, oldest first."""
        return list(self._pending.values())

    def used(self) -> list[bytes]:
        """The ids of the blocks that opened a reply (remembered to refuse replays)."""
        return list(self._used)

    def forget_used(self, reply_id: bytes) -> None:
        """Remember ``reply_id`` as used (restoring a persisted book)."""
        self._used.append(bytes(reply_id))

    def expire(self, now: float) -> int:
        """Drop the blocks whose route expired by ``now``; how many."""
        old = [k.reply_id for k in self._pending.values() if k.until <= now]
        for reply_id in old:
            del self._pending[reply_id]
        return len(old)

    def open(self, reply_id: bytes, body: bytes, *, now: float | None = None) -> bytes:
        """The reply data delivered with ``reply_id``; the block is then used up.

        ``now``: the current time, to refuse a reply under an expired block.

        Raises:
            ExpiredReplyError: the block's key epoch had ended by ``now`` (it is dropped).
            ReplayedPacketError: this block already opened a reply.
            InvalidPacketError: unknown block, or the body fails authentication
                (the block stays pending: a forgery does not burn it).
            MalformedPacketError: wrong body size, or bad padding under a valid seal.
        """
        if len(body) != BODY_SIZE:
            raise MalformedPacketError(f"an onion body is {BODY_SIZE} bytes")
        keys = self._pending.get(bytes(reply_id))
        if keys is None:
            if bytes(reply_id) in self._used:
                raise ReplayedPacketError("reply block already used")
            raise InvalidPacketError("reply failed authentication")
        if now is not None and keys.until <= now:
            del self._pending[keys.reply_id]
            raise ExpiredReplyError("reply block expired")
        for secret in keys.shared_secrets:
            body = body_layer(secret, body)
        nonce, sealed = body[:_NONCE_SIZE], body[_NONCE_SIZE:]
        try:
            padded = ChaCha20Poly1305(keys.reply_key).decrypt(nonce, sealed, _REPLY_AD)
        except InvalidTag:
            raise InvalidPacketError("reply failed authentication") from None
        del self._pending[keys.reply_id]
        self._used.append(keys.reply_id)
        try:
            return unpad(padded, (_PADDED_SIZE,))
        except PaddingError:
            raise MalformedPacketError("reply body padding is malformed") from None
