"""Delivery receipts: signed by the recipient, batched by the relay under a Merkle root.

Theory of operation
-------------------
After a mailbox's owner has durably processed a batch the relay pushed, its
mailbox link signs one :class:`DeliveryReceipt` for the whole batch::

    {"v": 1, "relay": relay node id(32), "key": mailbox key(32), "ids": [entry id, ...],
     "sig": bytes(64)}

``ids`` are the entry ids of the envelopes (each the envelope's BLAKE2b-256
hash, protocol §5), sorted, distinct, 1 to 64 of them; ``sig`` is the mailbox
key's Ed25519 signature over ``"dchat-receipt-v1" 0x00 || canonical(map
without "sig")``. The mailbox is derived from ``key``, so anyone can check that
the owner of that mailbox, and nobody else, acknowledges having received those
envelopes through that relay. One signature per batch, not per envelope: it
costs the recipient one signature per push, and reveals to whoever sees the
receipt (the relay, and validators auditing it) which envelopes one mailbox
received together: what the relay already knows from serving them.

The relay keeps the receipts it was given (:class:`ReceiptBook`) and seals
them into a batch: one *leaf* per receipted envelope, ``entry id ||
SHA-256(receipt)``, sorted and distinct, under a Merkle root (RFC 6962 tree
hashing, :func:`merkle_root`). It claims the batch on the chat chain as
``receipt_batch {root, count}``. A validator audits a claim by asking for leaf
``i`` at random (:func:`check_audit`): the relay must show the receipt that
leaf names, with a valid signature, naming this relay and holding the
entry id, and the leaf's Merkle path to the claimed root. A relay that claimed
leaves it cannot back with receipts fails such an audit with the probability
of picking one of them.

Durability. With a :class:`ReceiptStore` (the relay's database,
``dchat_storage``'s ``ReceiptRepo``) the book writes every receipt it keeps
and every batch it seals, and rebuilds itself from the store on first use
after a restart (:meth:`ReceiptBook.load`). A seal is written *before* the
book changes, in one transaction of the store, so a batch whose root was ever
handed out for a claim is stored with exactly the receipts its root covers:
a relay that crashes and restarts still answers audits of every claimed
batch. The book learns when a batch was claimed (:meth:`ReceiptBook.claimed`)
and prunes: a batch is dropped once a *later* batch was claimed at least
``audit_window`` seconds ago (validators audit only a relay's last claimed
batch; the window covers probers that read the directory before the newer
claim). At most ``keep`` batches are held in all; past it the oldest goes,
never the newest claimed one. What the book does not keep across a restart is
which entries it handed to whom (:meth:`ReceiptBook.handed`): receipts for
entries handed before the restart are refused, the relay's loss alone.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, Self

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    MailboxId,
    canonical_decode,
    canonical_encode,
)

from ._errors import ProbeError
from ._probe import check_signed

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dchat_crypto import SigningKey

__all__ = (
    "MAX_RECEIPT",
    "RECEIPT_DOMAIN",
    "AuditAnswer",
    "DeliveryReceipt",
    "ReceiptBatch",
    "ReceiptBook",
    "ReceiptStore",
    "check_audit",
    "merkle_path",
    "merkle_root",
    "verify_merkle_path",
)

RECEIPT_DOMAIN: Final = b"dchat-receipt-v1\x00"
MAX_IDS: Final = 64
MAX_RECEIPT: Final = 4096
HANDED_PER_OWNER: Final = 128
"""Entries handed to one mailbox's owner that the book remembers for its receipts."""
HANDED_OWNERS: Final = 4096
"""Mailboxes whose handed entries the book remembers (the least recently served go)."""
_LIMITS: Final = DecodeLimits(max_size=MAX_RECEIPT, max_depth=2, max_items=2 * MAX_IDS + 16)
_FIELDS: Final = frozenset({"v", "relay", "key", "ids", "sig"})


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """A mailbox owner's signed acknowledgement of envelopes a relay delivered.

    Attributes:
        relay: The node id of the relay that delivered them.
        key: The mailbox's key (its owner's link key).
        entry_ids: The envelopes' entry ids, sorted and distinct.
        signature: ``key``'s signature (see the module doc).
    """

    relay: bytes
    key: bytes
    entry_ids: tuple[bytes, ...]
    signature: bytes

    def _unsigned(self) -> dict[str, Any]:
        return {"v": 1, "relay": self.relay, "key": self.key, "ids": list(self.entry_ids)}

    @classmethod
    def sign(cls, key: SigningKey, relay: bytes, entry_ids: Sequence[bytes]) -> DeliveryReceipt:
        """A receipt for ``entry_ids`` (any order, repeats dropped) delivered by ``relay``."""
        ids = tuple(sorted(set(entry_ids)))
        draft = cls(relay, key.public_key.to_bytes(), ids, b"")
        signature = key.sign(RECEIPT_DOMAIN + canonical_encode(draft._unsigned()))
        return cls(relay, draft.key, ids, signature)

    @property
    def mailbox(self) -> bytes:
        """The mailbox the receipt speaks for (derived from :attr:`key`)."""
        return bytes(MailboxId.derive(self.key))

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return canonical_encode({**self._unsigned(), "sig": self.signature})

    def digest(self) -> bytes:
        """SHA-256 of the encoding (what a leaf names)."""
        return hashlib.sha256(self.to_bytes()).digest()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode and check a receipt from untrusted bytes (shape and signature).

        Raises:
            ProbeError: Malformed, ids not sorted and distinct, or a bad signature.
        """
        try:
            f = Fields(canonical_decode(data, _LIMITS), "receipt", _FIELDS)
            if f.get_int("v") != 1:
                raise ProbeError("unsupported receipt version")
            ids = f.get_list("ids", max_len=MAX_IDS)
            receipt = cls(
                f.get_bytes("relay", size=32),
                f.get_bytes("key", size=32),
                tuple(ids),
                f.get_bytes("sig", size=64),
            )
        except DecodeError as exc:
            raise ProbeError(f"malformed receipt: {exc}") from None
        if not ids or not all(isinstance(i, bytes) and len(i) == 32 for i in ids):
            raise ProbeError("a receipt names 1 to 64 entry ids of 32 bytes")
        if list(ids) != sorted(set(ids)):
            raise ProbeError("a receipt's entry ids are sorted and distinct")
        signed = RECEIPT_DOMAIN + canonical_encode(receipt._unsigned())
        check_signed(receipt.key, receipt.signature, signed, "the receipt")
        return receipt


# -- Merkle trees (RFC 6962 hashing) ----------------------------------------------------


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two below ``n`` (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root(leaves: Sequence[bytes], lo: int, hi: int, memo: dict[tuple[int, int], bytes]) -> bytes:
    if hi - lo == 1:
        return _leaf(leaves[lo])
    found = memo.get((lo, hi))
    if found is None:
        k = _split(hi - lo)
        found = _node(_root(leaves, lo, lo + k, memo), _root(leaves, lo + k, hi, memo))
        memo[lo, hi] = found
    return found


def merkle_root(leaves: Sequence[bytes], memo: dict[tuple[int, int], bytes] | None = None) -> bytes:
    """The RFC 6962 Merkle tree hash of ``leaves`` (at least one).

    ``memo`` keeps every inner node's hash, so later paths cost O(log n).
    """
    return _root(leaves, 0, len(leaves), {} if memo is None else memo)


def merkle_path(
    leaves: Sequence[bytes], index: int, memo: dict[tuple[int, int], bytes] | None = None
) -> list[bytes]:
    """The audit path of leaf ``index`` (siblings from the leaf up)."""
    memo = {} if memo is None else memo
    lo, hi, path = 0, len(leaves), []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(_root(leaves, lo + k, hi, memo))
            hi = lo + k
        else:
            path.append(_root(leaves, lo, lo + k, memo))
            lo += k
    return path[::-1]


def verify_merkle_path(
    root: bytes, leaf: bytes, index: int, count: int, path: Sequence[bytes]
) -> bool:
    """Whether ``path`` proves ``leaf`` at ``index`` of a ``count``-leaf tree with ``root``."""
    if not 0 <= index < count:
        return False
    return _climb(_leaf(leaf), index, count, list(path)) == root


def _climb(digest: bytes, index: int, count: int, path: list[bytes]) -> bytes | None:
    if count == 1:
        return digest if not path else None
    if not path:
        return None
    k = _split(count)
    sibling = path.pop()
    if index < k:
        below = _climb(digest, index, k, path)
        return None if below is None else _node(below, sibling)
    below = _climb(digest, index - k, count - k, path)
    return None if below is None else _node(sibling, below)


# -- the relay's book and the audit -------------------------------------------------------


class ReceiptStore(Protocol):
    """Where a :class:`ReceiptBook` keeps its receipts (``dchat_storage``'s ``ReceiptRepo``).

    ``keep_receipt`` stores a pending receipt (once per digest);
    ``forget_receipt`` deletes a pending one; ``save_batch`` records a sealed
    batch (root, its receipts as (digest, receipt) pairs) atomically and
    durably before it returns; ``claim_batch`` notes the claim time;
    ``drop_batch`` deletes a batch with its receipts; ``load_receipts`` gives
    the pending receipts and the batches (root, sealed at, claimed at or None,
    receipts), each oldest first. Times are seconds since the Unix epoch.
    """

    def keep_receipt(self, digest: bytes, receipt: bytes, now: float) -> None: ...

    def forget_receipt(self, digest: bytes) -> None: ...

    def save_batch(
        self, root: bytes, receipts: Sequence[tuple[bytes, bytes]], now: float
    ) -> None: ...

    def claim_batch(self, root: bytes, now: float) -> None: ...

    def drop_batch(self, root: bytes) -> None: ...

    def load_receipts(
        self,
    ) -> tuple[list[bytes], list[tuple[bytes, float, float | None, list[bytes]]]]: ...


@dataclass(frozen=True, slots=True)
class AuditAnswer:
    """A relay's answer to an audit of leaf ``index``: the receipt and the leaf's path."""

    entry_id: bytes
    receipt: bytes
    path: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ReceiptBatch:
    """A sealed batch: its leaves (sorted), root, and the receipts they name.

    The tree's inner hashes are kept (``nodes``), so an audit costs O(log n).
    """

    leaves: tuple[bytes, ...]
    receipts: dict[bytes, bytes]  # receipt digest -> receipt bytes
    nodes: dict[tuple[int, int], bytes] = field(default_factory=dict, repr=False)

    @property
    def root(self) -> bytes:
        """The Merkle root the relay claims on chain."""
        return merkle_root(self.leaves, self.nodes)

    @property
    def count(self) -> int:
        """The number of receipted envelopes (leaves)."""
        return len(self.leaves)

    def answer(self, index: int) -> AuditAnswer | None:
        """The audit answer for leaf ``index`` (None when there is no such leaf)."""
        if not 0 <= index < len(self.leaves):
            return None
        leaf = self.leaves[index]
        path = tuple(merkle_path(self.leaves, index, self.nodes))
        return AuditAnswer(leaf[:32], self.receipts[leaf[32:]], path)


class ReceiptBook:
    """A relay's receipts: taken as they come, sealed into batches, kept for audits.

    Memory is bounded: at most ``max_pending`` receipts wait for a seal (the
    oldest is dropped for a new one: claim often) and ``keep`` sealed batches
    are kept; a receipt is at most about 2.3 KiB (64 ids), usually far less.

    The book also remembers which entries the relay handed to each mailbox's
    owner (:meth:`handed`, called as a push or fetch goes out) until a receipt
    covers them: a receipt may name only those, and each of them once. So an
    owner can receipt several batches at once (one signature and one request
    per 64 entries) even after acknowledging them. At most
    :data:`HANDED_PER_OWNER` entries are remembered per mailbox and
    :data:`HANDED_OWNERS` mailboxes in all (the least recently served are
    forgotten: their entries go unreceipted, the relay's loss alone): about
    50 MiB if every one of them were full, a few KiB per active mailbox in use.

    Args:
        relay: This relay's node id (receipts must name it).
        keep: How many sealed batches to keep for audits at most (oldest dropped).
        max_pending: Receipts held before a seal.
        store: Where receipts and batches are kept durably (None: memory only).
        audit_window: Seconds a batch is kept after a later batch was claimed.
    """

    def __init__(
        self,
        relay: bytes,
        *,
        keep: int = 16,
        max_pending: int = 4096,
        store: ReceiptStore | None = None,
        audit_window: float = 3600.0,
    ) -> None:
        self.relay, self._keep, self._max = relay, max(1, keep), max_pending
        self._store, self._window = store, audit_window
        self._loaded = store is None
        self._pending: dict[bytes, tuple[bytes, tuple[bytes, ...]]] = {}  # digest -> (bytes, ids)
        self.batches: dict[bytes, ReceiptBatch] = {}  # root -> batch, oldest sealed first
        self._claimed: dict[bytes, float] = {}  # root -> when claimed
        self.taken = 0
        """Receipts accepted (since start)."""
        self.unreadable = 0
        """Stored receipts or batches that did not rebuild at :meth:`load` (dropped)."""
        self._handed: dict[bytes, dict[bytes, None]] = {}  # owner -> entry ids (ordered sets)
        # The relay host records handed entries from its read worker while receipts
        # are taken in its commit worker: the record's compound updates take turns.
        self._handed_lock = threading.Lock()

    def load(self) -> None:
        """Rebuild the book from its store, once (every other method calls this first).

        Call it where the store may be used (the database worker).
        """
        if self._loaded or self._store is None:
            return
        pending, batches = self._store.load_receipts()
        self._loaded = True
        for raw in pending[-self._max :]:
            try:
                receipt = DeliveryReceipt.from_bytes(raw)
            except ProbeError:
                self.unreadable += 1
                continue
            self._pending[receipt.digest()] = (raw, receipt.entry_ids)
        for root, _, claimed_at, receipts in batches:
            batch = _rebuild(receipts)
            if batch is None or batch.root != root:
                self.unreadable += 1
                continue
            self.batches[root] = batch
            if claimed_at is not None:
                self._claimed[root] = claimed_at

    def handed(self, owner: bytes, entry_ids: Sequence[bytes]) -> None:
        """The relay handed the owner of mailbox ``owner`` these entries (push or fetch)."""
        if not entry_ids:
            return
        with self._handed_lock:
            ids = self._handed.pop(owner, None) or {}
            self._handed[owner] = ids  # now the most recently served
            ids.update(dict.fromkeys(entry_ids))
            while len(ids) > HANDED_PER_OWNER:
                del ids[next(iter(ids))]
            while len(self._handed) > HANDED_OWNERS:
                del self._handed[next(iter(self._handed))]

    def take(
        self,
        owner: bytes,
        data: bytes,
        delivered: Callable[[bytes], bool] | None = None,
        *,
        now: float = 0.0,
    ) -> int:
        """Accept a receipt from the owner of mailbox ``owner``; the entry ids it covers.

        ``delivered``: whether this relay handed the owner the envelope with that
        entry id (None: the book's own record, :meth:`handed`). A receipt naming
        any other, or one entry twice, is refused, so nobody can fill the book
        with receipts for envelopes that never passed through this relay; a
        receipted entry is forgotten, so no entry is receipted twice.

        Raises:
            ProbeError: Malformed or forged, for another relay or another mailbox,
                or naming an envelope this relay did not deliver.
        """
        self.load()
        receipt = DeliveryReceipt.from_bytes(data)
        if receipt.relay != self.relay:
            raise ProbeError("the receipt names another relay")
        if receipt.mailbox != owner:
            raise ProbeError("the receipt is not for the link's own mailbox")
        with self._handed_lock:
            handed = self._handed.get(owner, {})
            if delivered is None:
                delivered = handed.__contains__
            if len(set(receipt.entry_ids)) != len(receipt.entry_ids) or not all(
                map(delivered, receipt.entry_ids)
            ):
                raise ProbeError("the receipt names an envelope this relay did not deliver")
            for entry_id in receipt.entry_ids:  # each entry is receipted once
                handed.pop(entry_id, None)
        if len(self._pending) >= self._max:
            oldest = next(iter(self._pending))  # goes unclaimed
            del self._pending[oldest]
            if self._store is not None:
                self._store.forget_receipt(oldest)
        raw, digest = receipt.to_bytes(), receipt.digest()
        self._pending[digest] = (raw, receipt.entry_ids)
        if self._store is not None:
            self._store.keep_receipt(digest, raw, now)
        self.taken += 1
        return len(receipt.entry_ids)

    @property
    def pending(self) -> int:
        """Receipts not yet sealed into a batch."""
        return len(self._pending)

    @property
    def pending_entries(self) -> int:
        """Entries the pending receipts cover (the count a seal would claim, about)."""
        return sum(len(ids) for _, ids in self._pending.values())

    def seal(self, now: float = 0.0) -> ReceiptBatch | None:
        """Seal the pending receipts into a batch (None when there are none).

        With a store the batch is durable before this returns (a store error
        propagates and leaves the book as it was).
        """
        self.load()
        if not self._pending:
            return None
        batch = _batch_of(self._pending)
        if self._store is not None:
            pairs = [(digest, raw) for digest, (raw, _) in self._pending.items()]
            self._store.save_batch(batch.root, pairs, now)
        self._pending = {}
        self.batches.pop(batch.root, None)
        self.batches[batch.root] = batch
        self._prune(now)
        return batch

    def unclaimed(self) -> list[ReceiptBatch]:
        """Sealed batches not yet claimed, oldest first."""
        self.load()
        return [b for root, b in self.batches.items() if root not in self._claimed]

    def claimed(self, root: bytes, now: float) -> None:
        """Batch ``root`` was claimed on chain at ``now`` (older batches may then go)."""
        self.load()
        if root not in self.batches:
            return
        self._claimed[root] = now
        if self._store is not None:
            self._store.claim_batch(root, now)
        self._prune(now)

    def last_claim(self) -> float | None:
        """When the newest claim the book knows of was made (None: none)."""
        self.load()
        return max(self._claimed.values(), default=None)

    def claimed_at(self, root: bytes) -> float | None:
        """When batch ``root`` was claimed (None: not claimed, or not held)."""
        return self._claimed.get(root)

    def _prune(self, now: float) -> None:
        """Drop batches a later claim superseded for ``audit_window``; then hold ``keep``."""
        roots = list(self.batches)
        doomed, superseded = [], False
        for root in reversed(roots):  # newest first
            if superseded:
                doomed.append(root)
            claimed = self._claimed.get(root)
            if claimed is not None and claimed + self._window <= now:
                superseded = True  # every older batch may go
        excess = len(roots) - len(doomed) - self._keep
        if excess > 0:
            claimed_roots = [r for r in roots if r in self._claimed]
            newest_claimed = claimed_roots[-1] if claimed_roots else None
            spare = [r for r in roots if r not in doomed and r != newest_claimed]
            doomed += spare[:excess]
        for root in doomed:
            del self.batches[root]
            self._claimed.pop(root, None)
            if self._store is not None:
                self._store.drop_batch(root)

    def answer(self, root: bytes, index: int) -> AuditAnswer | None:
        """The audit answer for leaf ``index`` of the batch with ``root`` (None: unknown)."""
        self.load()
        batch = self.batches.get(root)
        return None if batch is None else batch.answer(index)


def _batch_of(pending: dict[bytes, tuple[bytes, tuple[bytes, ...]]]) -> ReceiptBatch:
    """The batch of receipts ``digest -> (receipt, entry ids)``, in their order."""
    leaves: dict[bytes, bytes] = {}
    for digest, (_, entry_ids) in pending.items():
        for entry_id in entry_ids:
            leaves.setdefault(entry_id, entry_id + digest)
    receipts = {digest: raw for digest, (raw, _) in pending.items()}
    return ReceiptBatch(tuple(leaves[i] for i in sorted(leaves)), receipts)


def _rebuild(receipts: Sequence[bytes]) -> ReceiptBatch | None:
    """A stored batch from its receipts (None: one does not decode; it is not trusted)."""
    pending: dict[bytes, tuple[bytes, tuple[bytes, ...]]] = {}
    for raw in receipts:
        try:
            receipt = DeliveryReceipt.from_bytes(raw)
        except ProbeError:
            return None
        pending[receipt.digest()] = (raw, receipt.entry_ids)
    return _batch_of(pending) if pending else None


def check_audit(relay: bytes, root: bytes, count: int, index: int, answer: AuditAnswer) -> bool:
    """Whether ``answer`` backs leaf ``index`` of ``relay``'s claimed batch ``(root, count)``."""
    try:
        receipt = DeliveryReceipt.from_bytes(answer.receipt)
    except ProbeError:
        return False
    if receipt.relay != relay or answer.entry_id not in receipt.entry_ids:
        return False
    leaf = answer.entry_id + receipt.digest()
    return verify_merkle_path(root, leaf, index, count, answer.path)
