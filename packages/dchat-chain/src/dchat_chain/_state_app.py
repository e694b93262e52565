"""The part of the :class:`Application` contract both chains share.

Theory of operation. A transaction passes two gates:

1. *Admission* (decode, chain id, signature, nonce, minimum fee, fee paid from
   the sender's account). Failing it changes nothing, not even the nonce: the
   proposer included garbage and the result code says so.
2. *Execution* of its kind's handler in its own state layer. Failing it undoes
   the handler's writes, but the fee stays paid and the nonce consumed, so a
   sender cannot make the network execute failing work for free.

``check_tx`` runs both gates against the committed state in a throwaway layer.
A signature that verified there is remembered (by transaction hash, which
covers key, message and signature) so ``apply_block`` does not verify it twice:
Ed25519 verification is the largest per-transaction cost, and a validator
usually saw a transaction in its mempool before it sees it in a block.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Final

from dchat_core import DchatError, DecodeError

from ._app import AppQueryResult, BlockContext, BlockResult, TxMeta, TxResult, ValidatorUpdate
from ._errors import ChainArgumentError, ChainStateError, InvalidTransactionError
from ._state_records import (
    Account,
    account_key,
    burn,
    get_record,
    load_account,
    put_record,
    store_account,
)
from ._tx import Transaction, tx_hash
from ._tx_errors import (
    FeeTooLowError,
    FutureNonceError,
    InsufficientFundsError,
    MalformedTransactionError,
    RejectedTransactionError,
    ReplayedNonceError,
    result_code,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from ._state import StateStore

__all__ = ("META_BLOCK", "META_CHAIN", "ChainApp")

META_CHAIN: Final = b"meta/chain"
META_BLOCK: Final = b"meta/block"
VERIFIED_CACHE_SIZE: Final = 1 << 15


class _TransactionCache:
    """Bounded map: transaction hash -> its decoded form, oldest evicted first.

    Keyed by the hash of the full encoding (key, message and signature), so a
    hit means these exact bytes were decoded before. Two instances are kept:
    transactions merely decoded (for ``tx_meta``) and transactions whose chain
    and signature were checked (for admission and execution).
    """

    __slots__ = ("_limit", "_txs")

    def __init__(self, limit: int) -> None:
        self._txs: dict[bytes, Transaction] = {}
        self._limit = limit

    def get(self, digest: bytes) -> Transaction | None:
        return self._txs.get(digest)

    def add(self, digest: bytes, tx: Transaction) -> None:
        if len(self._txs) >= self._limit:
            del self._txs[next(iter(self._txs))]
        self._txs[digest] = tx


class ChainApp(ABC):
    """Base of the chat and currency state machines (implements :class:`Application`).

    Subclasses set :attr:`KIND` and provide :meth:`_handlers`, and may override
    the block hooks and :meth:`_collect_fee`.
    """

    KIND: ClassVar[str] = ""

    def __init__(self, state: StateStore) -> None:
        meta = get_record(state, META_CHAIN)
        if not isinstance(meta, dict) or meta.get("kind") != self.KIND:
            raise ChainArgumentError(f"state is not a {self.KIND} chain")
        self._state = state
        self.chain_id: str = meta["chain"]
        self._params: dict[str, Any] = meta["params"]
        block = get_record(state, META_BLOCK) or {"h": 0, "t": 0}
        self._height: int = block["h"]
        self._time_ms: int = block["t"]
        self._pending_height: int | None = None
        self._block_fees = 0
        self._verified = _TransactionCache(VERIFIED_CACHE_SIZE)
        self._decoded = _TransactionCache(VERIFIED_CACHE_SIZE)
        self.last_changes: dict[bytes, bytes | None] = {}
        self._dispatch = self._handlers()

    # -- subclass hooks ------------------------------------------------------------

    @abstractmethod
    def _handlers(self) -> Mapping[str, Callable[[BlockContext, Transaction], None]]:
        """The transaction kinds this chain accepts, each with its handler."""

    def _begin_block(self, context: BlockContext) -> None:  # noqa: B027 - optional hook
        """Work due at the start of a block (maturities, epochs); nothing by default."""

    def _end_block(self, context: BlockContext) -> tuple[ValidatorUpdate, ...]:
        """Work due at the end of a block; returns validator-set changes."""
        return ()

    def _minimum_fee(self, tx: Transaction) -> int:
        """The least fee ``tx`` must pay (the chain's ``min_fee`` unless overridden)."""
        minimum: int = self._params["min_fee"]
        return minimum

    def _settle_fees(self, context: BlockContext, total: int) -> None:
        """Where the block's fees go; the base burns them all."""
        burn(self._state, total)

    # -- read access -----------------------------------------------------------------

    @property
    def height(self) -> int:
        """Height of the last committed block (0 = genesis)."""
        return self._height

    @property
    def app_hash(self) -> bytes:
        """Merkle root of the committed state."""
        return self._state.committed_root

    @property
    def state(self) -> StateStore:
        """The underlying state store (for persistence and tests)."""
        return self._state

    def account(self, owner: bytes) -> Account:
        """The committed account of ``owner``."""
        raw = self._state.committed_get(account_key(owner))
        return Account() if raw is None else Account.from_bytes(raw)

    # -- Application -------------------------------------------------------------

    def tx_meta(self, tx: bytes) -> TxMeta:
        """Decode enough of ``tx`` for the mempool (no signature check)."""
        digest = tx_hash(tx)
        decoded = self._verified.get(digest) or self._decode(digest, tx)
        return TxMeta(digest, decoded.sender, decoded.nonce, decoded.fee, len(tx))

    def check_tx(self, tx: bytes) -> None:
        """Admit and dry-run ``tx`` against the committed state; raise its typed error."""
        decoded = self._authenticate(tx)
        context = BlockContext(self.chain_id, self._height + 1, self._time_ms, b"")
        self._state.begin()
        try:
            self._admit(context, decoded)
            self._execute(context, decoded)
        finally:
            self._state.revert()

    def apply_block(self, context: BlockContext, txs: Sequence[bytes]) -> BlockResult:
        """Execute a decided block; replaces an applied but uncommitted one."""
        if context.chain_id != self.chain_id:
            raise ChainArgumentError("block is for another chain")
        if context.height != self._height + 1:
            raise ChainStateError(f"expected height {self._height + 1}, got {context.height}")
        self._state.rollback()
        self._state.begin()
        self._block_fees = 0
        self._begin_block(context)
        results = tuple(self._deliver(context, raw) for raw in txs)
        self._settle_fees(context, self._block_fees)
        updates = self._end_block(context)
        put_record(self._state, META_BLOCK, {"h": context.height, "t": context.time_ms})
        app_hash = self._state.seal()
        self._pending_height = context.height
        return BlockResult(app_hash, results, updates)

    def commit(self) -> bytes:
        """Make the applied block the committed state; returns its ``app_hash``."""
        if self._pending_height is None:
            raise ChainStateError("no applied block to commit")
        self.last_changes = self._state.commit()
        block = get_record(self._state, META_BLOCK)
        self._height, self._time_ms = block["h"], block["t"]
        self._pending_height = None
        return self._state.committed_root

    def query(self, key: bytes) -> AppQueryResult:
        """A committed value (or its absence) with a Merkle proof."""
        value, proof = self._state.prove(key)
        return AppQueryResult(key, value, proof.encode(), self._height, self.app_hash)

    # -- the two gates -----------------------------------------------------------

    def _authenticate(self, raw: bytes) -> Transaction:
        digest = tx_hash(raw)
        decoded = self._verified.get(digest)
        if decoded is None:
            decoded = self._decode(digest, raw)
            decoded.check_chain(self.chain_id)
            decoded.verify_signature()
            self._verified.add(digest, decoded)
        return decoded

    def _decode(self, digest: bytes, raw: bytes) -> Transaction:
        # A transaction is decoded for the mempool, gossip, a proposal's validity
        # check and the mempool update after its block: once is enough.
        decoded = self._decoded.get(digest)
        if decoded is None:
            decoded = Transaction.decode(raw)
            self._decoded.add(digest, decoded)
        return decoded

    def _admit(self, context: BlockContext, tx: Transaction) -> None:
        account = load_account(self._state, tx.sender)
        if tx.nonce < account.nonce:
            raise ReplayedNonceError(f"nonce {tx.nonce} already used", account.nonce)
        if tx.nonce > account.nonce:
            raise FutureNonceError(f"nonce {tx.nonce} skips {account.nonce}", account.nonce)
        if tx.fee < self._minimum_fee(tx):
            raise FeeTooLowError(f"fee below the minimum {self._minimum_fee(tx)}")
        if tx.fee > account.balance:
            raise InsufficientFundsError("balance cannot cover the fee")
        store_account(self._state, tx.sender, Account(account.balance - tx.fee, tx.nonce + 1))
        # Fees are summed in memory and paid out once per block (see _settle_fees):
        # one write per block instead of one per transaction.
        self._block_fees += tx.fee

    def _execute(self, context: BlockContext, tx: Transaction) -> None:
        handler = self._dispatch.get(tx.kind)
        if handler is None:
            raise MalformedTransactionError(f"unknown transaction kind {tx.kind!r}")
        try:
            handler(context, tx)
        except InvalidTransactionError:
            raise
        except DecodeError as exc:  # a body field of the wrong type or size
            raise MalformedTransactionError(str(exc)) from None
        except DchatError as exc:  # e.g. key bytes in the body that are no valid key
            raise RejectedTransactionError(f"{type(exc).__name__}: {exc}") from None

    def _deliver(self, context: BlockContext, raw: bytes) -> TxResult:
        try:
            tx = self._authenticate(raw)
            self._in_layer(lambda: self._admit(context, tx))
            self._in_layer(lambda: self._execute(context, tx))
        except InvalidTransactionError as exc:
            return TxResult(result_code(exc), str(exc))
        return TxResult(0)

    def _in_layer(self, step: Callable[[], None]) -> None:
        """Run ``step`` so that it changes the state completely or not at all."""
        self._state.begin()
        try:
            step()
        except BaseException:
            self._state.revert()
            raise
        self._state.accept()
