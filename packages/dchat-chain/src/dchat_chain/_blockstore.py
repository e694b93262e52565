"""Where a node keeps its decided blocks, their certificates and its checkpoint.

:class:`BlockStore` is the interface consensus, block sync and restart need;
:class:`MemoryBlockStore` keeps encoded bytes in memory (so what it returns
went through the same decoder a durable store's bytes would). A store on
dchat-storage's ``chain`` tables implements the same interface (left for node
integration, see ``docs/rationale.md``). :func:`replay` rebuilds an
application's state and the chain state from a store after a restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ._block import Block
from ._block_chain import execute_block
from ._block_commit import CommitCertificate
from ._errors import ChainArgumentError

if TYPE_CHECKING:
    from ._app import Application
    from ._block_chain import ChainState

__all__ = ("BlockStore", "MemoryBlockStore", "replay")


class BlockStore(Protocol):
    """Decided blocks by height, each with the certificate that decided it."""

    def height(self) -> int:
        """The highest stored height (0 when empty)."""
        ...

    def save(self, block: Block, certificate: CommitCertificate) -> None:
        """Store the next block; re-saving the stored block at a height is a no-op.

        Raises:
            ChainArgumentError: Not the next height, a different block at a stored
                height, or a certificate for another block.
        """
        ...

    def block(self, height: int) -> Block | None:
        """The block at ``height``, or None."""
        ...

    def certificate(self, height: int) -> CommitCertificate | None:
        """The certificate of the block at ``height``, or None."""
        ...

    def save_checkpoint(self, data: bytes) -> None:
        """Durably replace the consensus checkpoint (``Checkpoint.to_bytes()``)."""
        ...

    def load_checkpoint(self) -> bytes | None:
        """The last saved checkpoint, or None."""
        ...


class MemoryBlockStore:
    """A :class:`BlockStore` in memory (tests, simulations, benchmarks, observers)."""

    __slots__ = ("_blocks", "_checkpoint")

    def __init__(self) -> None:
        self._blocks: list[tuple[bytes, bytes, bytes]] = []  # (hash, block, certificate)
        self._checkpoint: bytes | None = None

    def height(self) -> int:
        """The highest stored height (0 when empty)."""
        return len(self._blocks)

    def save(self, block: Block, certificate: CommitCertificate) -> None:
        """Store the next block (see :meth:`BlockStore.save`)."""
        block_hash = block.hash()
        if certificate.block_hash != block_hash or certificate.height != block.height:
            raise ChainArgumentError("certificate is not for this block")
        if block.height <= len(self._blocks):
            if self._blocks[block.height - 1][0] != block_hash:
                raise ChainArgumentError("a different block is stored at this height")
            return
        if block.height != len(self._blocks) + 1:
            raise ChainArgumentError("blocks must be stored in height order")
        self._blocks.append((block_hash, block.to_bytes(), certificate.to_bytes()))

    def block(self, height: int) -> Block | None:
        """The block at ``height``, or None."""
        if not 1 <= height <= len(self._blocks):
            return None
        return Block.from_bytes(self._blocks[height - 1][1])

    def certificate(self, height: int) -> CommitCertificate | None:
        """The certificate of the block at ``height``, or None."""
        if not 1 <= height <= len(self._blocks):
            return None
        return CommitCertificate.from_bytes(self._blocks[height - 1][2])

    def save_checkpoint(self, data: bytes) -> None:
        """Replace the consensus checkpoint."""
        self._checkpoint = bytes(data)

    def load_checkpoint(self) -> bytes | None:
        """The last saved checkpoint, or None."""
        return self._checkpoint


def replay(
    store: BlockStore, app: Application, genesis: ChainState
) -> tuple[ChainState, CommitCertificate | None]:
    """Re-execute every stored block on a fresh ``app``, from ``genesis``.

    The blocks were verified before they were stored, so no signature is
    checked again; each is still validated against the state it extends.

    Returns:
        The state after the last stored block and that block's certificate.
    """
    state, last_commit = genesis, None
    for height in range(1, store.height() + 1):
        block, certificate = store.block(height), store.certificate(height)
        assert block is not None
        assert certificate is not None
        state.validate_block(block, check_last_commit=False)
        state, _ = execute_block(state, app, block)
        last_commit = certificate
    return state, last_commit
