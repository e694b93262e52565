"""Each rule of the Tendermint engine, driven by hand-made messages, and hostile input."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_chain import (
    Block,
    Broadcast,
    ChainState,
    Checkpoint,
    CommitCertificate,
    ConsensusEngine,
    ConsensusOutput,
    DchatChainError,
    Decision,
    EvidenceFound,
    InvalidMessageError,
    Persist,
)
from dchat_chain._consensus_messages import decided_height
from dchat_chain._consensus_sim import CHAIN_ID, SIM_CONFIG, HashApp, genesis_keys
from dchat_chain.lowlevel import (
    Decided,
    InvalidProposalError,
    InvalidVoteError,
    Proposal,
    SignatureCache,
    Step,
    Vote,
    VoteKind,
)
from dchat_core import PeerError
from dchat_testing import hostile_bytes

KEYS, VALIDATORS = genesis_keys(4)
GENESIS = ChainState.genesis(CHAIN_ID, VALIDATORS, HashApp().app_hash, 0)
INDEX = {v.bls_public_key: i for i, v in enumerate(VALIDATORS.validators)}
PROPOSER = [INDEX[VALIDATORS.proposer(r).bls_public_key] for r in range(4)]
ME = PROPOSER[3]  # rounds 0-2 are proposed by others
OTHERS = [i for i in range(4) if i != ME]
CACHE = SignatureCache()
CONFIG = replace(SIM_CONFIG, rebroadcast_ms=10**9)  # no re-sends muddling the outputs


def engine(checkpoint: Checkpoint | None = None) -> tuple[ConsensusEngine, list[ConsensusOutput]]:
    e = ConsensusEngine(
        state=GENESIS,
        app=HashApp(),
        block_source=lambda n, size: [b"tx-a"],
        key=KEYS[ME],
        config=CONFIG,
        checkpoint=checkpoint,
        signatures=CACHE,
    )
    return e, e.start(0)


def block(round_: int, tx: bytes = b"tx-1") -> Block:
    return GENESIS.make_block(round_, 10, [tx], None)


def proposal(round_: int, b: Block, pol: int = -1) -> Proposal:
    return Proposal.create(KEYS[PROPOSER[round_]], CHAIN_ID, round_, pol, b)


def vote(i: int, kind: VoteKind, round_: int, block_hash: bytes | None) -> Vote:
    return Vote.create(KEYS[i], CHAIN_ID, kind, 1, round_, block_hash, i)


def sent_votes(outputs: list[ConsensusOutput]) -> list[Vote]:
    return [o.message for o in outputs if isinstance(o, Broadcast) and isinstance(o.message, Vote)]


def feed(
    e: ConsensusEngine, messages: list[Proposal | Vote], now: int = 1
) -> list[ConsensusOutput]:
    out: list[ConsensusOutput] = []
    for m in messages:
        out += e.receive(m.to_bytes(), now)
    return out


def to_round(e: ConsensusEngine, round_: int) -> None:
    # f+1 messages from a higher round move us there (round skip).
    feed(e, [vote(i, VoteKind.PRECOMMIT, round_, None) for i in OTHERS[:2]])
    assert e.round == round_


# -- the rules ------------------------------------------------------------------------------


def test_prevotes_a_valid_proposal() -> None:
    e, _ = engine()
    b = block(0)
    [v] = sent_votes(feed(e, [proposal(0, b)]))
    assert (v.kind, v.round, v.block_hash) == (VoteKind.PREVOTE, 0, b.hash())
    assert e.step is Step.PREVOTE


def test_prevotes_nil_for_an_invalid_block() -> None:
    e, _ = engine()
    [v] = sent_votes(feed(e, [proposal(0, block(0, tx=b"not-a-sim-tx"))]))
    assert v.block_hash is None


def test_timeout_propose_prevotes_nil_and_timeout_prevote_precommits_nil() -> None:
    e, _ = engine()
    [v] = sent_votes(e.tick(CONFIG.propose_ms))
    assert (v.kind, v.block_hash) == (VoteKind.PREVOTE, None)
    b = block(0)
    # 2f+1 prevotes of mixed kinds start timeout_prevote, which precommits nil.
    feed(
        e,
        [
            vote(OTHERS[0], VoteKind.PREVOTE, 0, b.hash()),
            vote(OTHERS[1], VoteKind.PREVOTE, 0, None),
        ],
    )
    [p] = sent_votes(e.tick(CONFIG.propose_ms + CONFIG.prevote_ms + 1))
    assert (p.kind, p.block_hash) == (VoteKind.PRECOMMIT, None)


def test_a_polka_locks_and_precommits() -> None:
    e, _ = engine()
    b = block(0)
    out = feed(e, [proposal(0, b), *(vote(i, VoteKind.PREVOTE, 0, b.hash()) for i in OTHERS)])
    assert [(v.kind, v.block_hash) for v in sent_votes(out)][-1] == (VoteKind.PRECOMMIT, b.hash())
    assert e.locked == (0, b)
    assert any(isinstance(o, Persist) and o.checkpoint.locked_block == b for o in out)


def test_a_polka_is_persisted_once_before_the_precommit_leaves() -> None:
    e, _ = engine()
    b = block(0)
    feed(e, [proposal(0, b)])
    out = e.receive(vote(OTHERS[0], VoteKind.PREVOTE, 0, b.hash()), 0)
    out += e.receive(vote(OTHERS[1], VoteKind.PREVOTE, 0, b.hash()), 0)
    kinds = [type(o) for o in out if isinstance(o, Persist | Broadcast)]
    assert kinds == [Persist, Broadcast]  # one durable write, then the precommit
    [checkpoint] = [o.checkpoint for o in out if isinstance(o, Persist)]
    assert (checkpoint.locked_block, checkpoint.valid_block) == (b, b)
    assert [v.kind for v in checkpoint.votes] == [VoteKind.PREVOTE, VoteKind.PRECOMMIT]


def test_a_nil_polka_precommits_nil() -> None:
    e, _ = engine()
    feed(e, [proposal(0, block(0))])
    out = feed(e, [vote(i, VoteKind.PREVOTE, 0, None) for i in OTHERS])
    assert [(v.kind, v.block_hash) for v in sent_votes(out)] == [(VoteKind.PRECOMMIT, None)]


def locked_on_a() -> tuple[ConsensusEngine, Block]:
    e, _ = engine()
    a = block(0, b"tx-a")
    feed(e, [proposal(0, a), *(vote(i, VoteKind.PREVOTE, 0, a.hash()) for i in OTHERS)])
    assert e.locked == (0, a)
    return e, a


def test_locking_prevents_prevoting_another_block() -> None:
    e, _ = locked_on_a()
    to_round(e, 1)
    [v] = sent_votes(feed(e, [proposal(1, block(1, b"tx-b"))]))
    assert (v.kind, v.round, v.block_hash) == (VoteKind.PREVOTE, 1, None)


def test_locked_validator_prevotes_its_locked_block_again() -> None:
    e, a = locked_on_a()
    to_round(e, 1)
    [v] = sent_votes(feed(e, [proposal(1, a, pol=0)]))
    assert v.block_hash == a.hash()


def test_a_later_polka_unlocks() -> None:
    e, _ = locked_on_a()
    b = block(1, b"tx-b")
    to_round(e, 1)
    feed(e, [*(vote(i, VoteKind.PREVOTE, 1, b.hash()) for i in OTHERS)])
    to_round(e, 2)
    [v] = sent_votes(feed(e, [proposal(2, b, pol=1)]))
    assert v.block_hash == b.hash()


def test_a_reproposal_without_its_polka_waits_then_prevotes_nil() -> None:
    e, _ = engine()
    b = block(0)
    to_round(e, 1)
    assert sent_votes(feed(e, [proposal(1, b, pol=0)])) == []
    [v] = sent_votes(e.tick(10_000))
    assert v.block_hash is None


def test_round_skip_needs_more_than_a_third() -> None:
    e, _ = engine()
    feed(e, [vote(OTHERS[0], VoteKind.PREVOTE, 5, None)])
    assert e.round == 0  # a quarter of the power is not enough
    feed(e, [vote(OTHERS[1], VoteKind.PRECOMMIT, 5, None)])
    assert e.round == 5


def test_quorum_precommits_decide_with_a_verifying_certificate() -> None:
    e, _ = engine()
    b = block(0)
    out = feed(e, [proposal(0, b), *(vote(i, VoteKind.PRECOMMIT, 0, b.hash()) for i in OTHERS)])
    [decision] = [o for o in out if isinstance(o, Decision)]
    assert decision.block == b
    decision.certificate.verify(VALIDATORS, CHAIN_ID)
    assert e.height == 2
    assert e.round == 0


def test_equivocation_yields_verifiable_evidence() -> None:
    e, _ = engine()
    b = block(0)
    out = feed(
        e,
        [
            vote(OTHERS[0], VoteKind.PREVOTE, 0, b.hash()),
            vote(OTHERS[0], VoteKind.PREVOTE, 0, None),
        ],
    )
    [found] = [o.evidence for o in out if isinstance(o, EvidenceFound)]
    found.verify(VALIDATORS, CHAIN_ID)
    assert found.validator_id == VALIDATORS.validators[OTHERS[0]].validator_id


def test_a_restarted_validator_never_signs_a_different_vote() -> None:
    e, _ = engine()
    out = e.tick(CONFIG.propose_ms)  # prevote nil
    [checkpoint] = [o.checkpoint for o in out if isinstance(o, Persist)][-1:]
    restarted, start = engine(Checkpoint.from_bytes(checkpoint.to_bytes()))
    assert [v.block_hash for v in sent_votes(start)] == [None]  # re-sent, not re-decided
    assert sent_votes(feed(restarted, [proposal(0, block(0))])) == []


def decided_block() -> Decided:
    e, _ = engine()
    b = block(0)
    out = feed(e, [proposal(0, b), *(vote(i, VoteKind.PRECOMMIT, 0, b.hash()) for i in OTHERS)])
    [decision] = [o for o in out if isinstance(o, Decision)]
    return Decided(decision.block, decision.certificate)


DECIDED = decided_block()


def test_a_decided_block_lets_a_lagging_engine_catch_up_and_its_resend_is_dropped() -> None:
    decided = decided_block()
    data = decided.to_bytes()
    e, _ = engine()
    assert any(isinstance(o, Decision) for o in e.receive(data, 1))
    assert e.height == 2
    assert e.receive(data, 2) == []  # the periodic re-send, now below our height
    # Stale by its own account: dropped whatever follows the height...
    assert e.receive(data[:-40], 3) == []
    fresh, _ = engine()  # ...but at its own height it is decoded, strictly
    with pytest.raises(InvalidMessageError):
        fresh.receive(data[:-40], 3)


@given(st.integers(1, 2**62))
def test_decided_height_reads_the_height_of_any_decided_message(height: int) -> None:
    decided = DECIDED
    cert = decided.certificate
    moved = CommitCertificate(height, cert.round, cert.block_hash, cert.signers, cert.signature)
    data = Decided(decided.block, moved).to_bytes()
    assert decided_height(data) == height
    assert decided_height(data[:-1]) == height  # the rest is not looked at
    assert decided_height(proposal(0, block(0)).to_bytes()) is None


@pytest.mark.parametrize("cut", [0, 10, 54, 55, 56, 57])
def test_decided_height_of_a_truncated_prefix_is_none(cut: int) -> None:
    cert = DECIDED.certificate
    moved = CommitCertificate(1000, cert.round, cert.block_hash, cert.signers, cert.signature)
    data = Decided(DECIDED.block, moved).to_bytes()
    assert decided_height(data[:cut]) is None
    assert decided_height(data[:58]) == 1000  # head 0x19 and two bytes at offset 55


# -- hostile input: typed errors, no state change -------------------------------------------


def snapshot(e: ConsensusEngine) -> tuple[object, ...]:
    return (e.height, e.round, e.step, e.locked, e.state)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (b"\xff\x00", InvalidMessageError),
        (b"\xa1ate", InvalidMessageError),
        (Vote.create(KEYS[0], "other-chain", VoteKind.PREVOTE, 1, 0, None, 0), InvalidVoteError),
        (Vote(VoteKind.PREVOTE, 1, 0, None, 1, KEYS[0].sign(b"x")), InvalidVoteError),
        (Vote.create(KEYS[0], CHAIN_ID, VoteKind.PREVOTE, 1, 0, None, 3), InvalidVoteError),
        (Proposal.create(KEYS[PROPOSER[1]], CHAIN_ID, 0, -1, block(0)), InvalidProposalError),
        (Proposal.create(KEYS[PROPOSER[0]], CHAIN_ID, 0, 0, block(0)), InvalidProposalError),
    ],
)
def test_forged_or_malformed_messages_are_refused(message: object, error: type[Exception]) -> None:
    e, _ = engine()
    before = snapshot(e)
    data = message if isinstance(message, bytes) else message.to_bytes()  # type: ignore[attr-defined]
    with pytest.raises(error):
        e.receive(data, 1)
    assert snapshot(e) == before


def test_out_of_range_index_is_refused() -> None:
    e, _ = engine()
    with pytest.raises(InvalidVoteError):
        e.receive(Vote(VoteKind.PREVOTE, 1, 0, None, 9, KEYS[0].sign(b"x")).to_bytes(), 1)


@settings(max_examples=300, deadline=None)
@given(hostile_bytes(max_size=200))
def test_random_bytes_never_crash_the_engine(data: bytes) -> None:
    e, _ = engine()
    before = snapshot(e)
    with pytest.raises(PeerError) as info:
        e.receive(data, 1)
    assert isinstance(info.value, DchatChainError)
    assert snapshot(e) == before


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2000), st.integers(0, 7))
def test_bit_flipped_proposals_are_refused_or_ignored(position: int, bit: int) -> None:
    # A flip in the signed parts breaks the signature or the body/header match;
    # a flip in the height makes it another height's message, which waits unverified.
    e, _ = engine()
    data = bytearray(proposal(0, block(0)).to_bytes())
    data[position % len(data)] ^= 1 << bit
    error: DchatChainError | None = None
    try:
        outputs = e.receive(bytes(data), 1)
    except DchatChainError as exc:
        error, outputs = exc, []
    assert error is None or isinstance(error, PeerError)
    assert e.step is Step.PROPOSE
    assert sent_votes(outputs) == []


def test_a_lone_validator_decides_one_height_per_call() -> None:
    """With one validator every quorum is its own vote: a decision must not start a chain of them.

    Before, ``start`` decided height after height inside one call and never
    returned (a one-validator network never served its API).
    """
    keys, validators = genesis_keys(1)
    alone = ConsensusEngine(
        state=ChainState.genesis(CHAIN_ID, validators, HashApp().app_hash, 0),
        app=HashApp(),
        block_source=lambda n, size: [b"tx-a"],
        key=keys[0],
        config=CONFIG,
        signatures=CACHE,
    )
    outputs = alone.start(0)
    assert [type(o) for o in outputs].count(Decision) == 1
    assert alone.height == 2
    for now in range(1, 6):  # each call goes on with the height the last one began
        outputs = alone.tick(now)
        assert [type(o) for o in outputs].count(Decision) == 1
        assert alone.height == now + 2


def test_the_signature_cache_checks_each_aggregate_once_and_never_passes_a_bad_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dchat_chain._consensus_votes as votes_module
    from dchat_crypto import BadSignatureError, bls_aggregate

    message, keys = b"commit", [k.public_key for k in KEYS[:3]]
    good = bls_aggregate([k.sign(message) for k in KEYS[:3]])
    single = KEYS[0].sign(message)
    cache = SignatureCache()
    cache.verify(keys[0], message, single)
    with pytest.raises(BadSignatureError):  # a single key's success is not an aggregate's
        cache.verify_aggregate(keys[:1] + keys[1:2], message, single)
    for _ in range(2):  # a failure is not remembered
        with pytest.raises(BadSignatureError):
            cache.verify_aggregate(keys, b"other", good)
    checks: list[int] = []
    real = votes_module.bls_fast_aggregate_verify
    monkeypatch.setattr(
        votes_module,
        "bls_fast_aggregate_verify",
        lambda *args: checks.append(1) or real(*args),
    )
    cache.verify_aggregate(keys, message, good)
    cache.verify_aggregate(keys, message, good)
    assert checks == [1]  # the second certificate check was a lookup
