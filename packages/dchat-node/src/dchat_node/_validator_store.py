"""A durable :class:`dchat_chain.lowlevel.BlockStore` on the node database (``ChainRepo``).

Each decided block is one ``ChainRepo.commit`` row (block and certificate
together, so one never exists without the other) and the consensus checkpoint
is one chain-state key. The database runs SQLite in WAL mode with
``synchronous=FULL``, so a call that returned survives a SIGKILL or a power
cut: the validator shell relies on that to write a checkpoint *before* it sends
anything the checkpoint covers. Chain data is public; it is stored in clear.

Block sync stores a whole batch with :meth:`RepoBlockStore.save_many`: one
transaction, so one fsync per batch instead of one per block (the blocks are
certified and can be fetched again; nothing this node signed depends on them).

Methods are blocking; the shell calls them from worker threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from dchat_chain import Block, ChainArgumentError, CommitCertificate
from dchat_chain.lowlevel import SyncResponse
from dchat_core import DchatError, canonical_decode, canonical_encode
from dchat_storage import DuplicateError

from ._errors import NodeStateError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dchat_chain.lowlevel import SyncRequest
    from dchat_storage import ChainRepo

__all__ = ("RepoBlockStore",)

CHECKPOINT_KEY: Final = b"consensus/checkpoint"
SNAPSHOT_KEY: Final = b"snapshot/latest"
VALSET_PREFIX: Final = b"valset/"  # + the set's hash: sets light clients may ask for
SYNC_BYTES: Final = 768 << 10  # stay well inside a link message (1 MiB)


def _encode(block: Block, certificate: CommitCertificate) -> bytes:
    return canonical_encode([block.to_bytes(), certificate.to_bytes()])


def _decode(data: bytes) -> tuple[Block, CommitCertificate]:
    try:
        block_bytes, cert_bytes = canonical_decode(data)
        return Block.from_bytes(block_bytes), CommitCertificate.from_bytes(cert_bytes)
    except (DchatError, ValueError, TypeError) as exc:
        raise NodeStateError("corrupt_store", f"a stored block is corrupt: {exc}") from None


class RepoBlockStore:
    """Blocks, certificates and the checkpoint of one chain in the node database.

    Args:
        repo: The database's chain repository.
        chain: The chain id (rows are keyed by it).
    """

    def __init__(self, repo: ChainRepo, chain: str) -> None:
        self._repo = repo
        self._chain = chain
        head = repo.head(chain)
        self._height = 0 if head is None else head.height
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
        block_hash = block.hash()
        if certificate.block_hash != block_hash or certificate.height != block.height:
            raise ChainArgumentError("certificate is not for this block")
        if block.height <= self._height:
            stored = self._repo.block(self._chain, block.height)
            if stored is None or stored.hash != block_hash:
                raise ChainArgumentError("a different block is stored at this height")
            return
        if block.height != self._height + 1:
            raise ChainArgumentError("blocks must be stored in height order")
        try:
            self._repo.commit(self._chain, block.height, block_hash, _encode(block, certificate))
        except DuplicateError:
            raise ChainArgumentError("a block with this hash is stored already") from None
        self._height = block.height

    def save_many(self, pairs: Sequence[tuple[Block, CommitCertificate]]) -> None:
        """Store the next blocks durably in one database transaction (block sync).

        Blocks already stored are checked like :meth:`save` and skipped.

        Raises:
            ChainArgumentError: As :meth:`save`; then nothing was stored.
        """
        rows, height = [], self._height
        for block, certificate in pairs:
            block_hash = block.hash()
            if certificate.block_hash != block_hash or certificate.height != block.height:
                raise ChainArgumentError("certificate is not for this block")
            if block.height <= self._height:
                self.save(block, certificate)  # the stored one, or an error
                continue
            if block.height != height + 1:
                raise ChainArgumentError("blocks must be stored in height order")
            rows.append((block.height, block_hash, _encode(block, certificate)))
            height = block.height
        if not rows:
            return
        try:
            self._repo.commit_many(self._chain, rows)
        except DuplicateError:
            raise ChainArgumentError("a block with this hash is stored already") from None
        self._height = height

    def _load(self, height: int) -> tuple[Block, CommitCertificate] | None:
        if self._cached is not None and self._cached[0] == height:
            return self._cached[1], self._cached[2]
        record = self._repo.block(self._chain, height)
        if record is None:
            return None
        block, cert = _decode(record.data)
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

    def range(self, start: int, limit: int) -> list[tuple[Block, CommitCertificate]]:
        """Up to ``limit`` consecutive stored blocks from ``start``."""
        records = self._repo.blocks(self._chain, start, limit)
        out = []
        for expected, record in enumerate(records, start):
            if record.height != expected:
                break
            out.append(_decode(record.data))
        return out

    def save_checkpoint(self, data: bytes) -> None:
        """Durably replace the consensus checkpoint."""
        self._repo.set_state(self._chain, {CHECKPOINT_KEY: data})

    def load_checkpoint(self) -> bytes | None:
        """The last saved checkpoint, or None."""
        return self._repo.get_state(self._chain, CHECKPOINT_KEY)

    def save_snapshot(self, data: bytes) -> None:
        """Durably replace the state snapshot (``StateSnapshot.to_bytes()``).

        Only the latest is kept: a corrupt one costs a full replay, never safety.
        """
        self._repo.set_state(self._chain, {SNAPSHOT_KEY: data})

    def load_snapshot(self) -> bytes | None:
        """The last saved state snapshot, or None."""
        return self._repo.get_state(self._chain, SNAPSHOT_KEY)

    def save_validator_set(self, digest: bytes, data: bytes) -> None:
        """Durably keep a validator set (``ValidatorSet.to_bytes()``) under its hash."""
        self._repo.set_state(self._chain, {VALSET_PREFIX + digest: data})

    def load_validator_set(self, digest: bytes) -> bytes | None:
        """A set kept by :meth:`save_validator_set`, or None."""
        return self._repo.get_state(self._chain, VALSET_PREFIX + digest)

    def serve_sync(self, request: SyncRequest) -> SyncResponse:
        """Answer a block-sync request within :data:`SYNC_BYTES` (at least one block)."""
        rows = self.range(request.start, request.count)
        picked: list[tuple[Block, CommitCertificate]] = []
        size = 0
        for block, cert in rows:
            size += len(block.to_bytes())
            if picked and size > SYNC_BYTES:
                break
            picked.append((block, cert))
        if not picked:
            return SyncResponse((), None)
        return SyncResponse(tuple(b for b, _ in picked), picked[-1][1])
