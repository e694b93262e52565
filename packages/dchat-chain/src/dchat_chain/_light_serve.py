"""What a validator serves to light clients: certified headers and certified state.

Theory of operation. Header ``h + 1`` carries the root of the state *after*
block ``h`` (see :mod:`._block`), so the newest state a light client
can check is the one after block ``tip - 1``, where ``tip`` is the newest
block this node has stored with its commit certificate. :func:`certified_query`
answers from that state: :class:`IndexedApp` keeps the last few committed
state trees (they are immutable and share nodes, so keeping them is cheap),
and the answer names both the state's height and the header that proves it.

A header that changes the validator set is served with the new set, which the
light client needs to check the next header. The node learns every set from
its chain state as blocks are decided, synced or replayed
(:meth:`ValidatorSetLog.note`) and stores each one once, by hash, in the chain
state table, so it can still serve old hand-offs after a restart.

The documents are the node API's (``docs/protocol.md`` §15): :func:`headers_page`
is ``GET /v1/chain/headers``, :func:`block_txs_answer` ``GET
/v1/chain/blocks/{h}/txs``, :func:`answer_fields` the proof part every proven
answer carries; :mod:`._light_answers` parses both on the client side. The
functions taking a :class:`DurableBlockStore` block while it does; a shell
runs them in a worker thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from dchat_core import canonical_encode

from ._app import AppQueryResult
from ._errors import NotCertifiedError

if TYPE_CHECKING:
    from ._block_chain import ChainState
    from ._block_log import DurableBlockStore
    from ._indexed_app import IndexedApp

__all__ = (
    "MAX_HEADERS",
    "ValidatorSetLog",
    "answer_fields",
    "block_txs_answer",
    "certified_height",
    "certified_query",
    "headers_page",
)

MAX_HEADERS: Final = 64  # headers per page: a page stays small whatever the blocks weigh


class ValidatorSetLog:
    """Every validator set this chain has used, by hash, in memory and in the store."""

    def __init__(self, blocks: DurableBlockStore) -> None:
        self._blocks = blocks
        self._known: dict[bytes, bytes] = {}

    def note(self, state: ChainState) -> list[tuple[bytes, bytes]]:
        """Remember the sets ``state`` names; returns the new ones (hash, encoding)."""
        new = []
        for member_set in (state.validators, state.next_validators):
            digest = member_set.hash()
            if digest not in self._known:
                self._known[digest] = member_set.to_bytes()
                new.append((digest, self._known[digest]))
        return new

    def persist(self, new: list[tuple[bytes, bytes]]) -> None:
        """Store sets returned by :meth:`note` (blocking)."""
        for digest, data in new:
            self._blocks.save_validator_set(digest, data)

    def get(self, digest: bytes) -> bytes | None:
        """The encoded set with this hash, or None (blocking: may read the store)."""
        found = self._known.get(digest)
        if found is None:
            found = self._blocks.load_validator_set(digest)
            if found is not None:
                self._known[digest] = found
        return found


def certified_height(app: IndexedApp, stored: int) -> int | None:
    """The newest height whose resulting state a stored header proves, or None."""
    height = min(app.inner.height, stored) - 1
    return height if height >= 0 and height in app.trees else None


def certified_query(app: IndexedApp, stored: int, key: bytes) -> AppQueryResult:
    """``key`` in the state after block ``height``, provable by header ``height + 1``.

    Raises:
        NotCertifiedError: No stored header proves a kept state yet.
    """
    height = certified_height(app, stored)
    if height is None:
        raise NotCertifiedError("no certified state yet; retry after the next block")
    tree = app.trees[height]
    value, proof = tree.prove(key)
    return AppQueryResult(key, value, proof.encode(), height, tree.root)


def headers_page(
    blocks: DurableBlockStore, sets: ValidatorSetLog, chain_id: str, start: int, limit: int
) -> dict[str, Any]:
    """The ``/v1/chain/headers`` document: headers ``start..`` with their certificates.

    The page stops early at a set change whose set this node does not know
    (a light client then needs another node), so it may hold fewer than ``limit``.
    """
    items: list[dict[str, Any]] = []
    for block, certificate in blocks.range(start, min(limit, MAX_HEADERS)):
        header = block.header
        following = None
        if header.next_validators_hash != header.validators_hash:
            following = sets.get(header.next_validators_hash)
            if following is None:
                break
        items.append(
            {
                "height": header.height,
                "header": canonical_encode(header.to_obj()).hex(),
                "certificate": certificate.to_bytes().hex(),
                "next_validators": None if following is None else following.hex(),
            }
        )
    return {"chain_id": chain_id, "tip": blocks.height(), "headers": items}


def block_txs_answer(blocks: DurableBlockStore, height: int) -> dict[str, Any] | None:
    """The ``/v1/chain/blocks/{h}/txs`` document: a stored block's raw transactions.

    A wallet scanning for stealth payments checks them against the certified
    header's ``txs_root`` (:class:`~._stealth_scan.StealthScan`). None: no such block.
    """
    loaded = blocks.range(height, 1)
    if not loaded:
        return None
    block = loaded[0][0]
    return {"height": block.header.height, "txs": [t.hex() for t in block.txs]}


def answer_fields(answer: AppQueryResult) -> dict[str, Any]:
    """The proof part of a proven API answer: what :func:`parse_proof` reads back.

    ``height`` is the state's, ``header_height`` the header whose app hash
    proves it; binary fields are hex, an absent value is null.
    """
    value = answer.value
    return {
        "height": answer.height,
        "header_height": answer.height + 1,
        "app_hash": answer.app_hash.hex(),
        "value": None if value is None else value.hex(),
        "proof": answer.proof.hex(),
    }
