"""The validator role: the trio shell around dchat-chain's sans-IO validator driver.

Theory of operation
-------------------
:class:`dchat_chain.lowlevel.ValidatorDriver` does the validator's work (the
consensus engine, timers, pacing between blocks, block sync, gossip batches);
this shell feeds it and carries out its effects. One task, the *engine task*,
owns the driver: every input (a peer's consensus message, a sync response, the
driver's deadline) is queued to it and handled to completion, effects in
order, before the next one:

* ``SaveCheckpoint``: written durably (``DurableBlockStore``, SQLite
  ``synchronous=FULL``) *before* any later effect is acted on, so nothing the
  validator signed leaves the process unless it would survive a crash.
* ``StoreBlock`` / ``StoreSynced``: the decided (or synced) blocks and
  certificates are stored durably; new validator sets are kept for light clients.
* ``SendToPeers``: posted to every peer's queue (a :class:`dchat_network.lowlevel.QueuedLink`
  per peer: posting never blocks, a full queue drops and counts).
* ``RequestSync``: sent to one connected peer (a random one).
* ``ReportEvidence``: logged and handed to the book (below), which keeps it
  and on the currency chain submits a ``slash`` transaction.

Links that configured peers dial to us (:func:`dchat_network.lowlevel.read_known_peer`)
carry consensus messages (queued to the engine task), gossip (queued for
admission) and sync requests (answered on the same link from the block store);
a malformed frame closes the link.

The chain is the one ``genesis.cbor`` in the data directory names (its
``"kind"``), or the currency chain of ``genesis-currency.cbor`` in data
directories written before ``init-testnet --chain``.

Transactions arrive through the API (:meth:`ValidatorService.submit`), enter
the mempool if ``check_tx`` admits them and are gossiped to peers in batches
every 20 ms. The decisions around the driver (when a state snapshot is due,
evidence and slashing, submission results, the status document) are
dchat-chain's :class:`~dchat_chain.lowlevel.ValidatorBook`; a due snapshot is
written by a background task (it is only an optimisation: losing one costs a
longer replay). On start, the stored snapshot is loaded if it verifies against
the stored blocks and the blocks above it are re-executed (``replay_store``;
without a usable snapshot, every block from genesis), and the book resumes the
driver from the stored checkpoint.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from typing import TYPE_CHECKING, Any, Final

import httpx
import trio

from dchat_chain.lowlevel import (
    DurableBlockStore,
    IndexedApp,
    PeerAddressError,
    PeerStats,
    PeerTag,
    ReportEvidence,
    RequestSync,
    SaveCheckpoint,
    SendToPeers,
    StoreBlock,
    StoreSynced,
    SyncRequest,
    ValidatorBook,
    ValidatorSetLog,
    decode_inbound,
    encode_peer_message,
    parse_peer,
    replay_store,
    sent_step,
    sync_response_payload,
)
from dchat_core import DchatError
from dchat_network import LinkStats, Prober, ProbeTarget, listing_targets, run_prober, serve_links
from dchat_network.lowlevel import QueuedLink, read_known_peer
from dchat_storage import ChainBlockLog

from .._errors import ConfigError
from ..config import parse_hostport
from ._keys import CURRENCY_GENESIS, VALIDATOR_GENESIS
from ._trace import height_trace, watch_lag

if TYPE_CHECKING:
    from dchat_chain import ConsensusEngine
    from dchat_chain.lowlevel import (
        DriverEffect,
        PeerAddress,
        StateSnapshot,
        SyncResponse,
        ValidatorDriver,
        ValidatorKeys,
    )
    from dchat_core import Clock
    from dchat_network import Link
    from dchat_storage import AsyncStore

    from ..config import NodeConfig

__all__ = ("ValidatorService",)

_log = logging.getLogger("dchat.validator")
INBOX: Final = 2048
GOSSIP_INTERVAL: Final = 0.02
GOSSIP_IN: Final = 16  # peers' tx batches waiting for admission (each up to 2,048 txs)
CHUNK: Final = 64  # transactions admitted between two scheduler checkpoints
SEND_TIMEOUT: Final = 30.0  # a sync response to a peer that dialled us


class ValidatorService:
    """A validator of one chain (currency or chat): driver, block store, peer links.

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
        try:
            self.peers = [self._link(parse_peer(p)) for p in config.peers]
        except PeerAddressError as exc:
            raise ConfigError(str(exc)) from None
        self._inbox_send, self._inbox = trio.open_memory_channel[tuple[str, bytes, float]](INBOX)
        self._gossip_in_send, self._gossip_in = trio.open_memory_channel[list[bytes]](GOSSIP_IN)
        self.book = ValidatorBook(self.app, keys.account, config.snapshot_interval)
        self._nursery: trio.Nursery | None = None
        self.trace = height_trace()  # debug-level timelines; inert otherwise
        self.links = LinkStats()  # the inbound listener's counters (metrics)

    def _link(self, peer: PeerAddress) -> QueuedLink[PeerStats]:
        stats = PeerStats(str(peer.node_id))
        key = self.keys.account
        return QueuedLink(peer.host, peer.port, peer.node_id, key, stats, self._on_sync)

    @property
    def driver(self) -> ValidatorDriver:
        """The running driver (after :meth:`start`)."""
        return self.book.driver

    @property
    def engine(self) -> ConsensusEngine:
        """The running engine (after :meth:`start`)."""
        return self.driver.engine

    def status(self) -> dict[str, Any]:
        """The ``/v1/chain/status`` document."""
        return self.book.status((p.stats for p in self.peers), self.blocks.height())

    def now_ms(self) -> int:
        """Wall-clock milliseconds (the driver's time base)."""
        return int(self._clock.now() * 1000)

    # -- start-up -------------------------------------------------------------------

    async def start(self, nursery: trio.Nursery) -> str:
        """Replay the store, start the driver, links and gossip; returns the link address."""
        state, last = await trio.to_thread.run_sync(replay_store, self.blocks, self.app)
        raw = await self._store.run(self.blocks.load_checkpoint)
        interval_ms = int(self.config.block_interval * 1000)
        self.book.resume(state, last, raw, self.keys.bls, interval_ms)
        _log.info("validator at height %d after replay", state.height - 1)
        await self._note_sets()
        self._nursery = nursery
        allowed = {p.peer for p in self.peers}  # inbound links only from configured peers
        inbound = functools.partial(read_known_peer, allowed=allowed, on_frame=self._inbound)
        host, port = parse_hostport(self.config.listen)
        serve = functools.partial(serve_links, node_key=self.keys.account, stats=self.links)
        bound = await nursery.start(serve, inbound, host, port)
        for peer in self.peers:
            nursery.start_soon(peer.run)
        nursery.start_soon(self._run_engine)
        nursery.start_soon(self._run_gossip)
        nursery.start_soon(self._run_admission)
        nursery.start_soon(watch_lag, self.trace)
        if self.config.probe_directory is not None and self.app.kind == "currency":
            run = functools.partial(run_prober, interval=self.config.probe_interval)
            nursery.start_soon(run, Prober(self.keys.account), self._listed, self.book, self.now_ms)
        return f"{bound[0]}:{bound[1]}"

    async def _listed(self) -> list[ProbeTarget]:
        """The relays the chat validator of ``probe_directory`` lists (its ``api.json``)."""
        info = json.loads(await trio.Path(f"{self.config.probe_directory}/api.json").read_text())
        async with httpx.AsyncClient(timeout=10.0) as client:
            headers = {"Authorization": f"Bearer {info['token']}"}
            answer = await client.get(f"{info['url']}/v1/chain/relays", headers=headers)
        return listing_targets(answer.raise_for_status().json())

    # -- the engine task --------------------------------------------------------------

    async def _run_engine(self) -> None:
        driver = self.driver
        await self._execute(driver.start(self.now_ms()))
        while True:
            item: tuple[str, bytes, float] | None = None
            # Only the wait is bounded: effects must never be cut short, or a
            # checkpoint or a block could be skipped.
            with trio.move_on_after(driver.wait_s(self.now_ms())):
                item = await self._inbox.receive()
            if item is not None:
                await self._input(*item)
            now = self.now_ms()
            deadline = driver.deadline
            if deadline is not None and deadline <= now:
                await self._execute(driver.tick(now))

    async def _input(self, kind: str, payload: bytes, queued_at: float) -> None:
        if kind == "sync":
            await self._execute(self.driver.receive_sync(payload, self.now_ms()))
            return
        trace = self.trace
        if trace.enabled:
            trace.peak("inbox_wait", time.monotonic() - queued_at)
            if len(payload) > 4096:  # a proposal (or a re-sent decided block)
                trace.mark("big_queued", queued_at)
                trace.mark("big_taken")
        began = time.monotonic() if trace.enabled else 0.0
        try:
            effects = self.driver.receive_consensus(payload, self.now_ms())
        except DchatError as exc:  # a peer's bad message; the engine is unchanged
            _log.debug("consensus message refused: %s", exc)
            return
        finally:
            trace.cost("engine", time.monotonic() - began if trace.enabled else 0.0)
        await self._execute(effects)

    async def _execute(self, effects: list[DriverEffect]) -> None:
        trace = self.trace
        for effect in effects:
            began = time.monotonic() if trace.enabled else 0.0
            if isinstance(effect, SaveCheckpoint):
                await self._store.run(self.blocks.save_checkpoint, effect.data)
                trace.cost("checkpoints", time.monotonic() - began if trace.enabled else 0.0)
            elif isinstance(effect, StoreBlock):
                trace.mark("decided")
                await self._store.run(self.blocks.save, effect.block, effect.certificate)
                trace.mark("stored")
                await self._stored(effect.block.height)
                trace.flush(effect.block.height, effect.certificate.round, len(effect.block.txs))
            elif isinstance(effect, StoreSynced):
                await self._store.run(self.blocks.save_many, effect.blocks)  # one transaction
                await self._stored(effect.blocks[-1][0].height)
                # Logged here, not where the response arrived: one that came during a
                # pacing hold is executed later, from the driver's queue.
                _log.info("block sync: now at height %d", effect.blocks[-1][0].height)
            elif isinstance(effect, SendToPeers):
                if trace.enabled and (step := sent_step(effect.message, self.engine.height)):
                    trace.mark(step)
                self.broadcast(effect.data)
            elif isinstance(effect, RequestSync):
                self._request_sync(effect.data)
            elif isinstance(effect, ReportEvidence):
                _log.warning("double signing detected", extra={"height": effect.evidence.height})
                if (refused := self.book.on_evidence(effect.evidence)) is not None:
                    _log.info("slash transaction not admitted: %s", refused)

    async def _stored(self, height: int) -> None:
        await self._note_sets()
        snapshot = self.book.snapshot_due(height, self.engine.state)
        if snapshot is not None:
            assert self._nursery is not None
            self._nursery.start_soon(self._write_snapshot, snapshot)

    async def _note_sets(self) -> None:
        """Keep any validator set not seen before, for light clients (see ValidatorSetLog)."""
        new = self.sets.note(self.engine.state)
        if new:
            await self._store.run(self.sets.persist, new)

    async def _write_snapshot(self, snapshot: StateSnapshot) -> None:
        try:
            data = await trio.to_thread.run_sync(snapshot.to_bytes)
            await self._store.run(self.blocks.save_snapshot, data)
            _log.info("state snapshot at height %d written", snapshot.height)
        except DchatError as exc:  # an optimisation failed; the blocks are all stored
            _log.warning("state snapshot at height %d not written: %s", snapshot.height, exc)
        finally:
            self.book.snapshot_written()

    def broadcast(self, data: bytes) -> None:
        """Post ``data`` to every peer (dropped for a peer whose queue is full)."""
        for peer in self.peers:
            peer.post(data)

    # -- block sync -------------------------------------------------------------------

    def _request_sync(self, data: bytes) -> None:
        """Send a sync request to one connected peer (the driver keeps one in flight)."""
        live = [p for p in self.peers if p.stats.connected]
        if not live or not random.choice(live).post(data):
            self.driver.sync_unsent()

    async def _inbound(self, link: Link, data: bytes) -> bool:
        """A frame from a peer that dialled us; False (the link closes) if malformed."""
        try:
            message = decode_inbound(data)
        except DchatError:
            return False
        if isinstance(message, SyncRequest):  # answered on the same link
            response = await self.serve_sync(message)
            reply = encode_peer_message(PeerTag.SYNC_RESPONSE, response.to_bytes())
            await link.send(reply, timeout=SEND_TIMEOUT)
        elif isinstance(message, list):
            await self.admit_gossip(message)
        else:
            await self.inbox_put(message)  # the engine task checks it
        return True

    async def serve_sync(self, request: SyncRequest) -> SyncResponse:
        """Answer a peer's sync request from the block store (in a worker thread)."""
        return await self._store.run(self.blocks.serve_sync, request)

    async def _on_sync(self, peer: QueuedLink[PeerStats], data: bytes) -> bool:
        """A frame on our link to ``peer``: only sync responses come that way."""
        try:
            payload = sync_response_payload(data)
        except DchatError:
            _log.info("peer %s sent an unexpected message; closing", peer.peer)
            return False
        with trio.move_on_after(10):
            await self._inbox_send.send(("sync", payload, 0.0))
        return True

    # -- transactions -----------------------------------------------------------------

    async def submit(self, txs: list[bytes]) -> list[dict[str, Any]]:
        """Admit transactions to the mempool and queue them for gossip."""
        results = []
        began = time.monotonic()
        for i, tx in enumerate(txs):
            results.append(self.book.submit(tx))
            if i % CHUNK == CHUNK - 1:
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
            for start in range(0, len(txs), CHUNK):
                began = time.monotonic()
                self.driver.admit(txs[start : start + CHUNK])  # refusals are silent: peers race
                self.trace.peak("gossip_stretch", time.monotonic() - began)
                await trio.lowlevel.checkpoint()

    async def _run_gossip(self) -> None:
        while True:
            await trio.sleep(GOSSIP_INTERVAL)
            for message in self.driver.take_gossip():
                self.broadcast(message)

    async def inbox_put(self, payload: bytes) -> None:
        """Queue a peer's consensus message for the engine task (bounded wait)."""
        with trio.move_on_after(10):
            await self._inbox_send.send(("msg", payload, time.monotonic()))
