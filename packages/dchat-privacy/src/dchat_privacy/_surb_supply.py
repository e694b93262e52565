"""Reply blocks handed to a contact, and the owner's kept keys, as bytes (protocol §45).

A sender gives a contact a *supply*: up to :data:`MAX_SUPPLY` reply blocks,
each with the pinned address of its first relay (the only relay of the route
the contact learns) and the time its route stops peeling it::

    supply = canonical({"v": 1, "s": [[first relay "NODEID@HOST:PORT",
                                       reply block (1432), until (Unix s)], ...]})

The owner keeps the matching :class:`ReplyKeys` until a reply opens them or
they expire; :func:`book_to_bytes` / :func:`book_from_bytes` persist a whole
:class:`ReplyBook` (pending keys and the ids already used, so a replay after
a restart is still refused)::

    book = canonical({"v": 1, "p": [[id(16), [secret(32), ...], key(32), until], ...],
                      "u": [id(16), ...]})

Both decoders take untrusted bytes and raise only
:class:`~dchat_privacy.lowlevel.MalformedPacketError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    InvalidRelayAddressError,
    RelayAddress,
    canonical_decode,
    canonical_encode,
)

from ._sphinx import SharedSecret
from ._sphinx_errors import MalformedPacketError, SphinxError
from ._sphinx_surb import REPLY_KEY_SIZE, ReplyBlock, ReplyBook, ReplyKeys

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = (
    "MAX_SUPPLY",
    "ReplyGift",
    "book_from_bytes",
    "book_to_bytes",
    "decode_supply",
    "encode_supply",
)

MAX_SUPPLY: Final = 8
"""The most reply blocks one supply carries."""
_MAX_HOPS: Final = 20
_MAX_UNTIL: Final = 2**40
_SUPPLY_LIMITS: Final = DecodeLimits(max_size=16 * 1024, max_depth=3, max_items=4 * MAX_SUPPLY + 4)
_BOOK_LIMITS: Final = DecodeLimits(max_size=1 << 20, max_depth=4, max_items=8192)


@dataclass(frozen=True, eq=False)
class ReplyGift:
    """One reply block as a contact holds it: where to send, the block, until when."""

    first_relay: RelayAddress
    block: ReplyBlock
    until: int

    def as_list(self) -> list[object]:
        return [str(self.first_relay), self.block.to_bytes(), self.until]


def encode_supply(gifts: Sequence[ReplyGift]) -> bytes:
    """The supply of ``gifts`` (at most :data:`MAX_SUPPLY`; more are a caller error)."""
    if len(gifts) > MAX_SUPPLY:
        raise ValueError(f"a supply carries at most {MAX_SUPPLY} reply blocks")
    return canonical_encode({"v": 1, "s": [gift.as_list() for gift in gifts]})


def decode_supply(data: bytes) -> list[ReplyGift]:
    """The reply blocks of a supply from a peer.

    Raises:
        MalformedPacketError: not a well-formed version-1 supply (an unpinned
            first relay, a bad block, too many blocks, a bad time).
    """
    try:
        f = Fields(canonical_decode(data, _SUPPLY_LIMITS), "reply supply", frozenset({"v", "s"}))
        items = f.raw("s")
        if f.get_int("v", hi=255) != 1 or not isinstance(items, list):
            raise MalformedPacketError("not a version-1 reply supply")
        if len(items) > MAX_SUPPLY:
            raise MalformedPacketError("too many reply blocks in a supply")
        return [_gift(item) for item in items]
    except (DecodeError, InvalidRelayAddressError) as exc:
        raise MalformedPacketError(f"malformed reply supply: {type(exc).__name__}") from None


def _gift(item: object) -> ReplyGift:
    if not (isinstance(item, list) and len(item) == 3):
        raise MalformedPacketError("a supply item is [relay, block, until]")
    relay, block, until = item
    if not (isinstance(relay, str) and len(relay) <= 300 and isinstance(block, bytes)):
        raise MalformedPacketError("a supply item is [relay, block, until]")
    if not (type(until) is int and 0 <= until < _MAX_UNTIL):
        raise MalformedPacketError("a reply block's expiry is a time in seconds")
    address = RelayAddress.parse(relay)
    if address.node is None:
        raise MalformedPacketError("a reply block's first relay is pinned to its node id")
    return ReplyGift(address, ReplyBlock.from_bytes(block), until)


def book_to_bytes(book: ReplyBook) -> bytes:
    """``book`` (pending keys and used ids) as bytes, to keep across restarts."""
    pending = [
        [
            k.reply_id,
            [s.to_bytes() for s in k.shared_secrets],
            k.reply_key,
            None if math.isinf(k.until) else int(k.until),
        ]
        for k in book.pending()
    ]
    return canonical_encode({"v": 1, "p": pending, "u": book.used()})


def book_from_bytes(data: bytes, book: ReplyBook | None = None) -> ReplyBook:
    """The book :func:`book_to_bytes` wrote (into ``book`` when given).

    Raises:
        MalformedPacketError: the bytes are not a version-1 book.
    """
    book = ReplyBook() if book is None else book
    try:
        f = Fields(canonical_decode(data, _BOOK_LIMITS), "reply book", frozenset({"v", "p", "u"}))
        pending, used = f.raw("p"), f.raw("u")
        if f.get_int("v", hi=255) != 1 or not (
            isinstance(pending, list) and isinstance(used, list)
        ):
            raise MalformedPacketError("not a version-1 reply book")
        for reply_id in used:
            if not (isinstance(reply_id, bytes) and len(reply_id) == 16):
                raise MalformedPacketError("a used reply id is 16 bytes")
            book.forget_used(reply_id)
        for item in pending:
            book.add(_keys(item))
    except (DecodeError, SphinxError) as exc:
        if isinstance(exc, MalformedPacketError):
            raise
        raise MalformedPacketError("malformed reply book") from None
    return book


def _keys(item: object) -> ReplyKeys:
    if not (isinstance(item, list) and len(item) == 4):
        raise MalformedPacketError("a kept reply block is [id, secrets, key, until]")
    reply_id, secrets, key, until = item
    if not (isinstance(reply_id, bytes) and len(reply_id) == 16):
        raise MalformedPacketError("a reply id is 16 bytes")
    if not (isinstance(secrets, list) and 1 <= len(secrets) <= _MAX_HOPS):
        raise MalformedPacketError("a kept reply block has 1 to 20 hop secrets")
    if not all(isinstance(s, bytes) and len(s) == SharedSecret.SIZE for s in secrets):
        raise MalformedPacketError("a hop secret is 32 bytes")
    if not (isinstance(key, bytes) and len(key) == REPLY_KEY_SIZE):
        raise MalformedPacketError("a reply key is 32 bytes")
    if not (until is None or (type(until) is int and 0 <= until < _MAX_UNTIL)):
        raise MalformedPacketError("a reply block's expiry is a time in seconds")
    expires = math.inf if until is None else float(until)
    return ReplyKeys(reply_id, tuple(SharedSecret(s) for s in secrets), key, expires)
