"""The validator driver: validators in memory commit, survive crashes, catch double-signers.

The multi-validator tests run four drivers over the in-memory network of
``_consensus_sim`` (its shell: deliveries, timers and store writes as events);
the rest drive one driver by hand and check its effects.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_chain import (
    ChainState,
    Checkpoint,
    ConsensusOutput,
    DchatChainError,
    InvalidMessageError,
    Mempool,
    Persist,
    ScheduleTimeout,
    SyncNeeded,
)
from dchat_chain._consensus_sim import CHAIN_ID, SIM_CONFIG, HashApp, Simulation, genesis_keys
from dchat_chain._validator_driver import _superseded
from dchat_chain.lowlevel import (
    MAX_GOSSIP_TXS,
    Decided,
    DriverEffect,
    MemoryBlockStore,
    PeerTag,
    ReportEvidence,
    RequestSync,
    SaveCheckpoint,
    SendToPeers,
    Step,
    StoreBlock,
    StoreSynced,
    SyncRequest,
    TxMeta,
    ValidatorDriver,
    Vote,
    VoteKind,
    decode_txs,
    encode_peer_message,
    encode_txs,
    resume_point,
    serve_sync,
    split_peer_message,
    store_effect,
)
from dchat_core import PeerError
from dchat_testing import hostile_bytes

KEYS, VALIDATORS = genesis_keys(4)
GENESIS = ChainState.genesis(CHAIN_ID, VALIDATORS, HashApp().app_hash, 0)
CONFIG = replace(SIM_CONFIG, rebroadcast_ms=10**9)  # no re-sends muddling the effects


class ManySenders(HashApp):
    """Each transaction is its own sender, so the mempool holds many."""

    def tx_meta(self, tx: bytes) -> TxMeta:
        meta = super().tx_meta(tx)
        return TxMeta(meta.tx_hash, meta.tx_hash, 0, 0, meta.size)


def driver(index: int = 0, **options: int) -> ValidatorDriver:
    app = ManySenders()
    return ValidatorDriver(
        state=GENESIS,
        app=app,
        mempool=Mempool(app),
        key=KEYS[index],
        config=CONFIG,
        **options,  # type: ignore[arg-type]
    )


def heights(sim: Simulation, nodes: range | list[int]) -> list[int]:
    return [len(sim.nodes[i].decided) for i in nodes]


def agree(sim: Simulation) -> None:
    top = max(len(n.decided) for n in sim.nodes)
    for height in range(1, top + 1):
        assert len({n.decided[height] for n in sim.nodes if height in n.decided}) == 1


# -- four validators in memory ----------------------------------------------------------


def test_four_validators_commit_blocks_and_store_them() -> None:
    sim = Simulation(1)
    sim.start()
    sim.run(30_000, target_height=5)
    assert min(heights(sim, range(4))) >= 5
    agree(sim)
    for node in sim.nodes:
        assert node.store.height() == len(node.decided)
        assert node.store.load_checkpoint() is not None


def test_one_crashed_validator_does_not_stop_the_others() -> None:
    sim = Simulation(2)
    sim.crash(0, 3, restart_ms=10**9)  # down for the whole run
    sim.start()
    sim.run(3_000)
    assert min(heights(sim, range(3))) >= 5
    assert heights(sim, [3]) == [0]
    agree(sim)


def test_two_crashed_validators_halt_the_chain_until_they_return() -> None:
    sim = Simulation(3)
    sim.start()
    sim.run(30_000, target_height=3)
    crash_at = sim.now + 1
    sim.crash(crash_at, 2, restart_ms=crash_at + 4_000)
    sim.crash(crash_at, 3, restart_ms=crash_at + 4_000)
    sim.run(crash_at + 500)  # a height already under way may still finish
    halted = heights(sim, [0, 1])
    sim.run(crash_at + 3_900)
    assert heights(sim, [0, 1]) == halted  # 2 of 4 is no quorum: nothing decided
    sim.run(crash_at + 20_000, target_height=max(halted) + 3)
    resumed = heights(sim, range(4))
    assert min(resumed) >= max(halted) + 3, (halted, resumed)  # the restarted caught up
    agree(sim)


def test_a_double_voting_validator_is_caught_with_evidence() -> None:
    sim = Simulation(4, roles={2: "equivocator"})
    sim.start()
    sim.run(30_000, target_height=3)
    caught = [e for i in (0, 1, 3) for e in sim.nodes[i].evidence]
    assert caught
    assert {e.validator_id for e in caught} == {VALIDATORS.validators[2].validator_id}
    caught[0].verify(VALIDATORS, CHAIN_ID)
    agree(sim)


def test_conflicting_votes_handed_to_one_driver_become_a_report() -> None:
    d = driver(0)
    d.start(0)
    first = Vote.create(KEYS[1], CHAIN_ID, VoteKind.PREVOTE, 1, 0, b"\x01" * 32, 1)
    second = Vote.create(KEYS[1], CHAIN_ID, VoteKind.PREVOTE, 1, 0, b"\x02" * 32, 1)
    assert not any(isinstance(e, ReportEvidence) for e in d.receive_consensus(first.to_bytes(), 1))
    effects = d.receive_consensus(second.to_bytes(), 2)
    [report] = [e for e in effects if isinstance(e, ReportEvidence)]
    assert report.evidence.validator_id == VALIDATORS.validators[1].validator_id


# -- one driver by hand -----------------------------------------------------------------


def test_effects_carry_tagged_wire_bytes_and_a_checkpoint_first() -> None:
    d = driver(0)
    effects = d.start(0)
    assert isinstance(effects[0], SaveCheckpoint)
    Checkpoint.from_bytes(effects[0].data)
    for effect in effects:
        if isinstance(effect, SendToPeers):
            assert effect.message is not None
            assert effect.data == bytes([PeerTag.CONSENSUS]) + effect.message.to_bytes()
    assert d.deadline is not None  # the propose timeout


def test_a_checkpoint_replaced_before_anything_leaves_is_not_reported() -> None:
    def persist(round_: int) -> Persist:
        return Persist(Checkpoint(height=1, round=round_, step=Step.PROPOSE))

    outputs: list[ConsensusOutput] = [persist(0), ScheduleTimeout(5), persist(1)]
    assert [_superseded(outputs, i) for i in (0, 2)] == [True, False]
    assert not _superseded([persist(0), SyncNeeded(3), persist(1)], 0)


def test_timeouts_fire_only_when_due() -> None:
    d = driver(0)
    d.start(0)
    due = d.deadline
    assert due is not None
    assert d.tick(due - 1) == []
    assert d.deadline == due
    d.tick(due)
    assert d.deadline != due


def _decided_chain(height: int) -> MemoryBlockStore:
    sim = Simulation(5)
    sim.start()
    sim.run(60_000, target_height=height)
    return sim.nodes[0].store


def test_block_sync_stores_the_batch_and_jumps_the_engine_ahead() -> None:
    store = _decided_chain(6)
    d = driver(3, sync_batch=4)
    d.start(0)
    response = serve_sync(store, SyncRequest(1, 4))
    effects = d.receive_sync(response.to_bytes(), 10)
    assert isinstance(effects[0], StoreSynced)
    assert [b.height for b, _ in effects[0].blocks] == [1, 2, 3, 4]
    assert d.engine.height == 5
    [again] = [e for e in effects if isinstance(e, RequestSync)]  # a full batch: ask for more
    assert again.request == SyncRequest(5, 4)
    assert split_peer_message(again.data) == (PeerTag.SYNC_REQUEST, again.request.to_bytes())


def test_a_stale_or_malformed_sync_response_changes_nothing() -> None:
    store = _decided_chain(3)
    d = driver(3)
    d.start(0)
    assert d.receive_sync(b"\xff garbage", 1) == []
    assert d.rejected == 1
    stale = serve_sync(store, SyncRequest(2, 10))  # does not start at our height
    assert d.receive_sync(stale.to_bytes(), 2) == []
    assert d.engine.height == 1


def test_one_sync_request_in_flight_until_answered_or_unsent() -> None:
    d = driver(0, sync_retry_ms=5000)
    d.start(0)
    assert len(d._request_sync(100)) == 1
    assert d._request_sync(200) == []  # still waiting for the answer
    d.sync_unsent()  # it reached no peer
    assert len(d._request_sync(300)) == 1
    assert len(d._request_sync(5300)) == 1  # retried after sync_retry_ms


def test_pacing_holds_outputs_after_a_decision_and_queues_messages() -> None:
    store = _decided_chain(3)

    def decided(height: int) -> bytes:
        block, certificate = store.block(height), store.certificate(height)
        assert block is not None
        assert certificate is not None
        return Decided(block, certificate).to_bytes()

    def stored(effects: list[DriverEffect]) -> list[int]:
        return [e.block.height for e in effects if isinstance(e, StoreBlock)]

    d = driver(3, block_interval_ms=1000)
    d.start(0)
    assert stored(d.receive_consensus(decided(1), 100)) == [1]  # the first is not paced
    assert not d.holding
    assert stored(d.receive_consensus(decided(2), 200)) == [2]
    assert d.holding
    assert d.deadline == 1100
    assert d.wait_s(1000) == 0.1
    assert d.wait_s(2000) == 0
    assert d.receive_consensus(decided(3), 300) == []  # queued, not refused
    assert d.tick(1099) == []
    assert stored(d.tick(1100)) == [3]  # the queued message ran when the hold ended
    assert d.deadline == 2100
    assert d.engine.height == 4
    # Commit latency: from each height's start (the start, a decision, a hold's end) to its
    # decision: 0.1 s, 0.1 s, then 0 s for the height that began when the hold ended at 1100.
    assert (d.commit_latency.count, d.commit_latency.sum) == (3, pytest.approx(0.2))
    assert dict(d.commit_latency.cumulative())[0.005] == 1


def test_resume_point_and_store_effect_restart_where_the_store_left_off() -> None:
    store = MemoryBlockStore()
    d = driver(0)
    for effect in d.start(0):
        store_effect(store, effect)
    state, last, checkpoint = resume_point(store, HashApp(), GENESIS)
    assert (state.height, last) == (1, None)
    assert checkpoint is not None
    assert checkpoint.height == 1


# -- transactions and gossip ------------------------------------------------------------


def test_submitted_transactions_are_gossiped_in_batches() -> None:
    d = driver(0)
    txs = [b"tx-%d" % i for i in range(MAX_GOSSIP_TXS + 3)]
    for tx in txs:
        d.submit(tx)
    messages = d.take_gossip()
    assert len(messages) == 2
    batches = [split_peer_message(m) for m in messages]
    assert all(tag is PeerTag.TXS for tag, _ in batches)
    assert [tx for _, payload in batches for tx in decode_txs(payload)] == txs
    assert d.take_gossip() == []
    with pytest.raises(DchatChainError):
        d.submit(b"not a tx")


def test_peers_transactions_are_admitted_silently() -> None:
    d = driver(0)
    assert d.admit([b"tx-a", b"junk", b"tx-a", b"tx-b"]) == 2
    assert len(d.mempool) == 2
    assert d.take_gossip() == []  # a peer's transactions are not re-gossiped


def test_without_gossip_nothing_queues() -> None:
    app = HashApp()
    d = ValidatorDriver(state=GENESIS, app=app, mempool=Mempool(app), key=KEYS[0], gossip=False)
    d.submit(b"tx-a")
    assert len(d.mempool) == 1
    assert d.take_gossip() == []


# -- hostile input ----------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x05abc", b"\xff"])
def test_unknown_or_empty_link_messages_are_typed_errors(data: bytes) -> None:
    with pytest.raises(InvalidMessageError):
        split_peer_message(data)


@settings(max_examples=200, deadline=None)
@given(hostile_bytes(max_size=300))
def test_arbitrary_peer_bytes_give_typed_errors_or_nothing(data: bytes) -> None:
    d = driver(0)
    d.start(0)
    try:
        tag, payload = split_peer_message(data)
    except InvalidMessageError:
        return
    rejected = d.rejected
    if tag is PeerTag.CONSENSUS:
        try:
            d.receive_consensus(payload, 1)
        except PeerError:
            assert d.rejected == rejected + 1
    elif tag is PeerTag.TXS:
        with contextlib.suppress(InvalidMessageError):
            decode_txs(payload)
    elif tag is PeerTag.SYNC_REQUEST:
        with contextlib.suppress(DchatChainError):
            SyncRequest.from_bytes(payload)
    else:
        d.receive_sync(payload, 1)  # refusals are counted, never raised
    assert d.engine.height == 1


@given(st.lists(st.binary(max_size=64), max_size=50))
def test_gossip_round_trips(txs: list[bytes]) -> None:
    tag, payload = split_peer_message(encode_txs(txs))
    assert tag is PeerTag.TXS
    assert decode_txs(payload) == txs
    assert encode_peer_message(PeerTag.TXS, payload) == encode_txs(txs)


def test_gossip_that_is_not_a_list_of_transactions_is_refused() -> None:
    for payload in (b"", b"\xa0", encode_txs([])[1:] + b"\x00", b"\x81\x01"):
        with pytest.raises(InvalidMessageError):
            decode_txs(payload)
