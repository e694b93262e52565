"""A chain application as a validator runs it: indexed, mempool-aware, replayable.

:class:`IndexedApp` wraps the application the genesis names (its ``"kind"``:
:class:`CurrencyChainApp` or :class:`ChatChainApp`) for the engine.
On every ``commit`` (a block decided by consensus, fetched by block sync or
replayed from the store: all three go through ``execute_block``) it records
each transaction's result by hash and drops the block's transactions from the
mempool *before the call returns*. That order matters: the engine starts the
next height, and may reap the mempool for a proposal, inside the same call that
committed, so a later hook would let a committed transaction be proposed twice.

On the currency chain, the slashing verifier reads the offender's BLS key from
the committed state, so every validator judges evidence the same way (see
``docs/rationale.md``).

:func:`replay_store` rebuilds the state after a restart from a
:class:`DurableBlockStore`: from the stored state snapshot when one verifies
against the stored blocks (then only the blocks above it run), otherwise from
genesis. Results of transactions in blocks below the snapshot are not
re-indexed (their blocks are not re-executed). Whether the snapshot was used
is logged (``dchat.chain``), since a refused one costs start-up time only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import DchatError, DecodeLimits, canonical_decode
from dchat_crypto import BlsPublicKey

from ._block_chain import ChainState, execute_block
from ._block_merkle import tx_hash
from ._chat import ChatChainApp
from ._currency import CurrencyChainApp
from ._errors import ChainArgumentError, InvalidEvidenceError
from ._evidence import DuplicateVoteEvidence
from ._mempool import Mempool
from ._snapshot import SnapshotError, StateSnapshot
from ._state import StateStore
from ._validators import validator_set_of

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ._app import AppQueryResult, BlockContext, BlockResult, TxMeta
    from ._block_commit import CommitCertificate
    from ._block_log import DurableBlockStore
    from ._merkle import MerkleTree

__all__ = (
    "IndexedApp",
    "TxStatus",
    "genesis_kind",
    "load_snapshot",
    "replay_store",
)

_log = logging.getLogger("dchat.chain")
MAX_INDEX: Final = 1 << 20  # remembered transaction results (oldest forgotten first)
GENESIS_PEEK: Final = DecodeLimits(max_size=64 << 20, max_depth=8, max_items=1 << 22)
MAX_PER_SENDER: Final = 64  # a wallet may queue this many transactions before a block
KEEP_TREES: Final = 16  # committed state trees kept for certified queries (they share nodes)


@dataclass(frozen=True, slots=True)
class TxStatus:
    """Where a committed transaction landed and how it fared."""

    height: int
    index: int
    code: int
    log: str


def genesis_kind(genesis: bytes) -> str:
    """The application a genesis document is for: ``"currency"`` or ``"chat"``.

    Raises:
        ChainArgumentError: Not a genesis document of a known kind.
    """
    try:
        kind = canonical_decode(genesis, GENESIS_PEEK).get("kind")
    except (DchatError, AttributeError):
        raise ChainArgumentError("not a genesis document") from None
    if kind not in ("currency", "chat"):
        raise ChainArgumentError("the genesis names no known chain application")
    return str(kind)


class IndexedApp:
    """An :class:`Application` that indexes results and updates a mempool.

    Args:
        genesis: The chain's canonical genesis document (currency or chat).
    """

    def __init__(self, genesis: bytes) -> None:
        self.kind = genesis_kind(genesis)
        self.inner: CurrencyChainApp | ChatChainApp
        if self.kind == "chat":
            self.inner = ChatChainApp.from_genesis(genesis)
        else:
            self.inner = CurrencyChainApp.from_genesis(genesis, self._verify_evidence)
        self.mempool = self._mempool()
        self.index: dict[bytes, TxStatus] = {}
        self._applied: tuple[int, Sequence[bytes], BlockResult] | None = None
        # The committed state tree after each recent height: header h + 1 carries
        # the root of the state after block h, so a query a light client can check
        # is answered from the tree one block behind the tip (see certified_query).
        self.trees: dict[int, MerkleTree] = {}
        self._keep_tree()

    def _mempool(self) -> Mempool:
        return Mempool(self.inner, max_per_sender=MAX_PER_SENDER, max_gap=MAX_PER_SENDER)

    def _keep_tree(self) -> None:
        self.trees[self.inner.height] = self.inner.state.committed_tree
        while len(self.trees) > KEEP_TREES:
            del self.trees[next(iter(self.trees))]

    @property
    def chain_id(self) -> str:
        """The chain id from the genesis."""
        return self.inner.chain_id

    def restore(self, items: Mapping[bytes, bytes]) -> None:
        """Replace the (fresh) state with verified snapshot entries; empties the mempool.

        Raises:
            SnapshotError: The entries are not a state of this chain.
        """
        inner: CurrencyChainApp | ChatChainApp
        try:
            if self.kind == "chat":
                inner = ChatChainApp(StateStore(items))
            else:
                inner = CurrencyChainApp(StateStore(items), self._verify_evidence)
        except DchatError as exc:
            raise SnapshotError(f"snapshot is not a {self.kind} chain state: {exc}") from None
        if inner.chain_id != self.chain_id:
            raise SnapshotError("snapshot is of another chain")
        self.inner = inner
        self.mempool = self._mempool()
        self._applied = None
        self.trees = {}
        self._keep_tree()

    def genesis_state(self) -> ChainState:
        """The chain state before block 1, from the genesis validators."""
        validators = validator_set_of(self.inner.initial_validators())
        return ChainState.genesis(self.chain_id, validators, self.inner.app_hash, 0)

    # -- Application ----------------------------------------------------------------

    def tx_meta(self, tx: bytes) -> TxMeta:
        """Delegated."""
        return self.inner.tx_meta(tx)

    def check_tx(self, tx: bytes) -> None:
        """Delegated."""
        self.inner.check_tx(tx)

    def apply_block(self, context: BlockContext, txs: Sequence[bytes]) -> BlockResult:
        """Delegated; the result is kept for :meth:`commit`."""
        result = self.inner.apply_block(context, txs)
        self._applied = (context.height, txs, result)
        return result

    def commit(self) -> bytes:
        """Commit, then index the block's results and update the mempool."""
        app_hash = self.inner.commit()
        if self._applied is not None:
            height, txs, result = self._applied
            self._applied = None
            for i, (raw, res) in enumerate(zip(txs, result.tx_results, strict=True)):
                if len(self.index) >= MAX_INDEX:
                    del self.index[next(iter(self.index))]
                self.index.setdefault(tx_hash(raw), TxStatus(height, i, res.code, res.log))
            self.mempool.update(txs)
        self._keep_tree()
        return app_hash

    def query(self, key: bytes) -> AppQueryResult:
        """Delegated."""
        return self.inner.query(key)

    # -- slashing -----------------------------------------------------------------

    def _verify_evidence(self, evidence: bytes) -> bytes:
        """Check double-sign evidence against the offender's registered BLS key."""
        try:
            parsed = DuplicateVoteEvidence.from_bytes(evidence)
        except DchatError as exc:
            raise InvalidEvidenceError(f"malformed evidence: {exc}") from None
        operator = self.inner.state.get(b"valid/" + parsed.validator_id)
        record = None
        if operator is not None:
            record = self.inner.state.get(b"val/" + canonical_decode(operator))
        if record is None:
            raise InvalidEvidenceError("evidence names no registered validator")
        bls = BlsPublicKey.from_bytes(canonical_decode(record)["bls"])
        parsed.verify_with_key(bls, self.chain_id)
        return parsed.validator_id


def replay_store(
    store: DurableBlockStore, app: IndexedApp, batch: int = 200
) -> tuple[ChainState, CommitCertificate | None]:
    """Rebuild ``app`` (fresh) from the store: snapshot, then the blocks above it.

    Blocks while the store does; run it in a thread. The blocks were authenticated before they were
    stored, so no certificate is checked again; each is still validated against
    the state it extends. A snapshot that does not verify (:class:`SnapshotError`)
    is logged and ignored: every block is replayed from genesis.

    Returns:
        The chain state after the last stored block, and that block's certificate.
    """
    state, last = app.genesis_state(), None
    loaded = load_snapshot(store, app)
    if loaded is not None:
        state, last = loaded
    while state.height <= store.height():
        rows = store.range(state.height, batch)
        if not rows:
            break
        for block, certificate in rows:
            state.validate_block(block, check_last_commit=False)
            state, _ = execute_block(state, app, block)
            last = certificate
    return state, last


def load_snapshot(
    store: DurableBlockStore, app: IndexedApp
) -> tuple[ChainState, CommitCertificate] | None:
    """Restore ``app`` from the stored snapshot if it verifies; its state and certificate."""
    raw = store.load_snapshot()
    if raw is None:
        return None
    try:
        snapshot = StateSnapshot.from_bytes(raw)
        rows = store.range(snapshot.height, 2)  # block h and, if stored, h + 1
        snapshot.verify(rows[0][0] if rows else None, rows[1][0] if len(rows) > 1 else None)
        app.restore(snapshot.items)
    except SnapshotError as exc:
        _log.warning("state snapshot not used, replaying every block: %s", exc)
        return None
    _log.info("state snapshot at height %d loaded", snapshot.height)
    return snapshot.chain_state, rows[0][1]
