"""Chain storage: blocks by height and hash, and committed key/value state.

Chain data is public (it is replicated to every validator), so it is stored in
clear. :meth:`ChainRepo.commit` writes a block and its state changes in one
transaction, so a crash never leaves state that belongs to no stored block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from ._access import check_limit
from ._errors import DuplicateError
from ._records import BlockRecord
from ._schema import Block, ChainState

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy import Connection

    from ._access import Access

__all__ = ("ChainRepo",)

_BLOCK_COLUMNS = (Block.chain, Block.height, Block.hash, Block.data)


class ChainRepo:
    """Blocks and state of the chains. Obtain it as :attr:`Database.chain`."""

    def __init__(self, access: Access) -> None:
        self._access = access

    def commit(
        self,
        chain: str,
        height: int,
        block_hash: bytes,
        data: bytes,
        state: Mapping[bytes, bytes | None] | None = None,
    ) -> None:
        """Store a block and apply its state changes atomically.

        Args:
            chain: The chain's name.
            height: The block height.
            block_hash: The block hash.
            data: The encoded block.
            state: Key -> new value; None deletes the key.

        Raises:
            DuplicateError: A block at this height or with this hash is stored;
                nothing was changed.
        """
        row = {"chain": chain, "height": height, "hash": block_hash, "data": data}
        with self._access.write("commit block") as conn:
            try:
                conn.execute(insert(Block).values(row))
            except IntegrityError as exc:
                raise DuplicateError(f"{chain} block {height} is already stored") from exc
            _apply(conn, chain, state or {})

    def commit_many(self, chain: str, blocks: Sequence[tuple[int, bytes, bytes]]) -> None:
        """Store several ``(height, hash, data)`` blocks in one transaction (one sync).

        Raises:
            DuplicateError: One of them is stored already; nothing was changed.
        """
        with self._access.write("commit blocks") as conn:
            for height, block_hash, data in blocks:
                row = {"chain": chain, "height": height, "hash": block_hash, "data": data}
                try:
                    conn.execute(insert(Block).values(row))
                except IntegrityError as exc:
                    raise DuplicateError(f"{chain} block {height} is already stored") from exc

    def set_state(self, chain: str, changes: Mapping[bytes, bytes | None]) -> None:
        """Apply state changes (None deletes a key) in one transaction."""
        with self._access.write("set chain state") as conn:
            _apply(conn, chain, changes)

    def get_state(self, chain: str, key: bytes) -> bytes | None:
        """Return the value of ``key`` in ``chain``'s state, or None."""
        query = select(ChainState.value).where(ChainState.chain == chain, ChainState.key == key)
        with self._access.read("get chain state") as conn:
            value = conn.execute(query).scalar_one_or_none()
        return None if value is None else bytes(value)

    def block(self, chain: str, height: int) -> BlockRecord | None:
        """Return the block at ``height``, or None."""
        query = select(*_BLOCK_COLUMNS).where(Block.chain == chain, Block.height == height)
        return self._one(query)

    def block_by_hash(self, chain: str, block_hash: bytes) -> BlockRecord | None:
        """Return the block with hash ``block_hash``, or None."""
        query = select(*_BLOCK_COLUMNS).where(Block.chain == chain, Block.hash == block_hash)
        return self._one(query)

    def head(self, chain: str) -> BlockRecord | None:
        """Return the highest stored block of ``chain``, or None."""
        top = select(func.max(Block.height)).where(Block.chain == chain).scalar_subquery()
        return self._one(select(*_BLOCK_COLUMNS).where(Block.chain == chain, Block.height == top))

    def blocks(self, chain: str, start: int, limit: int = 100) -> list[BlockRecord]:
        """Return up to ``limit`` blocks from height ``start`` upwards.

        Raises:
            InvalidArgumentError: ``limit`` is below 1.
        """
        check_limit(limit)
        query = (
            select(*_BLOCK_COLUMNS)
            .where(Block.chain == chain, Block.height >= start)
            .order_by(Block.height)
            .limit(limit)
        )
        with self._access.read("list blocks") as conn:
            return [BlockRecord(*row) for row in conn.execute(query).all()]

    def _one(self, query: object) -> BlockRecord | None:
        with self._access.read("get block") as conn:
            row = conn.execute(query).one_or_none()  # type: ignore[call-overload]
        return None if row is None else BlockRecord(*row)


def _apply(conn: Connection, chain: str, changes: Mapping[bytes, bytes | None]) -> None:
    # Delete-then-insert is one portable upsert; the caller's transaction makes it atomic.
    for key, value in changes.items():
        where = (ChainState.chain == chain, ChainState.key == key)
        conn.execute(delete(ChainState).where(*where))
        if value is not None:
            conn.execute(insert(ChainState).values(chain=chain, key=key, value=value))
