"""Layered application state over a :class:`MerkleTree`: apply, commit, roll back.

Theory of operation. The *committed* state is one immutable :class:`MerkleTree`
plus a dict of its values (reads are O(1)). Executing a block writes into a
stack of overlay layers on top of it:

* :meth:`StateStore.begin` pushes a layer, :meth:`accept` merges the top layer
  into the one below, :meth:`revert` drops it. A transaction runs in its own
  layer, so a failing transaction leaves no partial change.
* :meth:`seal` folds the (single remaining) block layer into a *pending* tree
  and returns its root, the block's ``app_hash``; the committed tree is untouched
  and still answers queries.
* :meth:`commit` adopts the pending tree; :meth:`rollback` forgets everything
  not committed.

``None`` in a layer is a deletion (a tombstone), so a delete shadows a committed
value until commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ._errors import ChainStateError
from ._merkle import MerkleProof, MerkleTree

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ("StateStore",)

_MISSING: Final = object()


class StateStore:
    """Committed Merkle state plus uncommitted write layers.

    Args:
        items: The initial committed entries (e.g. from genesis or storage).
    """

    __slots__ = ("_layers", "_pending", "_tree", "_values")

    def __init__(self, items: Mapping[bytes, bytes] | None = None) -> None:
        self._values: dict[bytes, bytes] = dict(items or {})
        self._tree = MerkleTree.from_items(self._values)
        self._layers: list[dict[bytes, bytes | None]] = []
        self._pending: tuple[MerkleTree, dict[bytes, bytes | None]] | None = None

    # -- reads -------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """The current value of ``key`` (top layer first), or ``None``."""
        for layer in reversed(self._layers):
            value = layer.get(key, _MISSING)
            if value is not _MISSING:
                assert value is None or isinstance(value, bytes)
                return value
        return self._values.get(key)

    def committed_get(self, key: bytes) -> bytes | None:
        """The committed value of ``key``, ignoring every layer."""
        return self._values.get(key)

    @property
    def committed_root(self) -> bytes:
        """The Merkle root of the committed state."""
        return self._tree.root

    @property
    def committed_tree(self) -> MerkleTree:
        """The committed tree itself: immutable, so it stays a valid snapshot after commits."""
        return self._tree

    def prove(self, key: bytes) -> tuple[bytes | None, MerkleProof]:
        """The committed value of ``key`` with its (non-)inclusion proof."""
        return self._tree.prove(key)

    def committed_prefix(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """The committed entries whose key starts with ``prefix``, by key (a scan: O(state))."""
        return sorted((k, v) for k, v in self._values.items() if k.startswith(prefix))

    def committed_items(self) -> dict[bytes, bytes]:
        """A copy of every committed entry (for persistence or export)."""
        return dict(self._values)

    # -- writes ------------------------------------------------------------------

    def set(self, key: bytes, value: bytes) -> None:
        """Write ``key`` in the top layer."""
        self._top()[key] = value

    def delete(self, key: bytes) -> None:
        """Delete ``key`` in the top layer."""
        self._top()[key] = None

    def _top(self) -> dict[bytes, bytes | None]:
        if not self._layers:
            raise ChainStateError("write outside a layer: call begin() first")
        return self._layers[-1]

    @property
    def depth(self) -> int:
        """How many layers are open."""
        return len(self._layers)

    def begin(self) -> None:
        """Open a new write layer on top (also while a sealed block awaits commit)."""
        self._layers.append({})

    def accept(self) -> None:
        """Merge the top layer into the layer below it."""
        if len(self._layers) < 2:
            raise ChainStateError("accept needs a layer below the top one")
        top = self._layers.pop()
        self._layers[-1].update(top)

    def revert(self) -> None:
        """Drop the top layer and its writes."""
        if not self._layers:
            raise ChainStateError("no layer to revert")
        self._layers.pop()

    # -- block lifecycle -----------------------------------------------------------

    def seal(self) -> bytes:
        """Fold the single open layer into a pending tree; return its root."""
        if len(self._layers) != 1:
            raise ChainStateError("seal needs exactly one open layer")
        changes = {
            key: value
            for key, value in self._layers.pop().items()
            if value != self._values.get(key)
        }
        self._pending = (self._tree.update(changes), changes)
        return self._pending[0].root

    def commit(self) -> dict[bytes, bytes | None]:
        """Adopt the sealed state; returns its changes (``None`` = deleted)."""
        if self._pending is None or self._layers:
            raise ChainStateError("commit needs a sealed block and no open layer")
        tree, changes = self._pending
        for key, value in changes.items():
            if value is None:
                self._values.pop(key, None)
            else:
                self._values[key] = value
        self._tree, self._pending = tree, None
        return changes

    def rollback(self) -> None:
        """Forget every uncommitted layer and sealed state."""
        self._layers.clear()
        self._pending = None

    @property
    def sealed(self) -> bool:
        """Whether a sealed block awaits :meth:`commit`."""
        return self._pending is not None
