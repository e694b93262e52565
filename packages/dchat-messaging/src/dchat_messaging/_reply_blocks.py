"""Single-use reply blocks between users (issue 18, item 2; protocol §45), sans-IO.

Two sides, one node-wide object (each local identity's engine shares it):

- **given** (we are in onion mode): before a message to a peer, the node
  builds reply blocks over relays (dchat-network's ``OnionPool.reply_gifts``)
  and hands them to :meth:`ReplyBlocks.stock`; the next envelope sealed to
  that peer carries them (inside the sealed layer: only the peer's device
  sees them). Their keys go into a :class:`~dchat_privacy.ReplyBook` kept in
  the store (state ``surb.book``: pending keys and the ids already used, so a
  block opens once even across restarts). Which peer each block went to is
  kept too (``surb.given``), so the node tops a peer up to its supply.
- **held** (a peer gave us blocks): :meth:`hold` keeps up to
  :data:`MAX_HELD` per peer (``surb.held``), dropped when their route
  expires. From then on every envelope to that peer is queued for
  ``reply:<peer hex>`` (:func:`reply_relay`): the node's deposit pool takes a
  block with :meth:`take` when it sends, writes the envelope under it and
  hands it to the block's first relay. With none left the entry waits in the
  outbox (never a direct put to the relays of the peer's card) until the
  peer's next message brings more.

A reply arrives as an envelope whose ``rp`` field holds the reply id
(:meth:`SealedEnvelope.onion_reply`, what the mailbox relay files);
:meth:`open` strips the layers and returns the envelope inside, which the
engine then receives as any other.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, DecodeLimits, canonical_decode, canonical_encode
from dchat_privacy import ReplyBook, SphinxError
from dchat_privacy.lowlevel import (
    MalformedPacketError,
    ReplyGift,
    book_from_bytes,
    book_to_bytes,
    decode_supply,
    encode_supply,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dchat_privacy.lowlevel import ReplyKeys

    from ._store import StateStore

__all__ = ("MAX_HELD", "REPLY_PREFIX", "ReplyBlocks", "reply_relay")

REPLY_PREFIX: Final = "reply:"
"""Outbox relay text of an answer under a peer's reply block (dchat-network's
``reply_route``/``split_reply_route`` write and read the same form)."""
MAX_HELD: Final = 16
"""Reply blocks kept per peer (a new supply past it drops the oldest)."""
MAX_PEERS: Final = 256
"""Peers whose blocks are kept (the one seen longest ago goes first)."""
_LIMITS: Final = DecodeLimits(max_size=8 << 20, max_depth=4, max_items=MAX_PEERS * MAX_HELD)


def reply_relay(peer: bytes) -> str:
    """The outbox relay text that answers ``peer`` under one of its reply blocks."""
    return REPLY_PREFIX + peer.hex()


class ReplyBlocks:
    """Reply blocks given to peers (their keys) and held from peers (store-backed)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._out: dict[bytes, bytes] = {}  # peer -> supply to attach to its next envelope
        # Peers of ``surb.held`` (asked on every send): read once, replaced by each write
        # of the key (only this class writes it), forgotten if that write rolls back.
        # A read outside the writer (the shell asks before a send) keeps what it read
        # only if no write came meanwhile (``_held_version``): it may have read the
        # last committed value while a write in flight already replaced it here.
        self._held_peers: frozenset[bytes] | None = None
        self._held_version = 0
        self._held_lock = threading.Lock()
        self.refused = 0
        """Supplies or replies from peers that did not decode or open."""

    # -- given ---------------------------------------------------------------------

    def _book(self) -> ReplyBook:
        raw = self._store.get_state("surb.book")
        return ReplyBook() if raw is None else book_from_bytes(raw)

    def _given(self) -> dict[bytes, bytes]:
        raw = self._store.get_state("surb.given")
        value = {} if raw is None else canonical_decode(raw, _LIMITS)
        return {bytes.fromhex(rid): who for rid, who in value.items()}

    def outstanding(self, peer: bytes, now: float) -> int:
        """Blocks given to ``peer`` not used yet nor expired."""
        book, given = self._book(), self._given()
        live = {k.reply_id for k in book.pending() if k.until > now}
        return sum(1 for rid, who in given.items() if who == peer and rid in live)

    def stock(self, peer: bytes, gifts: Sequence[tuple[ReplyGift, ReplyKeys]]) -> None:
        """Keep the keys of ``gifts`` and attach the blocks to the next envelope to ``peer``."""
        if not gifts:
            return
        book, given = self._book(), self._given()
        for _gift, keys in gifts:
            book.add(keys)
            given[keys.reply_id] = peer
        live = {k.reply_id for k in book.pending()}
        given = {rid: who for rid, who in given.items() if rid in live}
        self._store.put_state("surb.book", book_to_bytes(book))
        value = {rid.hex(): who for rid, who in given.items()}
        self._store.put_state("surb.given", canonical_encode(value))
        self._out[peer] = encode_supply([gift for gift, _ in gifts])

    def attach(self, peer: bytes) -> bytes | None:
        """The supply stocked for ``peer`` (once), to seal into its next envelope."""
        return self._out.pop(peer, None)

    def open(self, reply_id: bytes, body: bytes, now: float) -> bytes:
        """The envelope inside a reply; its block is then used up (kept so in the store).

        Raises:
            SphinxError: ``ExpiredReplyError``, ``ReplayedPacketError``,
                ``InvalidPacketError`` (one opaque error for any forgery) or
                ``MalformedPacketError``.
        """
        book = self._book()
        try:
            return book.open(reply_id, body, now=now)
        finally:
            book.expire(now)  # the others past their epoch go too
            self._store.put_state("surb.book", book_to_bytes(book))

    # -- held ----------------------------------------------------------------------

    def _held(self) -> dict[bytes, list[bytes]]:
        raw = self._store.get_state("surb.held")
        value = {} if raw is None else canonical_decode(raw, _LIMITS)
        return {bytes.fromhex(peer): list(blocks) for peer, blocks in value.items()}

    def _save_held(self, held: dict[bytes, list[bytes]]) -> None:
        value = {peer.hex(): blocks for peer, blocks in held.items()}
        self._store.put_state("surb.held", canonical_encode(value))
        self._keep_held(frozenset(held))
        self._store.on_rollback(lambda: self._keep_held(None))

    def _keep_held(self, peers: frozenset[bytes] | None) -> None:
        with self._held_lock:
            self._held_peers = peers
            self._held_version += 1

    def hold(self, peer: bytes, supply: bytes, now: float) -> int:
        """Keep the blocks of ``supply`` from ``peer``; how many (0 if malformed)."""
        try:
            gifts = [g for g in decode_supply(supply) if g.until > now]
        except MalformedPacketError:
            self.refused += 1
            return 0
        held = self._held()
        kept = [*_live(held.pop(peer, []), now), *(encode_supply([g]) for g in gifts)]
        held[peer] = kept[-MAX_HELD:]  # re-inserted: the most recent peer last
        while len(held) > MAX_PEERS:
            del held[next(iter(held))]
        self._save_held(held)
        return len(gifts)

    def answers_by_block(self, peer: bytes) -> bool:
        """Whether envelopes to ``peer`` go under its reply blocks (it gave us some)."""
        with self._held_lock:
            peers, version = self._held_peers, self._held_version
        if peers is None:
            peers = frozenset(self._held())
            with self._held_lock:
                if self._held_version == version:
                    self._held_peers = peers
        return peer in peers

    def take(self, peer: bytes, now: float) -> ReplyGift | None:
        """Use up one live block of ``peer``'s (the oldest); None when none is left."""
        held = self._held()
        blocks = _live(held.get(peer, []), now)
        if peer not in held:
            return None
        held[peer] = blocks[1:]
        self._save_held(held)
        return decode_supply(blocks[0])[0] if blocks else None

    def counts(self, now: float) -> dict[str, int]:
        """``held`` (live blocks from peers), ``given`` (ours not used yet), ``peers``
        (that gave some), ``refused`` (supplies that did not decode, since start)."""
        held = self._held()
        book = self._book()
        given = sum(1 for k in book.pending() if k.until > now)
        live = sum(len(_live(blocks, now)) for blocks in held.values())
        return {"held": live, "given": given, "peers": len(held), "refused": self.refused}


def _live(blocks: list[bytes], now: float) -> list[bytes]:
    """The blocks (each a one-block supply) whose route has not expired."""
    kept = []
    for raw in blocks:
        try:
            if decode_supply(raw)[0].until > now:
                kept.append(raw)
        except (MalformedPacketError, IndexError, DecodeError, SphinxError):
            continue
    return kept
