"""State snapshots: the application state and chain state after one block, checkable.

A node that restarts would otherwise re-execute every block it stored. A
snapshot lets it load the state after block ``h`` and execute only the blocks
above ``h``. Its bytes are::

    SHA-256(payload) || payload
    payload = canonical {"v": 1, "h": h, "chain": ChainState.to_bytes() after h,
                         "items": [[key, value], ...] in key order}

Nothing in a snapshot is trusted because a node wrote it. :meth:`StateSnapshot.verify`
accepts it only when

* the checksum and the strict decoding hold (a torn or bit-flipped write),
* the Merkle root of ``items`` equals the chain state's ``app_hash``, and
* the stored block ``h`` has the chain state's ``last_block_hash`` and the stored
  block ``h + 1`` extends the chain state (``ChainState.validate_block``: its
  header's ``app_hash`` is that root and its validator hashes are the sets'),

so a snapshot is used only when a block header that consensus certified commits
to exactly its state. Any failure is a :class:`SnapshotError`; the caller then
replays every block from genesis instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._block_chain import ChainState
from ._errors import ChainStateError
from ._merkle import MerkleTree

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._block import Block

__all__ = ("SnapshotError", "StateSnapshot")

_LIMITS: Final = DecodeLimits(max_size=1 << 31, max_depth=4, max_items=1 << 26)
_FIELDS: Final = frozenset({"v", "h", "chain", "items"})


class SnapshotError(ChainStateError):
    """A stored state snapshot is corrupt or does not match the stored chain."""


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """The state after block ``height``: the chain state and every application entry."""

    height: int
    chain_state: ChainState
    items: Mapping[bytes, bytes]

    @classmethod
    def take(cls, chain_state: ChainState, items: Mapping[bytes, bytes]) -> StateSnapshot:
        """A snapshot of ``items`` (the committed state) with the chain state after it."""
        return cls(chain_state.height - 1, chain_state, items)

    def to_bytes(self) -> bytes:
        """Checksum and canonical payload (see the module docstring)."""
        payload = canonical_encode(
            {
                "v": 1,
                "h": self.height,
                "chain": self.chain_state.to_bytes(),
                "items": [[k, self.items[k]] for k in sorted(self.items)],
            }
        )
        return hashlib.sha256(payload).digest() + payload

    @classmethod
    def from_bytes(cls, data: bytes) -> StateSnapshot:
        """Decode stored snapshot bytes (checksum and structure; see :meth:`verify`).

        Raises:
            SnapshotError: The bytes are not an intact snapshot.
        """
        digest, payload = data[:32], data[32:]
        if len(data) < 33 or hashlib.sha256(payload).digest() != digest:
            raise SnapshotError("snapshot checksum does not match")
        try:
            f = Fields(canonical_decode(payload, _LIMITS), "snapshot", _FIELDS)
            if f.get_int("v") != 1:
                raise SnapshotError("unknown snapshot version")
            height = f.get_int("h", lo=1)
            chain_state = ChainState.from_bytes(f.get_bytes("chain", max_size=1 << 24))
            items = _items(f.get_list("items", max_len=1 << 25))
        except SnapshotError:
            raise
        except DchatError as exc:
            raise SnapshotError(f"snapshot is malformed: {exc}") from None
        if chain_state.height != height + 1:
            raise SnapshotError("snapshot height and chain state disagree")
        return cls(height, chain_state, items)

    def verify(self, block: Block | None, following: Block | None) -> None:
        """Check the snapshot against stored block ``height`` and block ``height + 1``.

        Raises:
            SnapshotError: A root or hash differs, or block ``height + 1`` is not
                stored (no certified header commits to this state yet).
        """
        if MerkleTree.from_items(self.items).root != self.chain_state.app_hash:
            raise SnapshotError("snapshot entries do not have the recorded root")
        if block is None or block.hash() != self.chain_state.last_block_hash:
            raise SnapshotError("snapshot is not for the stored block at its height")
        if following is None:
            raise SnapshotError("no stored block commits to the snapshot's root yet")
        try:
            self.chain_state.validate_block(following, check_last_commit=False)
        except DchatError as exc:
            raise SnapshotError(f"the next stored block does not extend it: {exc}") from None


def _items(raw: list[Any]) -> dict[bytes, bytes]:
    items: dict[bytes, bytes] = {}
    previous: bytes | None = None
    for entry in raw:
        if not (
            isinstance(entry, list)
            and len(entry) == 2
            and isinstance(entry[0], bytes)
            and isinstance(entry[1], bytes)
        ):
            raise SnapshotError("a snapshot entry is not a [key, value] pair of bytes")
        key, value = entry
        if previous is not None and key <= previous:
            raise SnapshotError("snapshot keys are unsorted or repeated")
        previous = key
        items[key] = value
    return items
