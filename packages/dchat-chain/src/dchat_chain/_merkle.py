"""An authenticated key-value map: a compact sparse Merkle tree over SHA-256 key paths.

Theory of operation. Every key ``k`` has a 256-bit *path* ``SHA-256(k)``; bit ``i``
of the path (most significant bit of byte 0 first) picks the left (0) or right (1)
child at depth ``i``. The tree is *compact*: a subtree holding exactly one entry is
that entry's leaf, placed as high as it can go, and an empty subtree is the
all-zero digest. Hence::

    empty          = 0x00 * 32
    leaf(k, v)     = SHA-256(0x00 || path(k) || SHA-256(v))
    branch(l, r)   = SHA-256(0x01 || l || r)

The root is a function of the set of entries alone (never of the order of
writes), and a tree of ``n`` random keys is about ``log2(n)`` levels deep.

A proof for ``k`` lists the sibling digests from the root down to where ``k``'s
path ends: at ``k``'s own leaf (inclusion), at an empty subtree, or at another
key's leaf whose path shares the prefix walked so far (both: non-inclusion).
:func:`verify_proof` needs nothing but the root, so light clients use it alone.

Nodes are immutable and share structure, so :meth:`MerkleTree.update` returns
a new tree in ``O(changes * depth)`` while the old one stays valid (a free
snapshot); branch digests are computed lazily and cached, so a block of writes
hashes each touched node once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Self

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ("EMPTY_ROOT", "MerkleProof", "MerkleTree", "key_path", "verify_proof")

EMPTY_ROOT: Final = bytes(32)
_LEAF: Final = b"\x00"
_BRANCH: Final = b"\x01"
_DEPTH: Final = 256
_PROOF_LIMITS: Final = DecodeLimits(max_size=16 << 10, max_depth=3, max_items=_DEPTH + 8)
_PROOF_FIELDS: Final = frozenset({"v", "sib", "leaf"})


def key_path(key: bytes) -> bytes:
    """The 32-byte path of ``key`` in the tree: ``SHA-256(key)``."""
    return hashlib.sha256(key).digest()


def _bit(path: bytes, depth: int) -> int:
    return (path[depth >> 3] >> (7 - (depth & 7))) & 1


def _leaf_digest(path: bytes, value_hash: bytes) -> bytes:
    return hashlib.sha256(_LEAF + path + value_hash).digest()


class _Leaf:
    __slots__ = ("digest", "key", "path", "value", "value_hash")

    def __init__(self, key: bytes, value: bytes, path: bytes | None = None) -> None:
        self.key = key
        self.value = value
        self.path = key_path(key) if path is None else path
        self.value_hash = hashlib.sha256(value).digest()
        self.digest = _leaf_digest(self.path, self.value_hash)


class _Branch:
    __slots__ = ("_digest", "left", "right")

    def __init__(self, left: _Node, right: _Node) -> None:
        self.left = left
        self.right = right
        self._digest: bytes | None = None

    @property
    def digest(self) -> bytes:
        # Lazy and cached: nodes never change, so the digest is computed at most once.
        if self._digest is None:
            left = EMPTY_ROOT if self.left is None else self.left.digest
            right = EMPTY_ROOT if self.right is None else self.right.digest
            self._digest = hashlib.sha256(_BRANCH + left + right).digest()
        return self._digest


_Node = _Leaf | _Branch | None


def _split(a: _Leaf, b: _Leaf, depth: int) -> _Branch:
    """The smallest subtree holding two leaves whose paths agree above ``depth``."""
    bit_a = _bit(a.path, depth)
    if bit_a != _bit(b.path, depth):
        return _Branch(a, b) if bit_a == 0 else _Branch(b, a)
    child = _split(a, b, depth + 1)
    return _Branch(child, None) if bit_a == 0 else _Branch(None, child)


def _insert(node: _Node, leaf: _Leaf, depth: int) -> _Node:
    if node is None:
        return leaf
    if isinstance(node, _Leaf):
        return leaf if node.path == leaf.path else _split(node, leaf, depth)
    if _bit(leaf.path, depth):
        return _Branch(node.left, _insert(node.right, leaf, depth + 1))
    return _Branch(_insert(node.left, leaf, depth + 1), node.right)


def _join(left: _Node, right: _Node) -> _Node:
    """A branch, collapsed to its single leaf when the other side is empty."""
    if left is None and not isinstance(right, _Branch):
        return right
    if right is None and isinstance(left, _Leaf):
        return left
    return _Branch(left, right)


def _delete(node: _Node, path: bytes, depth: int) -> _Node:
    if node is None or isinstance(node, _Leaf):
        return None if node is not None and node.path == path else node
    if _bit(path, depth):
        right = _delete(node.right, path, depth + 1)
        return node if right is node.right else _join(node.left, right)
    left = _delete(node.left, path, depth + 1)
    return node if left is node.left else _join(left, node.right)


def _walk(root: _Node, path: bytes) -> tuple[list[bytes], _Node]:
    """Sibling digests down ``path`` and the node where the path ends."""
    siblings: list[bytes] = []
    node = root
    depth = 0
    while isinstance(node, _Branch):
        if _bit(path, depth):
            siblings.append(EMPTY_ROOT if node.left is None else node.left.digest)
            node = node.right
        else:
            siblings.append(EMPTY_ROOT if node.right is None else node.right.digest)
            node = node.left
        depth += 1
    return siblings, node


@dataclass(frozen=True, slots=True)
class MerkleProof:
    """Sibling digests (root first) and, for non-inclusion, the leaf met instead.

    Attributes:
        siblings: One 32-byte digest per level walked, from the root down.
        other_leaf: ``(path, value_hash)`` of a different key's leaf where the
            queried path ends, or ``None`` (the queried leaf, or an empty subtree).
    """

    siblings: tuple[bytes, ...]
    other_leaf: tuple[bytes, bytes] | None = None

    def encode(self) -> bytes:
        """Canonical encoding: ``{"v": 1, "sib": [bytes32...], "leaf": null | [p, h]}``."""
        leaf = None if self.other_leaf is None else list(self.other_leaf)
        return canonical_encode({"v": 1, "sib": list(self.siblings), "leaf": leaf})

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Strictly decode a proof.

        Raises:
            DecodeError: ``data`` is not a well-formed proof.
        """
        fields = Fields(canonical_decode(data, _PROOF_LIMITS), "proof", _PROOF_FIELDS)
        if fields.get_int("v") != 1:
            raise DecodeError("proof: unsupported version")
        siblings = fields.get_list("sib", max_len=_DEPTH)
        if not all(isinstance(s, bytes) and len(s) == 32 for s in siblings):
            raise DecodeError("proof: siblings must be 32-byte digests")
        leaf = fields.raw("leaf")
        if leaf is not None and not (
            isinstance(leaf, list)
            and len(leaf) == 2
            and all(isinstance(x, bytes) and len(x) == 32 for x in leaf)
        ):
            raise DecodeError("proof: leaf must be null or [path, value hash]")
        other = None if leaf is None else (leaf[0], leaf[1])
        return cls(tuple(siblings), other)


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: bytes) -> bool:
    """Whether ``proof`` shows that ``key`` maps to ``value`` (``None``: absent) under ``root``.

    Total on untrusted input: a malformed proof is simply ``False``.
    """
    try:
        parsed = MerkleProof.decode(proof)
    except DecodeError:
        return False
    path = key_path(key)
    depth = len(parsed.siblings)
    if value is not None:
        if parsed.other_leaf is not None:
            return False
        digest = _leaf_digest(path, hashlib.sha256(value).digest())
    elif parsed.other_leaf is None:
        digest = EMPTY_ROOT
    else:
        other_path, other_hash = parsed.other_leaf
        if other_path == path or not _same_prefix(path, other_path, depth):
            return False
        digest = _leaf_digest(other_path, other_hash)
    for level in range(depth - 1, -1, -1):
        sibling = parsed.siblings[level]
        pair = sibling + digest if _bit(path, level) else digest + sibling
        digest = hashlib.sha256(_BRANCH + pair).digest()
    return digest == root


def _same_prefix(a: bytes, b: bytes, bits: int) -> bool:
    return all(_bit(a, i) == _bit(b, i) for i in range(bits))


class MerkleTree:
    """An immutable authenticated map from ``bytes`` keys to ``bytes`` values.

    Updates return a new tree sharing unchanged nodes with the old one.
    """

    __slots__ = ("_root", "_size")

    def __init__(self) -> None:
        self._root: _Node = None
        self._size = 0

    @classmethod
    def from_items(cls, items: Mapping[bytes, bytes]) -> MerkleTree:
        """A tree holding exactly ``items``."""
        return cls().update(items)

    @property
    def root(self) -> bytes:
        """The 32-byte root digest (:data:`EMPTY_ROOT` for an empty tree)."""
        return EMPTY_ROOT if self._root is None else self._root.digest

    def __len__(self) -> int:
        return self._size

    def update(self, changes: Mapping[bytes, bytes | None]) -> MerkleTree:
        """A new tree with ``changes`` applied (``None`` deletes a key)."""
        root, size = self._root, self._size
        for key, value in changes.items():
            path = key_path(key)
            present = self._lookup(root, path) is not None
            if value is None:
                if present:
                    root = _delete(root, path, 0)
                    size -= 1
            else:
                root = _insert(root, _Leaf(key, value, path), 0)
                size += 0 if present else 1
        tree = MerkleTree()
        tree._root, tree._size = root, size
        return tree

    @staticmethod
    def _lookup(root: _Node, path: bytes) -> _Leaf | None:
        node, depth = root, 0
        while isinstance(node, _Branch):
            node = node.right if _bit(path, depth) else node.left
            depth += 1
        return node if node is not None and node.path == path else None

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or ``None``."""
        leaf = self._lookup(self._root, key_path(key))
        return None if leaf is None else leaf.value

    def prove(self, key: bytes) -> tuple[bytes | None, MerkleProof]:
        """The value of ``key`` (or ``None``) with a proof against :attr:`root`."""
        path = key_path(key)
        siblings, end = _walk(self._root, path)
        if end is None:
            return None, MerkleProof(tuple(siblings))
        assert isinstance(end, _Leaf)
        if end.path == path:
            return end.value, MerkleProof(tuple(siblings))
        return None, MerkleProof(tuple(siblings), (end.path, end.value_hash))

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every entry, in path order."""
        stack: list[_Node] = [self._root]
        while stack:
            node = stack.pop()
            if isinstance(node, _Leaf):
                yield node.key, node.value
            elif isinstance(node, _Branch):
                stack.extend((node.right, node.left))
