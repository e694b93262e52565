"""What a validator node decides around its driver, sans-IO: start-up, snapshots, slashing, status.

Theory of operation
-------------------
:class:`~dchat_chain.lowlevel.ValidatorDriver` runs consensus; a validator
*node* has a few more decisions to make, and they live here so that the node's
trio shell only stores, sends, schedules and logs:

* *Start-up.* After the shell replayed the stored blocks (``replay_store``)
  and read the stored checkpoint, :meth:`ValidatorBook.resume` builds the
  driver with the node's engine limits (:data:`NODE_ENGINE_CONFIG`: a proposal
  must fit one link message).
* *Snapshots.* Every ``snapshot_interval`` blocks the state after a block is
  worth writing as a :class:`~dchat_chain.lowlevel.StateSnapshot`.
  :meth:`ValidatorBook.snapshot_due` says when, and takes it: only while the
  engine and the application are both just past that block (the engine may
  already have executed a later one in the same call; then the next block is
  the moment), and only one at a time (the shell writes it in the background
  and calls :meth:`ValidatorBook.snapshot_written`). A snapshot after block H
  is handed out only once a later block is stored: at start-up a snapshot is
  used only if a stored header above it commits to its state, so one written
  before that header could be useless after a crash.
* *Evidence.* A double sign is kept; on the currency chain a ``slash``
  transaction signed by this validator's account enters the mempool (the chat
  chain holds no stake, so there its evidence is only counted).
* *Relay probes.* On the currency chain the node's prober (dchat-network's
  ``run_prober``) asks :meth:`ValidatorBook.probe_position` where the chain is
  in its reward epoch and hands the epoch's scores to
  :meth:`ValidatorBook.file_uptime`, which submits this validator's signed
  ``uptime_report`` and a ``slash`` with :class:`RelayFaultEvidence` for every
  relay fault the chain has recorded and not yet punished.
* *Answers.* A client's submission result and the ``/v1/chain/status``
  document are built here, field for field.
* *Peers.* :class:`PeerStats` keeps one outbound link's counters and its
  redial schedule: exponential backoff from :data:`BACKOFF_MIN_S` to
  :data:`BACKOFF_MAX_S`, reset by a successful dial.

Nothing here reads a clock or touches a socket or a file.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError

from ._block_merkle import tx_hash
from ._consensus_types import Checkpoint, ConsensusConfig
from ._currency import CurrencyChainApp
from ._light_serve import certified_height
from ._relay_faults import pending_faults
from ._snapshot import StateSnapshot
from ._tx import Transaction
from ._validator_driver import ValidatorDriver

if TYPE_CHECKING:
    from collections.abc import Iterable

    from dchat_crypto import BlsSecretKey, SigningKey

    from ._block_chain import ChainState
    from ._block_commit import CommitCertificate
    from ._evidence import DuplicateVoteEvidence
    from ._indexed_app import IndexedApp
    from ._relay_faults import RelayFaultEvidence

__all__ = (
    "BACKOFF_MAX_S",
    "BACKOFF_MIN_S",
    "NODE_ENGINE_CONFIG",
    "PeerStats",
    "ValidatorBook",
    "slash_tx",
)

NODE_ENGINE_CONFIG: Final = ConsensusConfig(max_block_bytes=768 << 10)  # fits a link message
BACKOFF_MIN_S: Final = 0.2
BACKOFF_MAX_S: Final = 5.0


class PeerStats:
    """One outbound peer link's state, counters and redial schedule.

    Args:
        node_id: The peer's node id, as the status document shows it.
    """

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.connected = False
        self.dropped = 0  # messages dropped because the link's queue was full
        self.connects = 0  # successful dials
        self.dial_failures: Counter[str] = Counter()  # failed dials, by error class
        self._backoff = BACKOFF_MIN_S

    def dial_failed(self, kind: str = "DchatError") -> float:
        """A dial failed (``kind``: the error's class): seconds to wait before the next one.

        The wait doubles with each failure in a row, up to :data:`BACKOFF_MAX_S`.
        """
        self.dial_failures[kind] += 1
        delay = self._backoff
        self._backoff = min(delay * 2, BACKOFF_MAX_S)
        return delay

    def dialled(self) -> None:
        """A dial succeeded: count it and start the backoff over."""
        self._backoff = BACKOFF_MIN_S
        self.connects += 1

    def status(self) -> dict[str, Any]:
        """The peer's entry in the status document."""
        return {"node_id": self.node_id, "connected": self.connected, "dropped": self.dropped}


def slash_tx(
    app: IndexedApp, account: SigningKey, evidence: DuplicateVoteEvidence | RelayFaultEvidence
) -> bytes | None:
    """A ``slash`` transaction for ``evidence``, signed by ``account`` (None on the chat chain)."""
    return _currency_tx(app, account, "slash", {"evidence": evidence.to_bytes()})


def _currency_tx(
    app: IndexedApp, account: SigningKey, kind: str, body: dict[str, Any]
) -> bytes | None:
    """A currency-chain transaction from ``account`` with its next nonce (None elsewhere)."""
    if not isinstance(app.inner, CurrencyChainApp):
        return None  # only the currency chain holds stake and pays relays
    owner = account.public_key.to_bytes()
    tx = Transaction.create(
        account,
        chain_id=app.chain_id,
        nonce=app.mempool.next_nonce(owner, app.inner.account(owner).nonce),
        fee=int(app.inner.params()["min_fee"]),
        kind=kind,
        body=body,
    )
    return tx.raw


class ValidatorBook:
    """A validator node's decisions around its driver (see the module doc).

    Args:
        app: The chain's application (mempool included).
        account: This validator's account key (signs slash transactions).
        snapshot_interval: Blocks between state snapshots (0: none).
    """

    def __init__(self, app: IndexedApp, account: SigningKey, snapshot_interval: int) -> None:
        self.app, self._account, self._every = app, account, snapshot_interval
        self.evidence: list[DuplicateVoteEvidence] = []
        self.snapshot_height = 0  # the height of the last snapshot taken or loaded
        self._snapshotting = False
        self._held: StateSnapshot | None = None  # taken, waiting for a stored block above it
        self._driver: ValidatorDriver | None = None

    @property
    def driver(self) -> ValidatorDriver:
        """The driver (after :meth:`resume`)."""
        assert self._driver is not None, "validator not started"
        return self._driver

    def resume(
        self,
        state: ChainState,
        last_commit: CommitCertificate | None,
        checkpoint: bytes | None,
        key: BlsSecretKey,
        block_interval_ms: int,
    ) -> ValidatorDriver:
        """The driver resuming from the replayed ``state`` and the stored ``checkpoint``.

        Raises:
            ChainStateError: The stored checkpoint is corrupt.
        """
        self._driver = ValidatorDriver(
            state=state,
            app=self.app,
            mempool=self.app.mempool,  # after replay: a loaded snapshot replaces it
            key=key,
            config=NODE_ENGINE_CONFIG,
            last_commit=last_commit,
            checkpoint=None if checkpoint is None else Checkpoint.from_bytes(checkpoint),
            block_interval_ms=block_interval_ms,
        )
        self.snapshot_height = state.height - 1
        return self._driver

    def snapshot_due(self, height: int, state: ChainState) -> StateSnapshot | None:
        """The snapshot to write now, if any (block ``height`` was just stored).

        When one is due after ``height`` it is taken now (``state``: the
        engine's) and returned by the call for a later stored block.
        """
        held = self._held
        if held is not None:
            if height <= held.height:
                return None
            self._held = None
            return held
        every = self._every
        due = every and height // every > self.snapshot_height // every
        current = state.height == height + 1 and self.app.inner.height == height
        if not due or not current or self._snapshotting:
            return None
        self.snapshot_height, self._snapshotting = height, True
        self._held = StateSnapshot.take(state, self.app.inner.state.committed_items())
        return None

    def snapshot_written(self) -> None:
        """The snapshot :meth:`snapshot_due` gave is written (or failed): another may follow."""
        self._snapshotting = False

    def on_evidence(self, evidence: DuplicateVoteEvidence) -> DchatError | None:
        """Keep ``evidence`` and submit a slash for it; the mempool's refusal, if any."""
        self.evidence.append(evidence)
        tx = slash_tx(self.app, self._account, evidence)
        if tx is None:
            return None
        try:
            self.driver.submit(tx)
        except DchatError as exc:
            return exc
        return None

    def probe_position(self) -> tuple[int, int, int] | None:
        """Where the next block is in its reward epoch: (epoch, blocks past, epoch length).

        None on the chat chain or before the driver runs (nothing to report).
        """
        inner = self.app.inner
        if not isinstance(inner, CurrencyChainApp) or self._driver is None:
            return None
        every = int(inner.params()["epoch_blocks"])
        height = self._driver.engine.height
        return height // every, height % every, every

    def file_uptime(self, epoch: int, scores: Iterable[tuple[bytes, int, int]]) -> list[DchatError]:
        """Submit this validator's ``uptime_report`` for ``epoch`` and pending relay slashes.

        ``scores``: (relay account, score, proven deliveries) rows, sorted by account.

        Returns the mempool's refusals (e.g. the report of an epoch already past).
        """
        body = {"epoch": epoch, "scores": [list(row) for row in scores]}
        txs = [_currency_tx(self.app, self._account, "uptime_report", body)]
        for evidence in pending_faults(self.app.inner.state):
            txs.append(slash_tx(self.app, self._account, evidence))
        refused = []
        for tx in txs:
            try:
                if tx is not None:
                    self.driver.submit(tx)
            except DchatError as exc:
                refused.append(exc)
        return refused

    def submit(self, tx: bytes) -> dict[str, Any]:
        """Admit a client's transaction; its entry in the submission answer."""
        result: dict[str, Any] = {"hash": tx_hash(tx).hex(), "accepted": True}
        try:
            self.driver.submit(tx)
        except DchatError as exc:
            result.update(accepted=False, error=type(exc).__name__, message=str(exc))
        return result

    def status(self, peers: Iterable[PeerStats], stored_height: int) -> dict[str, Any]:
        """The ``/v1/chain/status`` document (``stored_height``: the block store's height)."""
        engine = self.driver.engine
        state = engine.state
        return {
            "chain_id": state.chain_id,
            "app": self.app.kind,
            "height": state.height - 1,
            "last_block_hash": state.last_block_hash.hex(),
            "app_hash": state.app_hash.hex(),
            "round": engine.round,
            "step": engine.step.name.lower(),
            "validators": [
                {
                    "id": v.validator_id.hex(),
                    "account": v.signing_key.to_bytes().hex(),
                    "power": v.power,
                }
                for v in state.validators.validators
            ],
            "mempool": len(self.app.mempool),
            "peers": [p.status() for p in peers],
            "evidence": len(self.evidence),
            "rejected": self.driver.rejected,
            "certified_height": certified_height(self.app, stored_height),
        }
