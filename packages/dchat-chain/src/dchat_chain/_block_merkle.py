"""A binary Merkle tree over a block's transactions (RFC 6962 shape, SHA-256).

Leaves and inner nodes are hashed under different one-byte prefixes (``0x00``
and ``0x01``), so no inner node can be passed off as a leaf (the second-preimage
attack on naive Merkle trees). A list of ``n`` leaves splits at the largest
power of two below ``n``, exactly as Certificate Transparency does, so the tree
shape depends only on ``n`` and every leaf's path has at most ``ceil(log2 n)``
siblings. The root of the empty list is ``SHA-256("")``.

A transaction's leaf is its hash, ``SHA-256(tx)``; the header commits to the
root of those hashes in block order.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from ._errors import ChainArgumentError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = (
    "merkle_proof",
    "merkle_root",
    "tx_hash",
    "tx_inclusion_proof",
    "txs_root",
    "verify_merkle_proof",
    "verify_tx_inclusion",
)

_LEAF = b"\x00"
_NODE = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def tx_hash(tx: bytes) -> bytes:
    """The 32-byte id of a transaction inside a block: ``SHA-256(tx)``."""
    return hashlib.sha256(tx).digest()


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(_LEAF + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    # Largest power of two strictly below n (n >= 2).
    return 1 << ((n - 1).bit_length() - 1)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle root of ``leaves`` (any byte strings), in order."""
    if not leaves:
        return EMPTY_ROOT
    # Bottom-up, pairing neighbours and carrying an odd last node up unchanged:
    # the same tree as the recursive split at the largest power of two (RFC 6962
    # 2.1), without recursion or slicing (blocks of thousands are hashed on
    # every proposal, validity check and sync).
    sha256 = hashlib.sha256
    level = [sha256(_LEAF + leaf).digest() for leaf in leaves]
    while len(level) > 1:
        paired = [
            sha256(_NODE + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def txs_root(txs: Sequence[bytes]) -> bytes:
    """The root a block header carries: the Merkle root of the transactions' hashes."""
    return merkle_root([tx_hash(tx) for tx in txs])


def merkle_proof(leaves: Sequence[bytes], index: int) -> tuple[bytes, ...]:
    """The sibling hashes proving ``leaves[index]`` under :func:`merkle_root`, leaf first.

    Raises:
        ChainArgumentError: ``index`` is not a position in ``leaves``.
    """
    if not 0 <= index < len(leaves):
        raise ChainArgumentError("leaf index out of range")
    path: list[bytes] = []
    lo, hi = 0, len(leaves)
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            path.append(merkle_root(leaves[mid:hi]))
            hi = mid
        else:
            path.append(merkle_root(leaves[lo:mid]))
            lo = mid
    return tuple(reversed(path))


def verify_merkle_proof(
    root: bytes, leaf: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows ``leaf`` at ``index`` of a ``size``-leaf tree with ``root``."""
    if not 0 <= index < size:
        return False
    # Recompute the descent to know, at each level, whether we were left or right.
    sides: list[bool] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        sides.append(index >= mid)
        lo, hi = (mid, hi) if index >= mid else (lo, mid)
    if len(sides) != len(proof):
        return False
    node = _leaf(leaf)
    for is_right, sibling in zip(reversed(sides), proof, strict=True):
        node = _node(sibling, node) if is_right else _node(node, sibling)
    return node == root


def tx_inclusion_proof(txs: Sequence[bytes], index: int) -> tuple[bytes, ...]:
    """The proof that ``txs[index]`` is in a block whose header has ``txs_root(txs)``.

    Raises:
        ChainArgumentError: ``index`` is not a position in ``txs``.
    """
    return merkle_proof([tx_hash(tx) for tx in txs], index)


def verify_tx_inclusion(
    root: bytes, tx: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows ``tx`` at ``index`` of a ``size``-transaction block."""
    return verify_merkle_proof(root, tx_hash(tx), index, size, proof)
