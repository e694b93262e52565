"""Block headers and blocks.

A block's hash is SHA-256 of its header's canonical encoding; the header
commits to everything else in the block (the transactions through
``txs_root``, the previous block's certificate through ``last_commit_hash``),
so a commit certificate over the hash fixes the whole block.

``app_hash`` is the application state *after the previous block* (Tendermint
style): a block is proposed before it is executed, so it can only commit to
what is already agreed. ``validators_hash`` is the set that signs this block and
``next_validators_hash`` the set for the next height; validator changes made
by block ``h`` take effect at ``h + 2``, so both are known when proposing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from dchat_core import DchatError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._block_commit import HASH_SIZE, MAX_HEIGHT, MAX_ROUND, CommitCertificate
from ._block_merkle import txs_root
from ._errors import InvalidBlockError
from ._validators import MAX_ID_SIZE

__all__ = ("MAX_BLOCK_SIZE", "MAX_BLOCK_TXS", "ZERO_HASH", "Block", "BlockHeader")

ZERO_HASH: Final = bytes(HASH_SIZE)
MAX_BLOCK_TXS: Final = 10_000
MAX_TX_SIZE: Final = 64 * 1024
MAX_BLOCK_SIZE: Final = 4 * 1024 * 1024
MAX_APP_HASH: Final = 64
MAX_TIME_MS: Final = 1 << 53
_LIMITS: Final = DecodeLimits(max_size=MAX_BLOCK_SIZE + 4096, max_depth=4, max_items=12_000)
_HEADER_FIELDS: Final = frozenset(
    {"chain", "h", "r", "t", "prev", "txs", "app", "vals", "next", "prop", "lc"}
)


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """The signed summary of a block (see the module docstring for each root)."""

    chain_id: str
    height: int
    round: int  # the round the block was first proposed in (its proposer's round)
    time_ms: int
    prev_block_hash: bytes
    txs_root: bytes
    app_hash: bytes
    validators_hash: bytes
    next_validators_hash: bytes
    proposer_id: bytes
    last_commit_hash: bytes

    def to_obj(self) -> dict[str, Any]:
        """The canonical map of this header."""
        return {
            "chain": self.chain_id,
            "h": self.height,
            "r": self.round,
            "t": self.time_ms,
            "prev": self.prev_block_hash,
            "txs": self.txs_root,
            "app": self.app_hash,
            "vals": self.validators_hash,
            "next": self.next_validators_hash,
            "prop": self.proposer_id,
            "lc": self.last_commit_hash,
        }

    def hash(self) -> bytes:
        """The block hash: SHA-256 of the canonical header."""
        return _header_hash(self)

    @classmethod
    def from_obj(cls, obj: Any) -> BlockHeader:
        """Decode a header map.

        Raises:
            InvalidBlockError: The map is malformed or a field is out of range.
        """
        try:
            f = Fields(obj, "header", _HEADER_FIELDS)
            return cls(
                chain_id=f.get_str("chain", max_len=64),
                height=f.get_int("h", lo=1, hi=MAX_HEIGHT),
                round=f.get_int("r", hi=MAX_ROUND),
                time_ms=f.get_int("t", hi=MAX_TIME_MS),
                prev_block_hash=f.get_bytes("prev", size=HASH_SIZE),
                txs_root=f.get_bytes("txs", size=HASH_SIZE),
                app_hash=f.get_bytes("app", max_size=MAX_APP_HASH),
                validators_hash=f.get_bytes("vals", size=HASH_SIZE),
                next_validators_hash=f.get_bytes("next", size=HASH_SIZE),
                proposer_id=f.get_bytes("prop", max_size=MAX_ID_SIZE),
                last_commit_hash=f.get_bytes("lc", size=HASH_SIZE),
            )
        except DchatError as exc:
            raise InvalidBlockError(f"malformed header: {exc}") from None


@lru_cache(maxsize=1024)
def _header_hash(header: BlockHeader) -> bytes:
    # Hashing is on every hot path (votes, validity caches, sync); headers are
    # immutable, so a small cache keyed by the header itself is safe.
    return hashlib.sha256(canonical_encode(header.to_obj())).digest()


@dataclass(frozen=True, slots=True)
class Block:
    """A header, its transactions and the certificate of the previous block."""

    header: BlockHeader
    txs: tuple[bytes, ...]
    last_commit: CommitCertificate | None

    def hash(self) -> bytes:
        """The block hash (the header's)."""
        return self.header.hash()

    @property
    def height(self) -> int:
        """The block's height."""
        return self.header.height

    def check_structure(self) -> None:
        """Check what the block says about itself: roots, hashes and sizes.

        Raises:
            InvalidBlockError: A root or link does not match the contents.
        """
        header = self.header
        if len(self.txs) > MAX_BLOCK_TXS or any(len(tx) > MAX_TX_SIZE for tx in self.txs):
            raise InvalidBlockError("too many or too large transactions")
        if header.txs_root != txs_root(self.txs):
            raise InvalidBlockError("txs_root does not match the transactions")
        if self.last_commit is None:
            if header.height != 1 or header.last_commit_hash != ZERO_HASH:
                raise InvalidBlockError("a block above height 1 needs the previous commit")
            return
        commit = self.last_commit
        if header.last_commit_hash != commit.hash():
            raise InvalidBlockError("last_commit_hash does not match the certificate")
        if commit.height != header.height - 1 or commit.block_hash != header.prev_block_hash:
            raise InvalidBlockError("last commit is not for the previous block")

    def to_obj(self) -> dict[str, Any]:
        """The canonical map of this block."""
        commit = None if self.last_commit is None else self.last_commit.to_obj()
        return {"header": self.header.to_obj(), "txs": list(self.txs), "commit": commit}

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return canonical_encode(self.to_obj())

    @classmethod
    def from_obj(cls, obj: Any) -> Block:
        """Decode a block map (structure only; :meth:`check_structure` checks the roots).

        Raises:
            InvalidBlockError: The map is malformed.
        """
        try:
            f = Fields(obj, "block", frozenset({"header", "txs", "commit"}))
            header = BlockHeader.from_obj(f.raw("header"))
            txs = f.get_list("txs", max_len=MAX_BLOCK_TXS)
            raw_commit = f.raw("commit")
        except DchatError as exc:
            raise InvalidBlockError(f"malformed block: {exc}") from None
        if not all(isinstance(tx, bytes) for tx in txs):
            raise InvalidBlockError("malformed block: transactions must be bytes")
        try:
            commit = None if raw_commit is None else CommitCertificate.from_obj(raw_commit)
        except DchatError as exc:
            raise InvalidBlockError(f"malformed block: {exc}") from None
        return cls(header=header, txs=tuple(txs), last_commit=commit)

    @classmethod
    def from_bytes(cls, data: bytes) -> Block:
        """Decode a block from untrusted bytes (bounded, strict).

        Raises:
            InvalidBlockError: The bytes are not a well-formed block.
        """
        try:
            obj = canonical_decode(data, _LIMITS)
        except DchatError as exc:
            raise InvalidBlockError(f"malformed block: {exc}") from None
        return cls.from_obj(obj)
