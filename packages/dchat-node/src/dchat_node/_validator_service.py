"""The validator role: the trio shell around the sans-IO consensus engine.

Theory of operation
-------------------
One task, the *engine task*, owns the :class:`dchat_chain.ConsensusEngine`
and the application: every input (a peer's consensus message, a sync
response, a due timer) is queued to it and handled to completion, outputs in
order, before the next one. Output handling:

* ``Persist``: the checkpoint is written durably (``DurableBlockStore``, SQLite
  ``synchronous=FULL``) *before* any later output is acted on, so nothing the
  validator signed leaves the process unless it would survive a crash.
* ``Decision``: the block and certificate are stored durably, then the task
  waits out what remains of ``block_interval`` since the previous decision
  (the engine starts the next height at once; this is the node's pacing, the
  ``timeout_commit`` the engine leaves to its shell).
* ``Broadcast``: posted to every peer's queue (:mod:`._validator_links`).
* ``ScheduleTimeout``: the task wakes up then and calls ``tick``.
* ``SyncNeeded``: one sync request (100 blocks) to a connected peer; the
  answer is authenticated and executed by ``BlockSyncClient``, stored, and the
  engine jumps ahead with ``catch_up``; a non-empty batch asks for the next.
* ``EvidenceFound``: kept, and on the currency chain a ``slash`` transaction
  signed by this validator's account enters the mempool (the chat chain has
  no stake; its evidence is only counted and logged).

The chain is the one ``genesis.cbor`` in the data directory names (its
``"kind"``), or the currency chain of ``genesis-currency.cbor`` in data
directories written before ``init-testnet --chain``.

Transactions arrive through the API (:meth:`ValidatorService.submit`), enter
the mempool if ``check_tx`` admits them and are gossiped to peers in batches
every 20 ms. Every ``snapshot_interval`` blocks (decided or synced) the state
after the block is written as a ``StateSnapshot`` by a background task (it is
only an optimisation: losing one costs a longer replay). On start, the stored
snapshot is loaded if it verifies against the stored blocks and the blocks
above it are re-executed (``replay_store``; without a usable snapshot, every
block from genesis), and the engine resumes from the stored checkpoint.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import logging
import random
import time
from typing import TYPE_CHECKING, Any, Final

import trio

from dchat_chain import (
    Broadcast,
    Checkpoint,
    ConsensusConfig,
    ConsensusEngine,
    Decision,
    EvidenceFound,
    Persist,
    ScheduleTimeout,
    SyncNeeded,
)
from dchat_chain.lowlevel import (
    DurableBlockStore,
    IndexedApp,
    Proposal,
    StateSnapshot,
    SyncRequest,
    ValidatorSetLog,
    Vote,
    VoteKind,
    replay_store,
    tx_hash,
)
from dchat_core import DchatError
from dchat_network import serve_links
from dchat_storage import ChainBlockLog

from ._errors import ConfigError
from ._validator_links import PeerLink
from ._validator_peers import InboundHandler, apply_sync_response, request_sync, slash_tx
from ._validator_testnet import CURRENCY_GENESIS, VALIDATOR_GENESIS
from ._validator_trace import HeightTrace
from ._validator_wire import CONSENSUS, MAX_GOSSIP_TXS, encode_txs, parse_peer
from .config import parse_hostport

if TYPE_CHECKING:
    from dchat_chain import ConsensusOutput
    from dchat_chain.lowlevel import DuplicateVoteEvidence, SyncResponse
    from dchat_core import Clock

    from ._store import AsyncStore
    from ._validator_keys import ValidatorKeys
    from .config import NodeConfig

__all__ = ("ValidatorService",)

_log = logging.getLogger("dchat.validator")
INBOX: Final = 2048
GOSSIP_INTERVAL: Final = 0.02
GOSSIP_IN: Final = 16  # peers' tx batches waiting for admission (each up to 2,048 txs)
ENGINE_CONFIG: Final = ConsensusConfig(max_block_bytes=768 << 10)  # a proposal fits a link message


def _superseded(outputs: list[ConsensusOutput], i: int) -> bool:
    """True if a later checkpoint replaces ``outputs[i]`` before anything leaves the process.

    Only the latest checkpoint is kept, so writing one that the next replaces
    before any broadcast, decision or timer adds nothing to durability.
    """
    for later in outputs[i + 1 :]:
        if isinstance(later, Persist):
            return True
        if not isinstance(later, ScheduleTimeout):
            return False
    return False


class ValidatorService:
    """A validator of one chain (currency or chat): engine, mempool, block store, peer links.

    Args:
        config: The node configuration (role ``validator``).
        store: The node database (chain tables).
        clock: Wall clock (block times and timeouts are milliseconds since the epoch).
        keys: This validator's account and BLS keys.
    """

    def __init__(
        self, config: NodeConfig, store: AsyncStore, clock: Clock, keys: ValidatorKeys
    ) -> None:
        genesis_path = config.data_dir / VALIDATOR_GENESIS
        if not genesis_path.exists():
            genesis_path = config.data_dir / CURRENCY_GENESIS  # data dirs written before --chain
        try:
            genesis = genesis_path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {genesis_path}: {exc.strerror}") from None
        try:
            self.app = IndexedApp(genesis)
        except DchatError as exc:
            raise ConfigError(f"{genesis_path.name}: {exc}") from None
        expected = config.chat_chain if self.app.kind == "chat" else config.currency_chain
        if expected not in (None, self.app.chain_id):
            raise ConfigError(f"the genesis is for chain {self.app.chain_id!r}")
        self.config, self.keys, self._store, self._clock = config, keys, store, clock
        self.blocks = DurableBlockStore(ChainBlockLog(store.db.chain, self.app.chain_id))
        self.sets = ValidatorSetLog(self.blocks)
        self.peers = [PeerLink(parse_peer(p), keys.account, self._on_sync) for p in config.peers]
        self._inbox_send, self._inbox = trio.open_memory_channel[tuple[str, bytes, float]](INBOX)
        self._engine: ConsensusEngine | None = None
        self._timers: list[int] = []
        self._gossip: list[bytes] = []
        self._gossip_in_send, self._gossip_in = trio.open_memory_channel[list[bytes]](GOSSIP_IN)
        self._last_decision = 0.0
        self.sync_until = 0.0
        self.evidence: list[DuplicateVoteEvidence] = []
        self.rejected = 0
        self.snapshot_height = 0  # the height of the last snapshot taken or loaded
        self._snapshotting = False
        self._nursery: trio.Nursery | None = None
        self.trace = HeightTrace()  # debug-level timelines; inert otherwise

    @property
    def engine(self) -> ConsensusEngine:
        """The running engine (after :meth:`start`)."""
        assert self._engine is not None, "validator not started"
        return self._engine

    def now_ms(self) -> int:
        """Wall-clock milliseconds (the engine's time base)."""
        return int(self._clock.now() * 1000)

    # -- start-up -------------------------------------------------------------------

    async def start(self, nursery: trio.Nursery) -> str:
        """Replay the store, start the engine, links and gossip; returns the link address."""
        state, last = await trio.to_thread.run_sync(replay_store, self.blocks, self.app)
        raw = await self._store.run(self.blocks.load_checkpoint)
        self._engine = ConsensusEngine(
            state=state,
            app=self.app,
            block_source=lambda max_txs, max_bytes: self.app.mempool.reap(max_bytes, max_txs),
            key=self.keys.bls,
            config=ENGINE_CONFIG,
            last_commit=last,
            checkpoint=None if raw is None else Checkpoint.from_bytes(raw),
        )
        _log.info("validator at height %d after replay", state.height - 1)
        await self._note_sets()
        self.snapshot_height = state.height - 1
        self._nursery = nursery
        inbound = InboundHandler(self, {p.address.node_id for p in self.peers})
        host, port = parse_hostport(self.config.listen)
        serve = functools.partial(serve_links, node_key=self.keys.account)
        bound = await nursery.start(serve, inbound.handle, host, port)
        for peer in self.peers:
            nursery.start_soon(peer.run)
        nursery.start_soon(self._run_engine)
        nursery.start_soon(self._run_gossip)
        nursery.start_soon(self._run_admission)
        nursery.start_soon(self.trace.watch_lag)
        return f"{bound[0]}:{bound[1]}"

    # -- the engine task --------------------------------------------------------------

    async def _run_engine(self) -> None:
        await self._process(self.engine.start(self.now_ms()))
        while True:
            item: tuple[str, bytes, float] | None = None
            # Only the wait is bounded: output handling must never be cut short,
            # or a checkpoint or a block could be skipped.
            with trio.move_on_at(self._wake_at()):
                item = await self._inbox.receive()
            if item is not None:
                await self._input(*item)
            now = self.now_ms()
            if self._timers and self._timers[0] <= now:
                while self._timers and self._timers[0] <= now:
                    heapq.heappop(self._timers)
                await self._process(self.engine.tick(now))

    def _wake_at(self) -> float:
        if not self._timers:
            return trio.current_time() + 1.0
        return trio.current_time() + max(0, self._timers[0] - self.now_ms()) / 1000

    async def _input(self, kind: str, payload: bytes, queued_at: float) -> None:
        if kind == "sync":
            await self._apply_sync(payload)
            return
        trace = self.trace
        if trace.enabled:
            trace.peak("inbox_wait", time.monotonic() - queued_at)
            if len(payload) > 4096:  # a proposal (or a re-sent decided block)
                trace.mark("big_queued", queued_at)
                trace.mark("big_taken")
        began = time.monotonic() if trace.enabled else 0.0
        try:
            outputs = self.engine.receive(payload, self.now_ms())
        except DchatError as exc:
            self.rejected += 1  # a peer's bad message; the engine is unchanged
            _log.debug("consensus message refused: %s", exc)
            return
        finally:
            trace.cost("engine", time.monotonic() - began if trace.enabled else 0.0)
        await self._process(outputs)

    async def _process(self, outputs: list[ConsensusOutput]) -> None:
        trace = self.trace
        for i, out in enumerate(outputs):
            began = time.monotonic() if trace.enabled else 0.0
            if isinstance(out, Persist):
                if _superseded(outputs, i):
                    continue
                await self._store.run(self.blocks.save_checkpoint, out.checkpoint.to_bytes())
                trace.cost("checkpoints", time.monotonic() - began if trace.enabled else 0.0)
            elif isinstance(out, Decision):
                trace.mark("decided")
                await self._store.run(self.blocks.save, out.block, out.certificate)
                trace.mark("stored")
                await self._note_sets()
                self._maybe_snapshot(out.block.height)
                await self._pace()
                trace.mark("paced")
                trace.flush(out.block.height, out.certificate.round, len(out.block.txs))
            elif isinstance(out, Broadcast):
                if trace.enabled:
                    self._trace_broadcast(out)
                self.broadcast(bytes([CONSENSUS]) + out.message.to_bytes())
            elif isinstance(out, ScheduleTimeout):
                heapq.heappush(self._timers, out.at_ms)
            elif isinstance(out, SyncNeeded):
                self.request_sync()
            elif isinstance(out, EvidenceFound):
                self._on_evidence(out.evidence)

    def _trace_broadcast(self, out: Broadcast) -> None:
        message = out.message
        if isinstance(message, Proposal) and message.height == self.engine.height:
            self.trace.mark("proposed")
        elif isinstance(message, Vote) and message.height == self.engine.height:
            name = "prevote" if message.kind is VoteKind.PREVOTE else "precommit"
            self.trace.mark(f"{name}_r{message.round}")

    async def _note_sets(self) -> None:
        """Keep any validator set not seen before, for light clients (see ValidatorSetLog)."""
        new = self.sets.note(self.engine.state)
        if new:
            await self._store.run(self.sets.persist, new)

    def _maybe_snapshot(self, height: int) -> None:
        """Start writing a snapshot of the state after ``height`` if one is due."""
        every = self.config.snapshot_interval
        due = every and height // every > self.snapshot_height // every
        # The engine may already have executed a later block in the same call:
        # then app and engine are past ``height`` and the next block is the moment.
        current = self.engine.state.height == height + 1 and self.app.inner.height == height
        if not due or not current or self._snapshotting or self._nursery is None:
            return
        snapshot = StateSnapshot.take(self.engine.state, self.app.inner.state.committed_items())
        self.snapshot_height, self._snapshotting = height, True
        self._nursery.start_soon(self._write_snapshot, snapshot)

    async def _write_snapshot(self, snapshot: StateSnapshot) -> None:
        try:
            data = await trio.to_thread.run_sync(snapshot.to_bytes)
            await self._store.run(self.blocks.save_snapshot, data)
            _log.info("state snapshot at height %d written", snapshot.height)
        except DchatError as exc:  # an optimisation failed; the blocks are all stored
            _log.warning("state snapshot at height %d not written: %s", snapshot.height, exc)
        finally:
            self._snapshotting = False

    async def _pace(self) -> None:
        wait = self._last_decision + self.config.block_interval - trio.current_time()
        if wait > 0:
            await trio.sleep(wait)
        self._last_decision = trio.current_time()

    def broadcast(self, data: bytes) -> None:
        """Post ``data`` to every peer (dropped for a peer whose queue is full)."""
        for peer in self.peers:
            peer.post(data)

    # -- block sync -------------------------------------------------------------------

    def request_sync(self) -> None:
        """Ask one connected peer for the blocks after ours (one request in flight)."""
        if trio.current_time() < self.sync_until:
            return
        live = [p for p in self.peers if p.connected]
        if live and request_sync(random.choice(live), SyncRequest(self.engine.height, 100)):
            self.sync_until = trio.current_time() + 5.0

    async def serve_sync(self, request: SyncRequest) -> SyncResponse:
        """Answer a peer's sync request from the block store (in a worker thread)."""
        return await self._store.run(self.blocks.serve_sync, request)

    async def _on_sync(self, peer: PeerLink, payload: bytes) -> None:
        with trio.move_on_after(10):
            await self._inbox_send.send(("sync", payload, 0.0))

    async def _apply_sync(self, payload: bytes) -> None:
        self.sync_until = 0.0
        applied = apply_sync_response(self.engine.state, self.app, payload)
        if applied is None:
            self.rejected += 1
            return
        pairs, state = applied
        await self._store.run(self.blocks.save_many, pairs)  # one transaction per batch
        if pairs:
            outputs = self.engine.catch_up(state, pairs[-1][1], self.now_ms())
            _log.info("block sync: now at height %d", state.height - 1)
            await self._note_sets()
            self._maybe_snapshot(state.height - 1)
            await self._process(outputs)
            self.request_sync()

    # -- transactions -----------------------------------------------------------------

    async def submit(self, txs: list[bytes]) -> list[dict[str, Any]]:
        """Admit transactions to the mempool and queue them for gossip."""
        results = []
        began = time.monotonic()
        for i, tx in enumerate(txs):
            try:
                self.app.mempool.add(tx)
                self._gossip.append(tx)
                results.append({"hash": tx_hash(tx).hex(), "accepted": True})
            except DchatError as exc:
                results.append(
                    {
                        "hash": tx_hash(tx).hex(),
                        "accepted": False,
                        "error": type(exc).__name__,
                        "message": str(exc),
                    }
                )
            if i % 64 == 63:
                self.trace.peak("admit_stretch", time.monotonic() - began)
                await trio.lowlevel.checkpoint()  # let consensus run between chunks
                began = time.monotonic()
        return results

    async def admit_gossip(self, txs: list[bytes]) -> None:
        """Queue a peer's transactions for admission (waits only while the queue is full).

        Admission (a signature check per transaction) runs in its own task, so
        the link reader goes straight on to the peer's next frame: a vote sent
        after a large gossip batch is not held up by that batch's admission.
        """
        await self._gossip_in_send.send(txs)

    async def _run_admission(self) -> None:
        async for txs in self._gossip_in:
            await self._admit_peer_txs(txs)

    async def _admit_peer_txs(self, txs: list[bytes]) -> None:
        """Add peers' transactions to the mempool (refusals are silent: peers race)."""
        began = time.monotonic()
        for i, tx in enumerate(txs):
            with contextlib.suppress(DchatError):
                self.app.mempool.add(tx)
            if i % 64 == 63:
                self.trace.peak("gossip_stretch", time.monotonic() - began)
                await trio.lowlevel.checkpoint()
                began = time.monotonic()

    async def _run_gossip(self) -> None:
        while True:
            await trio.sleep(GOSSIP_INTERVAL)
            while self._gossip:
                batch = self._gossip[:MAX_GOSSIP_TXS]
                del self._gossip[:MAX_GOSSIP_TXS]
                self.broadcast(encode_txs(batch))

    def _on_evidence(self, evidence: DuplicateVoteEvidence) -> None:
        self.evidence.append(evidence)
        _log.warning("double signing detected", extra={"height": evidence.height})
        tx = slash_tx(self.app, self.keys.account, evidence)
        if tx is None:
            return
        try:
            self.app.mempool.add(tx)
            self._gossip.append(tx)
        except DchatError as exc:
            _log.info("slash transaction not admitted: %s", exc)

    async def inbox_put(self, payload: bytes) -> None:
        """Queue a peer's consensus message for the engine task (bounded wait)."""
        with trio.move_on_after(10):
            await self._inbox_send.send(("msg", payload, time.monotonic()))
