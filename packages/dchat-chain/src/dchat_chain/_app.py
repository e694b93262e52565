"""The boundary between the consensus engine and an application state machine.

The engine orders opaque transactions into blocks and reaches agreement on
them; the application (chat chain, currency chain) gives those bytes meaning.
This module is the whole contract between the two, in the spirit of ABCI:

* ``tx_meta`` and ``check_tx`` let the mempool admit, order and deduplicate
  transactions without executing them;
* ``apply_block`` executes a decided block deterministically and returns the new
  state root (``app_hash``), per-transaction results and validator-set changes;
* ``commit`` makes the applied block's state durable; ``query`` answers reads
  with a Merkle proof against the committed root.

Determinism rule: ``apply_block`` may depend only on the block (its height,
time, proposer and transactions) and the state after the previous block, never
on wall clocks, randomness or local configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = (
    "AppQueryResult",
    "Application",
    "BlockContext",
    "BlockResult",
    "TxMeta",
    "TxResult",
    "ValidatorUpdate",
)


@dataclass(frozen=True, slots=True)
class TxMeta:
    """What the mempool needs to know about a transaction without executing it."""

    tx_hash: bytes  # 32 bytes, the transaction's id
    sender: bytes  # account key or id; nonces are ordered per sender
    nonce: int
    fee: int  # priority: higher fee first among ready transactions
    size: int


@dataclass(frozen=True, slots=True)
class BlockContext:
    """The agreed facts about a block that the application may use."""

    chain_id: str
    height: int
    time_ms: int  # the block time chosen by the proposer, validated by the engine
    proposer: bytes  # the proposer's validator id


@dataclass(frozen=True, slots=True)
class TxResult:
    """Outcome of one transaction in a block (a failed tx still pays its fee)."""

    code: int  # 0 = success
    log: str = ""


@dataclass(frozen=True, slots=True)
class ValidatorUpdate:
    """A change of a validator's voting power (0 removes it)."""

    validator_id: bytes
    bls_public_key: bytes  # 48-byte compressed BLS12-381 G1
    power: int
    # Required when the validator is new or changes its BLS key (empty otherwise):
    # its 32-byte Ed25519 identity key and the 96-byte BLS proof of possession,
    # which the application must have checked when it accepted the stake.
    signing_key: bytes = b""
    proof_of_possession: bytes = b""


@dataclass(frozen=True, slots=True)
class BlockResult:
    """What executing a block produced."""

    app_hash: bytes  # Merkle root of the state after the block
    tx_results: tuple[TxResult, ...]
    validator_updates: tuple[ValidatorUpdate, ...] = ()


@dataclass(frozen=True, slots=True)
class AppQueryResult:
    """A committed value (or proof of absence) with a Merkle proof against ``app_hash``."""

    key: bytes
    value: bytes | None
    proof: bytes  # canonical encoding of the Merkle (non-)inclusion proof
    height: int
    app_hash: bytes


class Application(Protocol):
    """An application state machine run by the consensus engine."""

    def tx_meta(self, tx: bytes) -> TxMeta:
        """Parse ``tx`` just enough for the mempool; raise a typed error if malformed."""
        ...

    def check_tx(self, tx: bytes) -> None:
        """Validate ``tx`` against the committed state (signature, nonce, balance)."""
        ...

    def apply_block(self, context: BlockContext, txs: Sequence[bytes]) -> BlockResult:
        """Execute a decided block on top of the committed state."""
        ...

    def commit(self) -> bytes:
        """Make the last applied block durable; returns its ``app_hash``."""
        ...

    def query(self, key: bytes) -> AppQueryResult:
        """Read a committed value with its Merkle proof."""
        ...
