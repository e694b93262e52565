"""The mempool: admitted transactions waiting for a block.

Theory of operation. A transaction enters only if the application admits it
(:meth:`Application.check_tx` against the committed state) or reports that it
is merely *ahead* of its sender's next nonce (:class:`FutureNonceError`, within
``max_gap``): such a transaction is held until the gap is filled. Per sender,
transactions are kept by nonce; the sender's *base* is the next nonce the
committed state expects, and only the contiguous run from the base is ready.

* Deduplication by transaction hash; a second transaction for a pending nonce
  replaces the first only with a strictly higher fee.
* :meth:`reap` proposes ready transactions by fee, highest first, never
  putting a sender's nonce ``n + 1`` before its ``n``.
* Limits: a count, a byte budget and a per-sender bound. When full, the
  lowest-fee *last* transaction of some sender is evicted (evicting a tail
  never opens a gap) if the newcomer pays more; otherwise the newcomer is
  refused.
* :meth:`update` after a block commits drops the included transactions and
  anything the block made stale, and re-checks the head of each affected
  sender (all senders with ``full_recheck``).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from dchat_core import DchatError

from ._errors import InvalidTransactionError
from ._tx import tx_hash
from ._tx_errors import FutureNonceError, ReplayedNonceError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ._app import Application, TxMeta

__all__ = ("DuplicateTransactionError", "Mempool", "MempoolFullError")

DEFAULT_MAX_TXS: Final = 10_000
DEFAULT_MAX_BYTES: Final = 32 << 20


class DuplicateTransactionError(InvalidTransactionError):
    """The transaction, or one for the same nonce at an equal or higher fee, is pending."""


class MempoolFullError(InvalidTransactionError):
    """The pool (or the sender's share of it) is full and the fee does not outbid anyone."""


@dataclass(slots=True)
class _Entry:
    raw: bytes
    meta: TxMeta
    seq: int  # arrival order: the tie-break among equal fees


@dataclass(slots=True)
class _Sender:
    base: int
    txs: dict[int, _Entry] = field(default_factory=dict)


class Mempool:
    """Pending transactions for one chain.

    Args:
        app: The chain's application, used for ``tx_meta`` and ``check_tx``.
        max_txs: At most this many transactions.
        max_bytes: At most this many bytes of transactions.
        max_per_sender: At most this many transactions per sender.
        max_gap: How far beyond a sender's next nonce a transaction may be held.
    """

    def __init__(
        self,
        app: Application,
        *,
        max_txs: int = DEFAULT_MAX_TXS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_per_sender: int = 64,
        max_gap: int = 16,
    ) -> None:
        self._app = app
        self._max_txs, self._max_bytes = max_txs, max_bytes
        self._max_per_sender, self._max_gap = max_per_sender, max_gap
        self._by_hash: dict[bytes, _Entry] = {}
        self._senders: dict[bytes, _Sender] = {}
        self._bytes = 0
        self._seq = 0

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, digest: object) -> bool:
        return digest in self._by_hash

    @property
    def size_bytes(self) -> int:
        """Total bytes of pending transactions."""
        return self._bytes

    def next_nonce(self, sender: bytes, committed: int) -> int:
        """The nonce ``sender``'s next transaction should carry.

        ``committed`` is the sender's next nonce in the committed state; every
        pending transaction of the sender that continues the run from there
        counts, so a client can queue several transactions before a block.
        """
        entry = self._senders.get(sender)
        nonce = committed
        if entry is not None:
            while nonce in entry.txs:
                nonce += 1
        return nonce

    # -- admission -------------------------------------------------------------------

    def add(self, tx: bytes) -> TxMeta:
        """Admit ``tx``; returns its metadata.

        Raises:
            DuplicateTransactionError: Already pending (or outbid for its nonce).
            MempoolFullError: No room and the fee outbids nobody.
            FutureNonceError: The nonce is more than ``max_gap`` ahead.
            InvalidTransactionError: The application refused it (typed subclass).
        """
        meta = self._app.tx_meta(tx)
        if meta.tx_hash in self._by_hash:
            raise DuplicateTransactionError("transaction already pending")
        base = self._admissible_base(tx, meta)
        sender = self._senders.get(meta.sender) or _Sender(base)
        self._rebase(sender, base)
        old = sender.txs.get(meta.nonce)
        if old is not None and old.meta.fee >= meta.fee:
            raise DuplicateTransactionError("this nonce is pending at an equal or higher fee")
        if old is None and len(sender.txs) >= self._max_per_sender:
            raise MempoolFullError("too many pending transactions from this sender")
        if old is not None:
            self._remove(old)
        self._make_room(meta)
        self._seq += 1
        entry = _Entry(tx, meta, self._seq)
        sender.txs[meta.nonce] = entry
        self._senders[meta.sender] = sender  # (re)insert: removals may have dropped it
        self._by_hash[meta.tx_hash] = entry
        self._bytes += meta.size
        return meta

    def _admissible_base(self, tx: bytes, meta: TxMeta) -> int:
        try:
            self._app.check_tx(tx)
        except FutureNonceError as exc:
            if meta.nonce - exc.expected > self._max_gap:
                raise FutureNonceError(
                    f"nonce more than {self._max_gap} ahead of {exc.expected}", exc.expected
                ) from None
            return exc.expected
        return meta.nonce

    def _make_room(self, meta: TxMeta) -> None:
        if meta.size > self._max_bytes:
            raise MempoolFullError("transaction larger than the whole pool")
        while len(self._by_hash) >= self._max_txs or self._bytes + meta.size > self._max_bytes:
            victim = self._cheapest_tail()
            if victim is None or victim.meta.fee >= meta.fee:
                raise MempoolFullError("mempool full and the fee outbids nobody")
            self._remove(victim)

    def _cheapest_tail(self) -> _Entry | None:
        tails = (sender.txs[max(sender.txs)] for sender in self._senders.values() if sender.txs)
        # Lowest fee first; among equals the newest goes, so early arrivals keep their place.
        return min(tails, key=lambda e: (e.meta.fee, -e.seq), default=None)

    def _remove(self, entry: _Entry) -> None:
        del self._by_hash[entry.meta.tx_hash]
        self._bytes -= entry.meta.size
        sender = self._senders[entry.meta.sender]
        del sender.txs[entry.meta.nonce]
        if not sender.txs:
            del self._senders[entry.meta.sender]

    def _rebase(self, sender: _Sender, base: int) -> None:
        sender.base = base
        for nonce in [n for n in sender.txs if n < base]:
            self._remove(sender.txs[nonce])

    # -- proposing -------------------------------------------------------------------

    def reap(self, max_bytes: int, max_txs: int) -> list[bytes]:
        """Ready transactions for a proposal, by fee, within the limits (not removed)."""
        heap: list[tuple[int, int, bytes]] = []
        for key, sender in self._senders.items():
            head = sender.txs.get(sender.base)
            if head is not None:
                heap.append((-head.meta.fee, head.seq, key))
        heapq.heapify(heap)
        picked: list[bytes] = []
        next_nonce = {key: sender.base for key, sender in self._senders.items()}
        budget = max_bytes
        while heap and len(picked) < max_txs:
            _, _, key = heapq.heappop(heap)
            sender = self._senders[key]
            entry = sender.txs[next_nonce[key]]
            if entry.meta.size > budget:
                continue  # this sender's later nonces cannot go before this one
            picked.append(entry.raw)
            budget -= entry.meta.size
            next_nonce[key] += 1
            following = sender.txs.get(next_nonce[key])
            if following is not None:
                heapq.heappush(heap, (-following.meta.fee, following.seq, key))
        return picked

    # -- after a commit --------------------------------------------------------------

    def update(self, committed: Sequence[bytes], *, full_recheck: bool = False) -> None:
        """Forget what a committed block included or made stale; re-check senders."""
        touched: set[bytes] = set()
        for raw in committed:
            entry = self._by_hash.get(tx_hash(raw))
            if entry is not None:
                self._remove(entry)
            try:
                touched.add(self._app.tx_meta(raw).sender)
            except DchatError:
                continue  # junk in a block touches no sender
        self._recheck(self._senders if full_recheck else touched)

    def _recheck(self, senders: Iterable[bytes]) -> None:
        for key in list(senders):
            while key in self._senders and not self._recheck_head(self._senders[key]):
                pass

    def _recheck_head(self, sender: _Sender) -> bool:
        """Re-check a sender's lowest nonce; True once the sender is settled."""
        entry = sender.txs[min(sender.txs)]
        try:
            self._app.check_tx(entry.raw)
        except FutureNonceError as exc:
            self._rebase(sender, exc.expected)
            return True
        except ReplayedNonceError as exc:
            self._rebase(sender, exc.expected)
            return False
        except InvalidTransactionError:
            self._remove(entry)  # no longer valid; later nonces wait for a replacement
            return True
        self._rebase(sender, entry.meta.nonce)
        return True
