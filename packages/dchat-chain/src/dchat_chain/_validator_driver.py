"""The validator driver: everything a validator does around its consensus engine, sans-IO.

Theory of operation
-------------------
A :class:`ValidatorDriver` owns a :class:`~dchat_chain.ConsensusEngine`, the
mempool that feeds its proposals and the bookkeeping a validator needs around
it: timers, pacing, block sync, transaction gossip and the peer wire tags. It
does no I/O and reads no clock. A shell (the node's trio task, a simulator)
feeds it inputs with the current wall-clock time in milliseconds and carries
out the effects it returns, *in order*:

==================  =====================================================
input               method
==================  =====================================================
start               :meth:`start`
a consensus message :meth:`receive_consensus` (payload after the tag)
a sync response     :meth:`receive_sync` (payload after the tag)
the deadline        :meth:`tick` (when ``now_ms >= deadline``)
a client's tx       :meth:`submit`; a peer's gossip batch: :meth:`admit`
==================  =====================================================

==================  =====================================================
effect              the shell must
==================  =====================================================
``SaveCheckpoint``  write the checkpoint durably before acting on any later effect
``StoreBlock``      store the decided block and its certificate
``StoreSynced``     store blocks that block sync executed (one batch)
``SendToPeers``     send the bytes (tag included) to every peer
``RequestSync``     send the bytes to one connected peer, or call :meth:`sync_unsent`
``ReportEvidence``  act on a double-sign (submit a slashing transaction, log)
==================  =====================================================

Consensus timeouts are kept in a heap and reported as one :attr:`deadline`.
A checkpoint that a later one replaces before anything else leaves the process
is not reported (only the latest is kept, so writing it adds no durability).

*Pacing.* The engine starts the next height inside the call that decides a
block; waiting out ``block_interval_ms`` between decisions (Tendermint's
``timeout_commit``) is left to the driver. After a decision the rest of that
call's outputs are held until the interval since the previous decision has
passed (the hold ends at the deadline); consensus messages and sync responses
that arrive meanwhile queue, in order, and are handled when the hold ends.
Transactions are admitted at once. The hold is never longer than one interval,
so a wall clock stepped backwards cannot stall the validator.

*Block sync.* ``SyncNeeded`` from the engine becomes one ``RequestSync`` for
the blocks after ours, at most one per ``sync_retry_ms`` while unanswered. A
response is authenticated and executed by
:class:`~dchat_chain.lowlevel.BlockSyncClient`; the blocks it executed (a
prefix, if one in the middle fails) are reported for storage, the engine jumps
ahead with ``catch_up`` and, if the batch was not empty, the next batch is
requested.

*Commit latency.* :attr:`ValidatorDriver.commit_latency` (a
:class:`dchat_core.Histogram`) gets, at each decision, the time from the
height's start to it: the start is the previous decision, or the end of its
pacing hold, or the driver's start or the last block sync.
"""

from __future__ import annotations

import contextlib
import heapq
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import DchatError, Histogram, PeerError

from ._blockstore import replay
from ._consensus import ConsensusEngine
from ._consensus_types import (
    Broadcast,
    Checkpoint,
    ConsensusConfig,
    Decision,
    EvidenceFound,
    Persist,
    ScheduleTimeout,
    SyncNeeded,
)
from ._sync import BlockSyncClient, SyncRequest, SyncResponse
from ._validator_wire import MAX_GOSSIP_TXS, PeerTag, encode_peer_message, encode_txs

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dchat_crypto import BlsSecretKey

    from ._app import Application, TxMeta
    from ._block import Block
    from ._block_chain import ChainState
    from ._block_commit import CommitCertificate
    from ._blockstore import BlockStore
    from ._consensus_messages import ConsensusMessage
    from ._consensus_types import BlockSource, ConsensusOutput
    from ._consensus_votes import SignatureCache
    from ._evidence import DuplicateVoteEvidence
    from ._mempool import Mempool

__all__ = (
    "DriverEffect",
    "ReportEvidence",
    "RequestSync",
    "SaveCheckpoint",
    "SendToPeers",
    "StoreBlock",
    "StoreSynced",
    "ValidatorDriver",
    "resume_point",
    "store_effect",
)

HELD_INPUTS: Final = 2048  # inputs queued during a pacing hold (the oldest are dropped)


@dataclass(frozen=True, slots=True)
class SaveCheckpoint:
    """Write ``data`` (a :class:`~dchat_chain.Checkpoint`) durably before any later effect."""

    data: bytes


@dataclass(frozen=True, slots=True)
class StoreBlock:
    """A block was decided (and executed on the application): store it."""

    block: Block
    certificate: CommitCertificate


@dataclass(frozen=True, slots=True)
class StoreSynced:
    """Block sync executed these blocks on the application: store them (one batch)."""

    blocks: tuple[tuple[Block, CommitCertificate], ...]


@dataclass(frozen=True, slots=True)
class SendToPeers:
    """Send ``data`` (a whole link message) to every peer; ``message`` is what it carries."""

    data: bytes
    message: ConsensusMessage | None = None


@dataclass(frozen=True, slots=True)
class RequestSync:
    """Send ``data`` (a sync-request link message) to one connected peer."""

    data: bytes
    request: SyncRequest


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    """A validator double-signed."""

    evidence: DuplicateVoteEvidence


DriverEffect = (
    SaveCheckpoint | StoreBlock | StoreSynced | SendToPeers | RequestSync | ReportEvidence
)


def _superseded(outputs: Sequence[ConsensusOutput], i: int) -> bool:
    """True if a later checkpoint replaces ``outputs[i]`` before anything leaves the process."""
    for later in outputs[i + 1 :]:
        if isinstance(later, Persist):
            return True
        if not isinstance(later, ScheduleTimeout):
            return False
    return False


class ValidatorDriver:
    """A validator around a consensus engine: timers, pacing, sync, gossip (sans-IO).

    Args:
        state: The chain state to resume from (after replaying the stored blocks).
        app: The application the engine and block sync execute blocks on.
        mempool: Admitted transactions; proposals are reaped from it.
        key: This validator's BLS key.
        config: The engine's timeouts and limits.
        last_commit: The certificate of the last stored block.
        checkpoint: The stored consensus checkpoint, if any.
        signatures: A verified-signature cache to share between engines.
        block_source: Where proposals come from (default: the mempool).
        block_interval_ms: The least time between two decisions (0: no pacing).
        sync_batch: Blocks asked for per sync request.
        sync_retry_ms: How long an unanswered sync request blocks the next one.
        gossip: Queue admitted client transactions for :meth:`take_gossip`.
    """

    def __init__(
        self,
        *,
        state: ChainState,
        app: Application,
        mempool: Mempool,
        key: BlsSecretKey,
        config: ConsensusConfig | None = None,
        last_commit: CommitCertificate | None = None,
        checkpoint: Checkpoint | None = None,
        signatures: SignatureCache | None = None,
        block_source: BlockSource | None = None,
        block_interval_ms: int = 0,
        sync_batch: int = 100,
        sync_retry_ms: int = 5000,
        gossip: bool = True,
    ) -> None:
        self.app = app
        self.mempool = mempool
        self.engine = ConsensusEngine(
            state=state,
            app=app,
            block_source=block_source or self._reap,
            key=key,
            config=config or ConsensusConfig(),
            last_commit=last_commit,
            checkpoint=checkpoint,
            signatures=signatures,
        )
        self.block_interval_ms = block_interval_ms
        self.sync_batch = sync_batch
        self.sync_retry_ms = sync_retry_ms
        self.rejected = 0  # peer messages refused with a typed error
        self.dropped = 0  # inputs dropped from a full hold queue
        self._gossip_enabled = gossip
        self._gossip: list[bytes] = []
        self._timers: list[int] = []
        self._held: list[ConsensusOutput] | None = None
        self._hold_until = 0
        self._queued: deque[tuple[PeerTag, bytes]] = deque(maxlen=HELD_INPUTS)
        self._last_decision: int | None = None
        self._sync_until: int | None = None
        self.commit_latency = Histogram()
        """Seconds from a height's start (after pacing) to its decision, for metrics."""
        self._height_began: int | None = None

    def _reap(self, max_txs: int, max_bytes: int) -> list[bytes]:
        return self.mempool.reap(max_bytes, max_txs)

    # -- inputs ---------------------------------------------------------------------

    def start(self, now_ms: int) -> list[DriverEffect]:
        """Start (or resume) the engine."""
        self._height_began = now_ms
        return self._run(self.engine.start(now_ms), now_ms)

    @property
    def deadline(self) -> int | None:
        """When :meth:`tick` is next due (wall-clock ms), or None."""
        if self._held is not None:
            return self._hold_until
        return self._timers[0] if self._timers else None

    def wait_s(self, now_ms: int, idle: float = 1.0) -> float:
        """Seconds from ``now_ms`` until :attr:`deadline` (``idle`` when there is none)."""
        deadline = self.deadline
        return idle if deadline is None else max(0, deadline - now_ms) / 1000

    @property
    def holding(self) -> bool:
        """True while outputs wait out the block interval."""
        return self._held is not None

    def tick(self, now_ms: int) -> list[DriverEffect]:
        """End a due pacing hold, then fire the due timeouts."""
        effects: list[DriverEffect] = []
        if self._held is not None:
            if now_ms < self._hold_until:
                return effects
            held, self._held = self._held, None
            effects += self._run(held, now_ms)
            while self._queued and self._held is None:
                effects += self._input(*self._queued.popleft(), now_ms)
            if self._held is not None:
                return effects
        if self._timers and self._timers[0] <= now_ms:
            while self._timers and self._timers[0] <= now_ms:
                heapq.heappop(self._timers)
            effects += self._run(self.engine.tick(now_ms), now_ms)
        return effects

    def receive_consensus(self, payload: bytes, now_ms: int) -> list[DriverEffect]:
        """A peer's consensus message (the payload after the tag).

        Raises:
            PeerError: The message is malformed or invalid (the engine is
                unchanged; :attr:`rejected` counts it).
        """
        if self._held is not None:
            self._queue(PeerTag.CONSENSUS, payload)
            return []
        try:
            outputs = self.engine.receive(payload, now_ms)
        except PeerError:
            self.rejected += 1
            raise
        return self._run(outputs, now_ms)

    def receive_sync(self, payload: bytes, now_ms: int) -> list[DriverEffect]:
        """A peer's answer to our sync request (the payload after the tag).

        A response that does not decode is counted in :attr:`rejected`; one
        that fails part-way still reports the blocks executed before the fault.
        """
        if self._held is not None:
            self._queue(PeerTag.SYNC_RESPONSE, payload)
            return []
        self._sync_until = None
        try:
            response = SyncResponse.from_bytes(payload)
        except DchatError:
            self.rejected += 1
            return []
        state = self.engine.state
        client = BlockSyncClient(state, self.app, batch=self.sync_batch)
        # Stale (we moved on meanwhile) or bad part-way: keep what was executed.
        with contextlib.suppress(DchatError):
            client.receive(response)
        done = client.state.height - state.height
        if done <= 0 or client.last_commit is None:
            return []
        certs = [*(b.last_commit for b in response.blocks[1:done]), client.last_commit]
        pairs = tuple(
            (b, c) for b, c in zip(response.blocks[:done], certs, strict=True) if c is not None
        )
        effects: list[DriverEffect] = [StoreSynced(pairs)]
        self._height_began = now_ms  # synced heights are not timed: the next one starts now
        effects += self._run(self.engine.catch_up(client.state, client.last_commit, now_ms), now_ms)
        effects += self._request_sync(now_ms)
        return effects

    def submit(self, tx: bytes) -> TxMeta:
        """A client's transaction: admit it to the mempool and queue it for gossip.

        Raises:
            InvalidTransactionError: The mempool refused it (duplicate, invalid, full).
        """
        meta = self.mempool.add(tx)
        if self._gossip_enabled:
            self._gossip.append(tx)
        return meta

    def admit(self, txs: Sequence[bytes]) -> int:
        """A peer's gossip batch: admit what the mempool takes (peers race; refusals are silent).

        Returns:
            How many were admitted.
        """
        admitted = 0
        for tx in txs:
            try:
                self.mempool.add(tx)
            except DchatError:
                continue
            admitted += 1
        return admitted

    def take_gossip(self) -> list[bytes]:
        """The gossip link messages for the transactions submitted since the last call."""
        out = []
        while self._gossip:
            batch = self._gossip[:MAX_GOSSIP_TXS]
            del self._gossip[:MAX_GOSSIP_TXS]
            out.append(encode_txs(batch))
        return out

    def sync_unsent(self) -> None:
        """The last ``RequestSync`` reached no peer: the next ``SyncNeeded`` may ask again."""
        self._sync_until = None

    # -- outputs --------------------------------------------------------------------

    def _input(self, tag: PeerTag, payload: bytes, now_ms: int) -> list[DriverEffect]:
        if tag is PeerTag.SYNC_RESPONSE:
            return self.receive_sync(payload, now_ms)
        try:
            return self.receive_consensus(payload, now_ms)
        except PeerError:
            return []

    def _queue(self, tag: PeerTag, payload: bytes) -> None:
        if len(self._queued) == self._queued.maxlen:
            self.dropped += 1
        self._queued.append((tag, payload))

    def _run(self, outputs: Sequence[ConsensusOutput], now_ms: int) -> list[DriverEffect]:
        effects: list[DriverEffect] = []
        for i, out in enumerate(outputs):
            if isinstance(out, Persist):
                if not _superseded(outputs, i):
                    effects.append(SaveCheckpoint(out.checkpoint.to_bytes()))
            elif isinstance(out, Decision):
                effects.append(StoreBlock(out.block, out.certificate))
                if self._height_began is not None:
                    self.commit_latency.observe((now_ms - self._height_began) / 1000)
                held = self._pace(now_ms)
                self._height_began = self._last_decision  # the next height starts then
                if held:
                    self._held = list(outputs[i + 1 :])
                    return effects
            elif isinstance(out, Broadcast):
                data = encode_peer_message(PeerTag.CONSENSUS, out.message.to_bytes())
                effects.append(SendToPeers(data, out.message))
            elif isinstance(out, ScheduleTimeout):
                heapq.heappush(self._timers, out.at_ms)
            elif isinstance(out, SyncNeeded):
                effects += self._request_sync(now_ms)
            elif isinstance(out, EvidenceFound):
                effects.append(ReportEvidence(out.evidence))
        return effects

    def _pace(self, now_ms: int) -> bool:
        """Note a decision; True if the outputs after it must wait (see the module doc)."""
        interval, last = self.block_interval_ms, self._last_decision
        due = now_ms if last is None else max(now_ms, min(last + interval, now_ms + interval))
        self._last_decision = due
        if due <= now_ms:
            return False
        self._hold_until = due
        return True

    def _request_sync(self, now_ms: int) -> list[DriverEffect]:
        if self._sync_until is not None and now_ms < self._sync_until:
            return []
        self._sync_until = now_ms + self.sync_retry_ms
        request = SyncRequest(self.engine.height, self.sync_batch)
        data = encode_peer_message(PeerTag.SYNC_REQUEST, request.to_bytes())
        return [RequestSync(data, request)]


def resume_point(
    store: BlockStore, app: Application, genesis: ChainState
) -> tuple[ChainState, CommitCertificate | None, Checkpoint | None]:
    """Replay every stored block into a fresh ``app``; the state, last certificate, checkpoint.

    What a restarted validator passes to :class:`ValidatorDriver`.
    """
    state, last_commit = replay(store, app, genesis)
    raw = store.load_checkpoint()
    return state, last_commit, None if raw is None else Checkpoint.from_bytes(raw)


def store_effect(store: BlockStore, effect: DriverEffect) -> None:
    """Carry out a storage effect on a synchronous ``store`` (others are ignored)."""
    if isinstance(effect, SaveCheckpoint):
        store.save_checkpoint(effect.data)
    elif isinstance(effect, StoreBlock):
        store.save(effect.block, effect.certificate)
    elif isinstance(effect, StoreSynced):
        for block, certificate in effect.blocks:
            store.save(block, certificate)
