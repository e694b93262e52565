"""One chain's block log on the chain tables: what a validator's block store writes through.

:class:`ChainBlockLog` binds a :class:`ChainRepo` to one chain id and gives the
byte-level interface dchat-chain's ``DurableBlockStore`` runs on (its
``BlockLog`` protocol; this package knows nothing of blocks): rows
``(height, hash, record)`` in the ``block`` table and named values in the
chain's state table. Every write is one transaction, so on SQLite (WAL,
``synchronous=FULL``) a call that returned survives a crash, and a batch of
rows is one fsync. A row whose height or hash is stored already makes
:meth:`ChainBlockLog.append` return False with nothing written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._errors import DuplicateError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._chain import ChainRepo

__all__ = ("ChainBlockLog",)


class ChainBlockLog:
    """The rows and named values of one chain.

    Args:
        repo: The database's chain repository (:attr:`Database.chain`).
        chain: The chain id (rows are keyed by it).
    """

    def __init__(self, repo: ChainRepo, chain: str) -> None:
        self._repo, self._chain = repo, chain

    def height(self) -> int:
        """The highest stored height (0 when empty)."""
        head = self._repo.head(self._chain)
        return 0 if head is None else head.height

    def append(self, rows: Sequence[tuple[int, bytes, bytes]]) -> bool:
        """Store ``(height, hash, record)`` rows in one transaction.

        Returns:
            False, with nothing stored, when a row's height or hash is stored already.
        """
        try:
            self._repo.commit_many(self._chain, rows)
        except DuplicateError:
            return False
        return True

    def record(self, height: int) -> tuple[bytes, bytes] | None:
        """``(hash, record)`` of the row at ``height``, or None."""
        found = self._repo.block(self._chain, height)
        return None if found is None else (found.hash, found.data)

    def records(self, start: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` rows ``(height, record)`` from ``start`` upwards, by height.

        Raises:
            InvalidArgumentError: ``limit`` is below 1.
        """
        return [(r.height, r.data) for r in self._repo.blocks(self._chain, start, limit)]

    def put(self, key: bytes, value: bytes) -> None:
        """Durably replace the named value ``key``."""
        self._repo.set_state(self._chain, {key: value})

    def get(self, key: bytes) -> bytes | None:
        """The named value ``key``, or None."""
        return self._repo.get_state(self._chain, key)
