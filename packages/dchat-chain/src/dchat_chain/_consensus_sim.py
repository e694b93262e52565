"""A deterministic in-process network of validator drivers, for tests and benchmarks.

Theory of operation
-------------------
One seeded ``random.Random`` drives everything: a priority queue of events
(deliveries, timer wake-ups, crashes, restarts, sync replies) ordered by
virtual time, so a seed replays the same run bit for bit. Before ``heal_ms``
the network drops, duplicates, delays (which reorders) and partitions
messages; afterwards every message between live nodes arrives within
``max_delay_ms``. A crashed node loses everything but its block store (blocks,
certificates, checkpoint) and comes back by replaying it into a fresh
application. Each validator is a :class:`~dchat_chain.lowlevel.ValidatorDriver`
(the one the node and dchat-testing's simulator drive), with this module as
its shell: effects become queued deliveries, store writes and timer events.
Byzantine nodes run an honest driver whose outputs the network
tampers with: an *equivocator* sends a conflicting second vote for each vote,
a *garbage* node also sends corrupted and forged messages.

This module is private: tests and ``benchmarks/bench_consensus.py`` use it.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from dchat_core import PeerError
from dchat_crypto import BlsSecretKey, BlsSignature, SigningKey

from ._app import AppQueryResult, BlockResult, TxMeta, TxResult
from ._block_chain import ChainState
from ._block_commit import CommitCertificate
from ._blockstore import MemoryBlockStore
from ._consensus_messages import Decided, Proposal, Vote
from ._consensus_types import ConsensusConfig
from ._consensus_votes import SignatureCache
from ._errors import InvalidTransactionError
from ._mempool import Mempool
from ._sync import SyncRequest, serve_sync
from ._validator_driver import (
    ReportEvidence,
    RequestSync,
    SendToPeers,
    StoreBlock,
    StoreSynced,
    ValidatorDriver,
    resume_point,
    store_effect,
)
from ._validators import Validator, ValidatorSet

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._app import BlockContext
    from ._consensus import ConsensusEngine
    from ._evidence import DuplicateVoteEvidence
    from ._validator_driver import DriverEffect

__all__ = ("HashApp", "SimNode", "Simulation", "genesis_keys")

CHAIN_ID = "sim-chain"
SIM_CONFIG = ConsensusConfig(
    propose_ms=300,
    propose_delta_ms=100,
    prevote_ms=200,
    prevote_delta_ms=100,
    precommit_ms=200,
    precommit_delta_ms=100,
    rebroadcast_ms=400,
)


class HashApp:
    """A tiny deterministic application: its state is a hash chain of the transactions.

    A transaction must start with ``b"tx"``; anything else is malformed.
    """

    def __init__(self) -> None:
        self.app_hash = hashlib.sha256(b"genesis").digest()
        self._pending: bytes | None = None
        self.height = 0

    def tx_meta(self, tx: bytes) -> TxMeta:
        """Parse just enough of ``tx`` for a mempool."""
        if not tx.startswith(b"tx"):
            raise InvalidTransactionError("not a sim transaction")
        return TxMeta(hashlib.sha256(tx).digest(), b"sim", 0, 0, len(tx))

    def check_tx(self, tx: bytes) -> None:
        """Same check as :meth:`tx_meta`."""
        self.tx_meta(tx)

    def apply_block(self, context: BlockContext, txs: Sequence[bytes]) -> BlockResult:
        """Fold the transactions into the hash chain."""
        digest = hashlib.sha256(self.app_hash + context.height.to_bytes(8, "big"))
        for tx in txs:
            digest.update(hashlib.sha256(tx).digest())
        self._pending = digest.digest()
        return BlockResult(self._pending, tuple(TxResult(0) for _ in txs))

    def commit(self) -> bytes:
        """Make the applied block the state."""
        assert self._pending is not None
        self.app_hash, self._pending = self._pending, None
        self.height += 1
        return self.app_hash

    def query(self, key: bytes) -> AppQueryResult:
        """No keyed state: every key is absent."""
        return AppQueryResult(key, None, b"", self.height, self.app_hash)


@lru_cache(maxsize=8)
def genesis_keys(n: int) -> tuple[tuple[BlsSecretKey, ...], ValidatorSet]:
    """``n`` deterministic validator keys (equal power) and their genesis set."""
    keys = tuple(
        BlsSecretKey.from_seed(hashlib.sha256(b"sim-validator-%d" % i).digest()) for i in range(n)
    )
    members = [
        Validator(
            validator_id=bytes([i]) * 8,
            signing_key=SigningKey(hashlib.sha256(b"sim-id-%d" % i).digest()).public_key,
            bls_public_key=k.public_key,
            power=10,
            proof_of_possession=k.prove_possession(),
        )
        for i, k in enumerate(keys)
    ]
    return keys, ValidatorSet.create(members)


@dataclass
class SimNode:
    """One simulated validator: its driver, application, store and fault role."""

    index: int
    key: BlsSecretKey
    role: str = "honest"  # "honest", "equivocator" or "garbage"
    store: MemoryBlockStore = field(default_factory=MemoryBlockStore)
    app: HashApp = field(default_factory=HashApp)
    driver: ValidatorDriver | None = None
    alive: bool = True
    epoch: int = 0  # bumps on crash so the dead incarnation's events are dropped
    decided: dict[int, bytes] = field(default_factory=dict)
    evidence: list[DuplicateVoteEvidence] = field(default_factory=list)
    rejected: int = 0  # peer messages refused with a typed error
    armed: set[int] = field(default_factory=set)  # deadlines with a tick queued

    @property
    def engine(self) -> ConsensusEngine | None:
        """The running engine (None while crashed)."""
        return None if self.driver is None else self.driver.engine


class Simulation:
    """A seeded run of ``n`` validator drivers over a faulty virtual network."""

    def __init__(
        self,
        seed: int,
        n: int = 4,
        *,
        roles: dict[int, str] | None = None,
        heal_ms: int = 0,
        drop: float = 0.0,
        duplicate: float = 0.0,
        max_delay_ms: int = 20,
        config: ConsensusConfig = SIM_CONFIG,
        txs_per_block: int = 2,
    ) -> None:
        self.rng = random.Random(seed)
        self.now = 0
        self.heal_ms, self.drop, self.duplicate = heal_ms, drop, duplicate
        self.max_delay_ms = max_delay_ms
        self.config = config
        self.txs_per_block = txs_per_block
        self.groups: list[set[int]] | None = None
        self.signatures = SignatureCache()
        keys, self.validators = genesis_keys(n)
        self.genesis = ChainState.genesis(CHAIN_ID, self.validators, HashApp().app_hash, 0)
        self.nodes = [SimNode(i, k, (roles or {}).get(i, "honest")) for i, k in enumerate(keys)]
        self._queue: list[tuple[int, int, tuple[Any, ...]]] = []
        self._seq = 0
        self._tx_counter = 0

    # -- scheduling -------------------------------------------------------------------

    def at(self, time_ms: int, *event: Any) -> None:
        """Queue ``event`` for ``time_ms``."""
        self._seq += 1
        heapq.heappush(self._queue, (time_ms, self._seq, event))

    def partition(self, time_ms: int, groups: Sequence[set[int]]) -> None:
        """From ``time_ms`` until ``heal_ms``, only nodes in one group talk."""
        self.at(time_ms, "partition", [set(g) for g in groups])

    def crash(self, time_ms: int, node: int, restart_ms: int) -> None:
        """Crash ``node`` at ``time_ms`` and restart it from its store at ``restart_ms``."""
        self.at(time_ms, "crash", node)
        self.at(restart_ms, "restart", node)

    def start(self) -> None:
        """Start every validator at time 0."""
        for node in self.nodes:
            self._boot(node)

    def run(self, until_ms: int, *, target_height: int | None = None) -> None:
        """Process events until ``until_ms`` (or every honest node decided ``target_height``)."""
        while self._queue and self._queue[0][0] <= until_ms:
            time_ms, _, event = heapq.heappop(self._queue)
            self.now = max(self.now, time_ms)
            self._dispatch(event)
            if target_height is not None and self.min_honest_height() >= target_height:
                return

    def min_honest_height(self) -> int:
        """The lowest decided height among honest nodes."""
        return min(len(n.decided) for n in self.nodes if n.role == "honest")

    # -- events -----------------------------------------------------------------------

    def _dispatch(self, event: tuple[Any, ...]) -> None:
        kind = event[0]
        if kind == "partition":
            self.groups = event[1]
            return
        node = self.nodes[event[1]]
        if kind == "crash":
            node.alive, node.driver = False, None
            node.epoch += 1
        elif kind == "restart":
            node.alive = True
            node.app = HashApp()
            self._boot(node)
        elif node.alive and event[-1] == node.epoch and node.driver is not None:
            self._to_driver(node, node.driver, kind, event)

    def _to_driver(
        self, node: SimNode, driver: ValidatorDriver, kind: str, event: tuple[Any, ...]
    ) -> None:
        if kind == "tick":
            node.armed.discard(event[2])
            self._handle(node, driver.tick(self.now))
        elif kind == "deliver":
            try:
                effects = driver.receive_consensus(event[2], self.now)
            except PeerError:
                node.rejected += 1
                return
            self._handle(node, effects)
        elif kind == "sync":
            request = SyncRequest.from_bytes(event[3])
            response = serve_sync(self.nodes[event[2]].store, request)
            self._handle(node, driver.receive_sync(response.to_bytes(), self.now))

    def _boot(self, node: SimNode) -> None:
        state, last_commit, checkpoint = resume_point(node.store, node.app, self.genesis)
        node.armed = set()
        node.driver = ValidatorDriver(
            state=state,
            app=node.app,
            mempool=Mempool(node.app),
            key=node.key,
            config=self.config,
            last_commit=last_commit,
            checkpoint=checkpoint,
            signatures=self.signatures,
            block_source=self._block_source,
            gossip=False,
        )
        self._handle(node, node.driver.start(self.now))

    def _block_source(self, max_txs: int, max_bytes: int) -> list[bytes]:
        txs = []
        for _ in range(min(self.txs_per_block, max_txs)):
            self._tx_counter += 1
            txs.append(b"tx-%d" % self._tx_counter)
        return txs

    # -- effects ----------------------------------------------------------------------

    def _handle(self, node: SimNode, effects: list[DriverEffect]) -> None:
        for effect in effects:
            store_effect(node.store, effect)
            if isinstance(effect, StoreBlock):
                node.decided[effect.block.height] = effect.block.hash()
            elif isinstance(effect, StoreSynced):
                node.decided.update((b.height, b.hash()) for b, _ in effect.blocks)
            elif isinstance(effect, ReportEvidence):
                node.evidence.append(effect.evidence)
            elif isinstance(effect, RequestSync):
                peer = self.rng.choice([p for p in self.nodes if p is not node])
                sync = ("sync", node.index, peer.index, effect.request.to_bytes(), node.epoch)
                self.at(self.now + self._delay(), *sync)
            elif isinstance(effect, SendToPeers) and effect.message is not None:
                self._broadcast(node, effect.message)
        deadline = None if node.driver is None else node.driver.deadline
        if deadline is not None and deadline not in node.armed:
            node.armed.add(deadline)
            self.at(deadline, "tick", node.index, deadline, node.epoch)

    def _broadcast(self, node: SimNode, message: Proposal | Vote | Decided) -> None:
        extra: list[bytes] = []
        if node.role == "equivocator" and isinstance(message, Vote):
            extra.append(self._conflicting(node, message).to_bytes())
        elif node.role == "garbage":
            extra.extend(self._garbage(node, message))
        data = message.to_bytes()
        for peer in self.nodes:
            if peer is node:
                continue
            payloads = [data, *extra]
            self.rng.shuffle(payloads)
            for data in payloads:
                self._send(node.index, peer, data)

    def _send(self, src: int, peer: SimNode, data: bytes) -> None:
        faulty = self.now < self.heal_ms
        partitioned = faulty and self.groups is not None
        if partitioned and not any(src in g and peer.index in g for g in self.groups or ()):
            return
        if faulty and self.rng.random() < self.drop:
            return
        copies = 2 if faulty and self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            self.at(self.now + self._delay(), "deliver", peer.index, data, peer.epoch)

    def _delay(self) -> int:
        ceiling = self.max_delay_ms * (5 if self.now < self.heal_ms else 1)
        return self.rng.randint(1, ceiling)

    def _conflicting(self, node: SimNode, vote: Vote) -> Vote:
        other = None if vote.block_hash is not None else self.rng.randbytes(32)
        return Vote.create(
            node.key, CHAIN_ID, vote.kind, vote.height, vote.round, other, vote.validator_index
        )

    def _garbage(self, node: SimNode, message: Proposal | Vote | Decided) -> list[bytes]:
        data = bytearray(message.to_bytes())
        data[self.rng.randrange(len(data))] ^= 1 << self.rng.randrange(8)
        out = [bytes(data), self.rng.randbytes(self.rng.randint(0, 64))]
        if isinstance(message, Vote):
            forged = Vote(
                message.kind,
                message.height,
                message.round,
                message.block_hash,
                (message.validator_index + 1) % len(self.nodes),  # someone else's slot
                message.signature,
            )
            out.append(forged.to_bytes())
        if isinstance(message, Decided):
            bogus = CommitCertificate(
                message.certificate.height,
                message.certificate.round,
                message.certificate.block_hash,
                b"\x0f",
                BlsSignature(node.key.sign(b"nonsense").to_bytes()),
            )
            out.append(Decided(message.block, bogus).to_bytes())
        return out
