"""A validator's durable block store over a byte-level log a database provides.

Theory of operation. A validator needs more than consensus's :class:`BlockStore`:
ranges for block sync and replay, a state snapshot, the validator sets light
clients ask for. :class:`DurableBlockStore` does all of it over a
:class:`BlockLog`, the small byte-level interface a database implements
(dchat-storage's ``ChainBlockLog`` on its chain tables; :class:`MemoryBlockLog`
in memory). The log knows nothing of blocks: it keeps ``(height, hash, record)``
rows and a few named values. This module owns the record format and every rule:
a record is ``canonical [block bytes, certificate bytes]`` (block and certificate
together, so one never exists without the other), blocks go in height order,
re-saving the stored block is a no-op, and a different block at a stored height
is refused.

Durability is the log's: on dchat-storage's SQLite (WAL, ``synchronous=FULL``)
a call that returned survives a SIGKILL or a power cut, which the validator
relies on to write a checkpoint *before* it sends anything the checkpoint
covers. :meth:`DurableBlockStore.save_many` hands a whole sync batch to one
:meth:`BlockLog.append`, one transaction (one fsync) per batch. Chain data is
public; it is stored in clear.

Methods block while the log does; a trio shell calls them from worker threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, Protocol

from dchat_core import DchatError, canonical_decode, canonical_encode

from ._block import Block
from ._block_commit import CommitCertificate
from ._errors import ChainArgumentError, CorruptStoreError
from ._sync import SyncResponse

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._sync import SyncRequest

__all__ = ("SYNC_BYTES", "BlockLog", "DurableBlockStore", "MemoryBlockLog")

CHECKPOINT_KEY: Final = b"consensus/checkpoint"
SNAPSHOT_KEY: Final = b"snapshot/latest"
VALSET_PREFIX: Final = b"valset/"  # + the set's hash: sets light clients may ask for
SYNC_BYTES: Final = 768 << 10  # a sync answer stays well inside a link message (1 MiB)

Pair = tuple[Block, CommitCertificate]


class BlockLog(Protocol):
    """One chain's rows ``(height, hash, record)`` and named values, durably.

    Every method may block; each write is one transaction.
    """

    def height(self) -> int:
        """The highest stored height (0 when empty)."""
        ...

    def append(self, rows: Sequence[tuple[int, bytes, bytes]]) -> bool:
        """Store ``(height, hash, record)`` rows in one transaction.

        Returns:
            False, with nothing stored, when a row's height or hash is stored already.
        """
        ...

    def record(self, height: int) -> tuple[bytes, bytes] | None:
        """``(hash, record)`` of the row at ``height``, or None."""
        ...

    def records(self, start: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` rows ``(height, record)`` from ``start`` upwards, by height.

        Raises:
            CallerError: ``limit`` is below 1.
        """
        ...

    def put(self, key: bytes, value: bytes) -> None:
        """Durably replace the named value ``key``."""
        ...

    def get(self, key: bytes) -> bytes | None:
        """The named value ``key``, or None."""
        ...


class MemoryBlockLog:
    """A :class:`BlockLog` in memory (tests, simulations)."""

    def __init__(self) -> None:
        self._rows: dict[int, tuple[bytes, bytes]] = {}
        self._values: dict[bytes, bytes] = {}

    def height(self) -> int:
        """The highest stored height (0 when empty)."""
        return max(self._rows, default=0)

    def append(self, rows: Sequence[tuple[int, bytes, bytes]]) -> bool:
        """Store the rows; False (nothing stored) on a stored height or hash."""
        hashes = {h for h, _ in self._rows.values()}
        heights = [height for height, _, _ in rows]
        digests = [digest for _, digest, _ in rows]
        if len(set(heights)) < len(rows) or len(set(digests)) < len(rows):
            return False
        if set(heights) & self._rows.keys() or set(digests) & hashes:
            return False
        for height, digest, record in rows:
            self._rows[height] = (bytes(digest), bytes(record))
        return True

    def record(self, height: int) -> tuple[bytes, bytes] | None:
        """``(hash, record)`` at ``height``, or None."""
        return self._rows.get(height)

    def records(self, start: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` rows from ``start`` upwards (``limit`` at least 1)."""
        if limit < 1:
            raise ChainArgumentError("limit must be at least 1")
        heights = sorted(h for h in self._rows if h >= start)[:limit]
        return [(h, self._rows[h][1]) for h in heights]

    def put(self, key: bytes, value: bytes) -> None:
        """Replace a named value."""
        self._values[bytes(key)] = bytes(value)

    def get(self, key: bytes) -> bytes | None:
        """A named value, or None."""
        return self._values.get(key)


def encode_record(block: Block, certificate: CommitCertificate) -> bytes:
    """The stored record of a block with its certificate."""
    return canonical_encode([block.to_bytes(), certificate.to_bytes()])


def decode_record(data: bytes) -> Pair:
    """A stored record's block and certificate.

    Raises:
        CorruptStoreError: The record does not decode.
    """
    try:
        block_bytes, cert_bytes = canonical_decode(data)
        return Block.from_bytes(block_bytes), CommitCertificate.from_bytes(cert_bytes)
    except (DchatError, ValueError, TypeError) as exc:
        raise CorruptStoreError(f"a stored block is corrupt: {exc}") from None


def _check_pair(block: Block, certificate: CommitCertificate) -> bytes:
    block_hash = block.hash()
    if certificate.block_hash != block_hash or certificate.height != block.height:
        raise ChainArgumentError("certificate is not for this block")
    return block_hash


class DurableBlockStore:
    """Blocks, certificates, checkpoint, snapshot and validator sets of one chain.

    A :class:`BlockStore` (consensus, sync and replay run on it), durable when
    its log is.

    Args:
        log: The chain's rows and named values.
    """

    def __init__(self, log: BlockLog) -> None:
        self._log = log
        self._height = log.height()
        self._cached: tuple[int, Block, CommitCertificate] | None = None

    def height(self) -> int:
        """The highest stored height (0 when empty)."""
        return self._height

    def save(self, block: Block, certificate: CommitCertificate) -> None:
        """Store the next block durably; re-saving the stored block is a no-op.

        Raises:
            ChainArgumentError: Out of order, a different block at a stored
                height, or a certificate for another block.
        """
        self.save_many([(block, certificate)])

    def save_many(self, pairs: Sequence[Pair]) -> None:
        """Store the next blocks durably in one transaction (block sync).

        Blocks already stored are checked like :meth:`save` and skipped.

        Raises:
            ChainArgumentError: As :meth:`save`; then nothing was stored.
        """
        rows, height = [], self._height
        for block, certificate in pairs:
            block_hash = _check_pair(block, certificate)
            if block.height <= self._height:
                stored = self._log.record(block.height)
                if stored is None or stored[0] != block_hash:
                    raise ChainArgumentError("a different block is stored at this height")
                continue
            if block.height != height + 1:
                raise ChainArgumentError("blocks must be stored in height order")
            rows.append((block.height, block_hash, encode_record(block, certificate)))
            height = block.height
        if not rows:
            return
        if not self._log.append(rows):
            raise ChainArgumentError("a block with this hash is stored already")
        self._height = height

    def _load(self, height: int) -> Pair | None:
        if self._cached is not None and self._cached[0] == height:
            return self._cached[1], self._cached[2]
        stored = self._log.record(height)
        if stored is None:
            return None
        block, cert = decode_record(stored[1])
        self._cached = (height, block, cert)
        return block, cert

    def block(self, height: int) -> Block | None:
        """The block at ``height``, or None."""
        loaded = self._load(height)
        return None if loaded is None else loaded[0]

    def certificate(self, height: int) -> CommitCertificate | None:
        """The certificate of the block at ``height``, or None."""
        loaded = self._load(height)
        return None if loaded is None else loaded[1]

    def range(self, start: int, limit: int) -> list[Pair]:
        """Up to ``limit`` consecutive stored blocks from ``start``."""
        out = []
        for expected, (height, record) in enumerate(self._log.records(start, limit), start):
            if height != expected:
                break
            out.append(decode_record(record))
        return out

    def save_checkpoint(self, data: bytes) -> None:
        """Durably replace the consensus checkpoint."""
        self._log.put(CHECKPOINT_KEY, data)

    def load_checkpoint(self) -> bytes | None:
        """The last saved checkpoint, or None."""
        return self._log.get(CHECKPOINT_KEY)

    def save_snapshot(self, data: bytes) -> None:
        """Durably replace the state snapshot (``StateSnapshot.to_bytes()``).

        Only the latest is kept: a corrupt one costs a full replay, never safety.
        """
        self._log.put(SNAPSHOT_KEY, data)

    def load_snapshot(self) -> bytes | None:
        """The last saved state snapshot, or None."""
        return self._log.get(SNAPSHOT_KEY)

    def save_validator_set(self, digest: bytes, data: bytes) -> None:
        """Durably keep a validator set (``ValidatorSet.to_bytes()``) under its hash."""
        self._log.put(VALSET_PREFIX + digest, data)

    def load_validator_set(self, digest: bytes) -> bytes | None:
        """A set kept by :meth:`save_validator_set`, or None."""
        return self._log.get(VALSET_PREFIX + digest)

    def serve_sync(self, request: SyncRequest) -> SyncResponse:
        """Answer a block-sync request within :data:`SYNC_BYTES` (at least one block)."""
        picked: list[Pair] = []
        size = 0
        for block, cert in self.range(request.start, request.count):
            size += len(block.to_bytes())
            if picked and size > SYNC_BYTES:
                break
            picked.append((block, cert))
        if not picked:
            return SyncResponse((), None)
        return SyncResponse(tuple(b for b, _ in picked), picked[-1][1])
