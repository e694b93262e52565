"""The chain in the simulator: validators running the real consensus engine.

Theory of operation
-------------------
A :class:`ValidatorNode` is a shell around the real
:class:`dchat_chain.lowlevel.ValidatorDriver`, the one dchat-node's validator
drives (consensus engine, mempool, timers, pacing by ``block_interval``, block
sync), with a :class:`~dchat_chain.lowlevel.MemoryBlockStore` as its disk
(``durable``: blocks, certificates and the consensus checkpoint survive a
crash; on boot every stored block is replayed into a fresh application and the
driver resumes from the checkpoint). The shell only does what the node's does:

* Inputs (a peer's message, the driver's deadline, a sync response) are fed
  to the driver one at a time and its effects carried out in order; storage
  effects go to the disk before anything later leaves.
* Links: one real Noise link per pair of validators (the lower name dials),
  framed by the validator wire (:class:`~dchat_chain.lowlevel.PeerTag`). Peers
  re-send their current messages every ``rebroadcast_ms``, so a link silent for
  ``LINK_IDLE`` is dead (partition, crashed peer): it is aborted and re-dialled.
* ``RequestSync`` goes to one connected peer, which answers from its disk.

An *equivocator* runs the honest engine but double-signs on the wire: each
proposal gets a twin block for half of the honest peers, each vote a conflicting
vote (for the twin block if there is one), and some peers get both versions.
Equivocators of one run collude (they share the twins).

Invariants: :class:`OneBlockPerHeight` (agreement, at every commit),
:class:`ProgressAfterHealing` (every validator commits ``PROGRESS_BLOCKS``
blocks beyond the highest height at healing) and :class:`EquivocationEvidence`
(every equivocator is caught by an honest validator; no honest one is accused).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from dchat_chain import (
    ChainState,
    ConsensusConfig,
    InvalidTransactionError,
    Mempool,
    TxResult,
    Validator,
    ValidatorSet,
)
from dchat_chain.lowlevel import (
    AppQueryResult,
    BlockResult,
    Decided,
    MemoryBlockStore,
    PeerTag,
    Proposal,
    ReportEvidence,
    RequestSync,
    SendToPeers,
    SignatureCache,
    StoreBlock,
    StoreSynced,
    SyncRequest,
    TxMeta,
    ValidatorDriver,
    Vote,
    encode_peer_message,
    resume_point,
    serve_sync,
    split_peer_message,
    store_effect,
)
from dchat_core import DchatError, NodeId
from dchat_crypto import BlsSecretKey, SigningKey

from ._node import EPOCH, NodeClock, SimLink, SimNode
from ._simulation import Violation

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from dchat_chain import ConsensusEngine
    from dchat_chain.lowlevel import BlockContext, DriverEffect

    from ._network import Endpoint
    from ._simulation import Observation, Simulation

__all__ = (
    "ChainSpec",
    "ChainWorld",
    "EquivocationEvidence",
    "OneBlockPerHeight",
    "ProgressAfterHealing",
    "ValidatorNode",
    "build_chain_world",
)

CHAIN_ID: Final = "dchat-sim-chain"
GENESIS_APP_HASH: Final = hashlib.sha256(b"dchat-sim-genesis").digest()
ENGINE_CONFIG: Final = ConsensusConfig()  # the node's timeouts
PROGRESS_BLOCKS: Final = 3
LINK_IDLE: Final = 3.0  # > rebroadcast_ms: a silent open link is dead
DIAL_TIMEOUT: Final = 2.0
WATCHDOG: Final = 0.5
SYNC_BATCH: Final = 50
SYNC_RETRY: Final = 5.0
BOTH_VERSIONS: Final = 0.5  # an equivocator sends a peer both versions this often


class SimChainApp:
    """A hash chain of the transactions; each transaction is its own sender (nonce 0).

    It owns the mempool and drops committed transactions from it in
    :meth:`commit`, as the node's application does: the engine reaps the next
    proposal inside the same call that committed the block.
    """

    def __init__(self) -> None:
        self.app_hash = GENESIS_APP_HASH
        self.height = 0
        self.mempool = Mempool(self)
        self._pending: tuple[bytes, tuple[bytes, ...]] | None = None

    def tx_meta(self, tx: bytes) -> TxMeta:
        """A transaction is any bytes starting with ``b"tx"``."""
        if not tx.startswith(b"tx"):
            raise InvalidTransactionError("not a simulated transaction")
        digest = hashlib.sha256(tx).digest()
        return TxMeta(digest, digest, 0, 0, len(tx))

    def check_tx(self, tx: bytes) -> None:
        """Same check as :meth:`tx_meta`."""
        self.tx_meta(tx)

    def apply_block(self, context: BlockContext, txs: Sequence[bytes]) -> BlockResult:
        """Fold the block into the hash chain."""
        digest = hashlib.sha256(self.app_hash + context.height.to_bytes(8, "big"))
        for tx in txs:
            digest.update(hashlib.sha256(tx).digest())
        self._pending = (digest.digest(), tuple(txs))
        return BlockResult(self._pending[0], tuple(TxResult(0) for _ in txs))

    def commit(self) -> bytes:
        """Make the applied block the state; forget its transactions."""
        assert self._pending is not None
        (self.app_hash, txs), self._pending = self._pending, None
        self.height += 1
        self.mempool.update(txs)
        return self.app_hash

    def query(self, key: bytes) -> AppQueryResult:
        """No keyed state."""
        return AppQueryResult(key, None, b"", self.height, self.app_hash)


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """The shape of a chain world (clock skew in seconds, drift as a rate error)."""

    validators: int = 4
    equivocators: int = 0
    block_interval: float = 1.0
    skew: float = 0.5
    drift: float = 0.001


@dataclass(slots=True)
class ValidatorDisk:
    """What survives a crash."""

    store: MemoryBlockStore = field(default_factory=MemoryBlockStore)


class ChainWorld:
    """The validators of one run, what they share, and the chain checkers."""

    def __init__(self, sim: Simulation, spec: ChainSpec, genesis: ChainState) -> None:
        self.sim = sim
        self.spec = spec
        self.genesis = genesis
        self.signatures = SignatureCache()  # shared, as engines of one process may
        self.validators: list[ValidatorNode] = []
        self.node_ids: dict[str, NodeId] = {}
        self.by_node_id: dict[NodeId, str] = {}
        self.by_validator_id: dict[bytes, str] = {}
        self.byzantine: set[str] = set()
        self.sides: dict[str, int] = {}  # honest validator -> which twin it is shown
        self.twins: dict[bytes, bytes] = {}  # block hash -> the equivocators' twin
        self.progress = ProgressAfterHealing(self.validators)
        self._txs = sim.rng("chain-workload")

    def node(self, name: str) -> ValidatorNode:
        """The validator called ``name``."""
        return next(v for v in self.validators if v.name == name)

    def current_proposer(self) -> ValidatorNode | None:
        """The proposer of the round that the most advanced live validator is in."""
        live = [v for v in self.validators if v.up and v.engine is not None]
        if not live:
            return None
        engine = max(live, key=lambda v: (v.engine_height, v.name)).engine
        assert engine is not None
        proposer = engine.state.validators.proposer(engine.round).validator_id
        return self.node(self.by_validator_id[proposer])

    def schedule_txs(self, count: int, start: float, end: float) -> None:
        """``count`` transactions submitted at random times to random validators."""
        for number in range(count):
            target = self._txs.choice(self.validators)
            tx = b"tx-sim-%d-" % number + self._txs.randbytes(8).hex().encode()
            self.sim.at(self._txs.uniform(start, end), functools.partial(target.submit, tx))

    def quiescent(self) -> bool:
        """Every validator is up and has made progress since healing."""
        return self.progress.reached()


class ValidatorNode(SimNode):
    """A validator: a validator driver, its disk, links to its peers.

    Args:
        sim: The simulation.
        name: Node name.
        clock: The node's clock (block times and timeouts are its wall-clock ms).
        world: The chain world (genesis, peers, shared caches).
        link_key: The validator's link (account) key.
        bls_key: The validator's vote key.
    """

    def __init__(
        self,
        sim: Simulation,
        name: str,
        clock: NodeClock,
        *,
        world: ChainWorld,
        link_key: SigningKey,
        bls_key: BlsSecretKey,
    ) -> None:
        super().__init__(sim, name, clock)
        self.world = world
        self.link_key = link_key
        self.bls_key = bls_key
        self.durable = ValidatorDisk()
        self.driver: ValidatorDriver | None = None
        self.app = SimChainApp()
        self._links: dict[str, SimLink] = {}
        self._heard: dict[str, float] = {}
        self._armed: set[int] = set()
        self._conflicts: dict[tuple[int, int, int], bytes] = {}

    @property
    def engine(self) -> ConsensusEngine | None:
        """The running engine (None before the first boot)."""
        return None if self.driver is None else self.driver.engine

    @property
    def engine_height(self) -> int:
        """The height the engine is deciding (0 while down)."""
        return self.driver.engine.height if self.driver is not None and self.up else 0

    def boot(self) -> None:
        """Replay the store into a fresh app, resume the driver, listen and dial."""
        self.app = SimChainApp()
        state, last_commit, checkpoint = resume_point(
            self.durable.store, self.app, self.world.genesis
        )
        self.driver = ValidatorDriver(
            state=state,
            app=self.app,
            mempool=self.app.mempool,
            key=self.bls_key,
            config=ENGINE_CONFIG,
            last_commit=last_commit,
            checkpoint=checkpoint,
            signatures=self.world.signatures,
            block_interval_ms=round(self.world.spec.block_interval * 1000),
            sync_batch=SYNC_BATCH,
            sync_retry_ms=round(SYNC_RETRY * 1000),
            gossip=False,
        )
        self._links, self._heard, self._armed = {}, {}, set()
        self.sim.network.listen(self.name, self._accept)
        self.after(0.0, self._watchdog)  # once everyone booted at this instant listens
        self._execute(self.driver.start(self._now_ms()))

    def submit(self, tx: bytes) -> None:
        """A client hands ``tx`` to this validator (lost if it is down or refuses it)."""
        if self.up and self.driver is not None:
            try:
                self.driver.submit(tx)
            except DchatError:
                return

    # -- driving the driver ------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    def _wake(self, due: int) -> None:
        self._armed.discard(due)
        assert self.driver is not None
        self._execute(self.driver.tick(max(self._now_ms(), due)))

    def _execute(self, effects: list[DriverEffect]) -> None:
        driver, incarnation = self.driver, self.incarnation
        assert driver is not None
        for effect in effects:
            if not self.up or self.incarnation != incarnation:
                return  # an observer crashed us part-way
            store_effect(self.durable.store, effect)
            if isinstance(effect, StoreBlock):
                block = effect.block
                self._committed(block.height, block.hash().hex(), len(block.txs))
            elif isinstance(effect, StoreSynced):
                for block, _ in effect.blocks:
                    self._committed(block.height, block.hash().hex(), 0)
            elif isinstance(effect, SendToPeers) and effect.message is not None:
                self._broadcast(effect.data, effect.message)
            elif isinstance(effect, RequestSync):
                self._request_sync(driver, effect.data)
            elif isinstance(effect, ReportEvidence):
                evidence = effect.evidence
                offender = self.world.by_validator_id.get(evidence.validator_id, "?")
                self.observe("evidence", offender=offender, height=evidence.height)
        due = driver.deadline
        if due is not None and due not in self._armed and self.up:
            self._armed.add(due)
            self.after(max(0.0, (due - self.clock.now() * 1000) / 1000), lambda: self._wake(due))

    def _committed(self, height: int, block: str, txs: int) -> None:
        self.observe("block_committed", height=height, block=block, txs=txs)

    # -- sending, equivocation -------------------------------------------------------

    def _broadcast(self, data: bytes, message: Proposal | Vote | Decided) -> None:
        twin = None if self.name not in self.world.byzantine else self._twin(message)
        for peer, link in sorted(self._links.items()):
            if not link.is_open:
                continue
            if twin is None or peer in self.world.byzantine:
                link.send(data)
                continue
            mine, other = (data, twin) if self.world.sides[peer] == 0 else (twin, data)
            link.send(mine)
            if self.rng.random() < BOTH_VERSIONS:
                link.send(other)

    def _twin(self, message: Proposal | Vote | Decided) -> bytes | None:
        """The conflicting version an equivocator shows some peers (cached per slot)."""
        if isinstance(message, Decided):
            return None
        kind = 0 if isinstance(message, Proposal) else int(message.kind)
        slot = (message.height, message.round, kind)
        if slot not in self._conflicts:
            conflict = self._conflict(message)
            if conflict is None:
                return None
            self._conflicts[slot] = encode_peer_message(PeerTag.CONSENSUS, conflict.to_bytes())
        return self._conflicts[slot]

    def _conflict(self, message: Proposal | Vote) -> Proposal | Vote | None:
        assert self.driver is not None
        engine = self.driver.engine
        if isinstance(message, Vote):
            other: bytes | None
            if message.block_hash is None:
                other = self.rng.randbytes(32)
            else:
                other = self.world.twins.get(message.block_hash)
            return Vote.create(
                self.bls_key, CHAIN_ID, message.kind, message.height, message.round,
                other, message.validator_index,
            )  # fmt: skip
        if message.pol_round >= 0 or message.height != engine.height:
            return None
        block = message.block
        tx = b"tx-twin-" + self.rng.randbytes(8).hex().encode()
        twin = engine.state.make_block(
            message.round, block.header.time_ms, [tx], engine.last_commit
        )
        self.world.twins[block.hash()] = twin.hash()
        return Proposal.create(self.bls_key, CHAIN_ID, message.round, -1, twin)

    # -- links ----------------------------------------------------------------------

    def _watchdog(self) -> None:
        """Drop silent links, (re)dial the peers this node dials."""
        now = self.clock.monotonic()
        for peer, link in list(self._links.items()):
            limit = LINK_IDLE if link.is_open else DIAL_TIMEOUT
            if link.closed or now - self._heard[peer] > limit:
                link.abort()
                del self._links[peer]
        for name in self.world.node_ids:
            if name > self.name and name not in self._links:
                handler = _PeerHandler(self, name)
                expected = self.world.node_ids[name]
                self._links[name] = self.dial(
                    name, handler, node_key=self.link_key, expected_peer=expected
                )
                self._heard[name] = now
        self.after(WATCHDOG, self._watchdog)

    def _accept(self, endpoint: Endpoint) -> None:
        self.answer(endpoint, _PeerHandler(self, None), node_key=self.link_key)

    def opened(self, handler: _PeerHandler, link: SimLink) -> None:
        """A link's handshake completed."""
        assert link.peer_key is not None
        peer = self.world.by_node_id.get(NodeId.derive(link.peer_key.to_bytes()))
        if handler.peer is None:
            if peer is None or peer >= self.name:
                link.abort()  # not a validator, or one we dial ourselves
                return
            handler.peer = peer
            old = self._links.get(peer)
            if old is not None and old is not link:
                old.abort()
            self._links[peer] = link
        self._heard[handler.peer] = self.clock.monotonic()

    def closed(self, handler: _PeerHandler, link: SimLink) -> None:
        """A link ended (reset, EOF, protocol error)."""
        if handler.peer is not None and self._links.get(handler.peer) is link:
            del self._links[handler.peer]

    def received(self, handler: _PeerHandler, link: SimLink, data: bytes) -> None:
        """One framed message from a peer."""
        if handler.peer is None or self.driver is None:
            return
        self._heard[handler.peer] = self.clock.monotonic()
        try:
            tag, payload = split_peer_message(data)
            request = SyncRequest.from_bytes(payload) if tag is PeerTag.SYNC_REQUEST else None
        except DchatError:
            return
        now = self._now_ms()
        if request is not None:
            response = serve_sync(self.durable.store, request)
            link.send(encode_peer_message(PeerTag.SYNC_RESPONSE, response.to_bytes()))
        elif tag is PeerTag.SYNC_RESPONSE:
            self._execute(self.driver.receive_sync(payload, now))
        elif tag is PeerTag.CONSENSUS:
            try:
                effects = self.driver.receive_consensus(payload, now)
            except DchatError:
                self.observe("rejected")
                return
            self._execute(effects)

    # -- block sync -----------------------------------------------------------------

    def _request_sync(self, driver: ValidatorDriver, data: bytes) -> None:
        live = sorted(peer for peer, link in self._links.items() if link.is_open)
        if not live:
            driver.sync_unsent()
            return
        self._links[self.rng.choice(live)].send(data)


class _PeerHandler:
    """Link events of one validator-to-validator link (``peer`` known once open)."""

    def __init__(self, node: ValidatorNode, peer: str | None) -> None:
        self.node = node
        self.peer = peer

    def on_open(self, link: SimLink) -> None:
        self.node.opened(self, link)

    def on_message(self, link: SimLink, data: bytes) -> None:
        self.node.received(self, link, data)

    def on_closed(self, link: SimLink, reason: str) -> None:
        self.node.closed(self, link)


# -- invariants ------------------------------------------------------------------------


class OneBlockPerHeight:
    """Agreement: no two validators ever commit different blocks at one height."""

    name = "no two blocks committed at one height"

    def __init__(self) -> None:
        self._committed: dict[int, tuple[str, str]] = {}

    def observe(self, obs: Observation) -> Iterable[Violation]:
        if obs.kind != "block_committed":
            return ()
        height, block = int(obs.data["height"]), str(obs.data["block"])
        first = self._committed.setdefault(height, (block, obs.node))
        if first[0] != block:
            detail = (
                f"{obs.node} committed {block[:16]} at height {height}, "
                f"{first[1]} committed {first[0][:16]}"
            )
            return (Violation(self.name, obs.time, detail),)
        return ()

    def finish(self, sim: Simulation) -> Iterable[Violation]:
        return ()


class ProgressAfterHealing:
    """Liveness: after healing, every validator commits past the highest height then."""

    name = "progress after healing"

    def __init__(self, validators: list[ValidatorNode], blocks: int = PROGRESS_BLOCKS) -> None:
        self._validators = validators
        self._blocks = blocks
        self.target: int | None = None

    def reached(self) -> bool:
        """Every validator is up and at the target height (False before healing)."""
        return self.target is not None and all(
            v.up and v.durable.store.height() >= self.target for v in self._validators
        )

    def observe(self, obs: Observation) -> Iterable[Violation]:
        if obs.kind == "heal" and self.target is None:
            top = max(v.durable.store.height() for v in self._validators)
            self.target = top + self._blocks
        return ()

    def finish(self, sim: Simulation) -> Iterable[Violation]:
        if self.target is None:
            return ()
        return [
            Violation(
                self.name,
                sim.now,
                f"{v.name} is at height {v.durable.store.height()} "
                f"(down)" * (not v.up) + f", {self.target} was due after healing",
            )
            for v in self._validators
            if not v.up or v.durable.store.height() < self.target
        ]


class EquivocationEvidence:
    """Every equivocator is caught by an honest validator; no honest one is accused."""

    name = "double-signing yields evidence, against the double-signer only"

    def __init__(self, byzantine: set[str]) -> None:
        self._byzantine = byzantine
        self._caught: set[str] = set()

    def observe(self, obs: Observation) -> Iterable[Violation]:
        if obs.kind != "evidence" or obs.node in self._byzantine:
            return ()
        offender = str(obs.data["offender"])
        if offender not in self._byzantine:
            detail = f"{obs.node} found evidence against honest {offender}"
            return (Violation(self.name, obs.time, detail),)
        self._caught.add(offender)
        return ()

    def finish(self, sim: Simulation) -> Iterable[Violation]:
        return [
            Violation(self.name, sim.now, f"nobody produced evidence against {name}")
            for name in sorted(self._byzantine - self._caught)
        ]


# -- building -------------------------------------------------------------------------


def build_chain_world(sim: Simulation, spec: ChainSpec) -> ChainWorld:
    """Create the validators (keys, genesis, skewed clocks) and the chain checkers."""
    keys = sim.rng("validators")
    skews = sim.rng("chain-clocks")
    links = [SigningKey.from_bytes(keys.randbytes(32)) for _ in range(spec.validators)]
    bls = [BlsSecretKey.from_seed(keys.randbytes(32)) for _ in range(spec.validators)]
    members = [
        Validator(bytes([i]) * 8, link.public_key, key.public_key, 10, key.prove_possession())
        for i, (link, key) in enumerate(zip(links, bls, strict=True))
    ]
    genesis = ChainState.genesis(
        CHAIN_ID, ValidatorSet.create(members), GENESIS_APP_HASH, int(EPOCH * 1000) - 1000
    )
    world = ChainWorld(sim, spec, genesis)
    for i in range(spec.validators):
        name = f"validator-{i}"
        clock = NodeClock(
            sim,
            offset=skews.uniform(-spec.skew, spec.skew),
            rate=1.0 + skews.uniform(-spec.drift, spec.drift),
        )
        node = ValidatorNode(sim, name, clock, world=world, link_key=links[i], bls_key=bls[i])
        world.validators.append(node)
        world.node_ids[name] = NodeId.derive(links[i].public_key.to_bytes())
        world.by_node_id[world.node_ids[name]] = name
        world.by_validator_id[members[i].validator_id] = name
    names = [v.name for v in world.validators]
    world.byzantine = set(keys.sample(names, spec.equivocators))
    honest = [name for name in names if name not in world.byzantine]
    keys.shuffle(honest)
    world.sides = {name: i % 2 for i, name in enumerate(honest)}
    sim.add_invariant(OneBlockPerHeight())
    sim.add_invariant(world.progress)
    sim.add_invariant(EquivocationEvidence(world.byzantine))
    for node in world.validators:
        sim.add_node(node)
    return world


def crash_proposer_hook(
    sim: Simulation, world: ChainWorld, chance: float, crash: Callable[[SimNode], None]
) -> Callable[[Observation], None]:
    """A ``block_committed`` hook: with ``chance``, crash the next height's proposer."""
    rng = sim.rng("leader-crash")

    def hook(obs: Observation) -> None:
        if sim.faults_enabled and rng.random() < chance:
            proposer = world.current_proposer()
            if proposer is not None and proposer.up:
                crash(proposer)

    return hook
