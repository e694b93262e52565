"""Relay incentives on the currency chain: rewards from median scores, strikes, faults, slashing.

Four validators' applications are fed the same blocks (what consensus gives
them) and must end in the same state; the reports in those blocks come from
the validators' own prober scores.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_chain import CurrencyChainApp, Transaction
from dchat_chain.lowlevel import (
    BlockContext,
    InvalidEvidenceError,
    RelayFaultEvidence,
    ValidatorBook,
)
from dchat_core import canonical_decode, canonical_encode
from dchat_crypto import BlsSecretKey, SigningKey

from .conftest import ACCOUNTS, BLS
from .conftest import PK as CHAIN_PK

PK0 = CHAIN_PK[0]

VALIDATORS = [SigningKey(bytes([40 + i]) * 32) for i in range(4)]
VBLS = [BlsSecretKey.from_seed(bytes([50 + i]) * 32) for i in range(4)]
GOOD, BAD, USER = (SigningKey(bytes([60 + i]) * 32) for i in range(3))
PK = {k: k.public_key.to_bytes() for k in [*VALIDATORS, GOOD, BAD, USER]}
EPOCH = 4


def genesis(**params: int) -> bytes:
    validators = [
        [PK[k], b.public_key.to_bytes(), b.prove_possession().to_bytes(), 1_000]
        for k, b in zip(VALIDATORS, VBLS, strict=True)
    ]
    doc = {
        "v": 1,
        "kind": "currency",
        "chain_id": "cur",
        "params": {
            "epoch_blocks": EPOCH,
            "relay_reward_per_epoch": 1_000,
            "min_relay_stake": 10,
            "relay_fault_epochs": 2,
            "unbonding_blocks": 50,
            **params,
        },
        "accounts": [[PK[k], 100_000] for k in PK],
        "validators": validators,
        "relay_pool": 100_000,
    }
    return canonical_encode(doc)


class Network:
    """Four validators' applications, fed the same blocks."""

    def __init__(self, **params: int) -> None:
        self.apps = [CurrencyChainApp.from_genesis(genesis(**params)) for _ in VALIDATORS]
        self.nonces: dict[SigningKey, int] = {}

    def tx(self, key: SigningKey, kind: str, body: dict[str, Any]) -> bytes:
        nonce = self.nonces.get(key, 0)
        self.nonces[key] = nonce + 1
        return Transaction.create(key, chain_id="cur", nonce=nonce, fee=0, kind=kind, body=body).raw

    def block(self, *txs: bytes) -> list[int]:
        height = self.apps[0].height + 1
        context = BlockContext("cur", height, height * 1000, b"")
        results = [app.apply_block(context, txs) for app in self.apps]
        hashes = {app.commit() for app in self.apps}
        assert len(hashes) == 1  # every validator's engine ends in the same state
        return [r.code for r in results[0].tx_results]

    def to_epoch_end(self) -> None:
        """Blocks up to the last of the current epoch (the next block pays it)."""
        while (self.apps[0].height + 2) % EPOCH:
            self.block()

    def epoch(self, scores: list[dict[bytes, int]]) -> None:
        """One epoch: each validator files its report, then the epoch closes."""
        self.to_epoch_end()
        epoch = (self.apps[0].height + 1) // EPOCH
        reports = [
            self.tx(v, "uptime_report", {"epoch": epoch, "scores": sorted(map(list, s.items()))})
            for v, s in zip(VALIDATORS, scores, strict=True)
        ]
        assert self.block(*reports) == [0] * len(reports)
        self.block()  # the first block of the next epoch pays and counts strikes

    def balance(self, key: SigningKey) -> int:
        return self.apps[0].account(PK[key]).balance

    def record(self, key: bytes) -> Any:
        raw = self.apps[0].state.committed_get(key)
        return None if raw is None else canonical_decode(raw)


def bonded(net: Network) -> Network:
    assert net.block(
        net.tx(GOOD, "relay_bond", {"amount": 1_000}), net.tx(BAD, "relay_bond", {"amount": 1_000})
    ) == [0, 0]
    return net


def test_an_honest_relay_earns_and_a_failing_one_is_recorded_then_slashed() -> None:
    net = bonded(Network())
    good, bad = PK[GOOD], PK[BAD]
    # Three validators saw BAD fail its probes; one lies for it: the median ignores the liar.
    honest = {good: 10_000, bad: 1_000}
    scores = [honest, honest, honest, {good: 0, bad: 10_000}]
    before = net.balance(GOOD)
    net.epoch(scores)
    earned = net.balance(GOOD) - before
    assert earned > 0
    assert net.record(b"rstrike/" + bad) == 1
    assert net.record(b"rstrike/" + good) is None
    net.epoch(scores)
    assert net.balance(GOOD) - before > earned  # rewards keep flowing to the honest relay
    fault_epoch = net.record(b"rfault/" + bad)
    assert fault_epoch is not None
    assert net.record(b"rfaults") == [bad]
    evidence = RelayFaultEvidence(bad, fault_epoch)
    wrong = RelayFaultEvidence(bad, fault_epoch + 1)
    reporter = VALIDATORS[0]
    reporter_before = net.balance(reporter)
    codes = net.block(
        net.tx(reporter, "slash", {"evidence": wrong.to_bytes()}),
        net.tx(reporter, "slash", {"evidence": evidence.to_bytes()}),
        net.tx(VALIDATORS[1], "slash", {"evidence": evidence.to_bytes()}),  # once only
    )
    assert codes[0] != 0
    assert codes[1] == 0
    assert codes[2] != 0
    assert net.record(b"relay/" + bad) == 900  # 10 % of the bond
    assert net.record(b"relay/" + good) == 1_000
    assert net.balance(reporter) - reporter_before == 10  # 10 % of what was taken
    assert net.record(b"rfault/" + bad) is None
    assert net.record(b"rfaults") is None


def test_a_good_epoch_clears_the_strikes_and_zero_epochs_disables_faults() -> None:
    net = bonded(Network())
    bad = PK[BAD]
    low, high = {bad: 0}, {bad: 9_000}
    net.epoch([low] * 4)
    net.epoch([high] * 4)
    assert net.record(b"rstrike/" + bad) is None
    net.epoch([low] * 4)
    assert net.record(b"rfault/" + bad) is None  # one strike again, not two in a row
    off = bonded(Network(relay_fault_epochs=0))
    for _ in range(3):
        off.epoch([low] * 4)
    assert off.record(b"rfault/" + bad) is None
    assert off.record(b"rstrike/" + bad) is None


def test_an_unbonding_relay_does_not_escape_the_penalty() -> None:
    net = bonded(Network())
    bad = PK[BAD]
    net.epoch([{bad: 0}] * 4)
    net.epoch([{bad: 0}] * 4)
    assert net.block(net.tx(BAD, "relay_unbond", {"amount": 1_000})) == [0]
    epoch = net.record(b"rfault/" + bad)
    assert net.block(
        net.tx(USER, "slash", {"evidence": RelayFaultEvidence(bad, epoch).to_bytes()})
    ) == [0]
    assert net.record(b"unb/" + bad)[0][1] == 900


def test_late_params_leave_an_older_genesis_state_root_alone() -> None:
    doc = canonical_decode(genesis())
    del doc["params"]["relay_fault_epochs"]
    app = CurrencyChainApp.from_genesis(canonical_encode(doc))
    assert "relay_fault_epochs" not in app.params()
    given = CurrencyChainApp.from_genesis(genesis())
    assert given.params()["relay_fault_epochs"] == 2


def test_evidence_round_trips_and_garbage_is_typed() -> None:
    evidence = RelayFaultEvidence(b"\x07" * 32, 12)
    assert RelayFaultEvidence.from_bytes(evidence.to_bytes()) == evidence
    assert len(evidence.hash()) == 32
    with pytest.raises(InvalidEvidenceError):
        RelayFaultEvidence.from_bytes(canonical_encode({"t": "duplicate-vote"}))


@given(st.binary(max_size=300))
def test_arbitrary_evidence_bytes_are_a_typed_error(data: bytes) -> None:
    with contextlib.suppress(InvalidEvidenceError):
        RelayFaultEvidence.from_bytes(data)


# -- the validator book -------------------------------------------------------------


def test_the_book_files_the_report_and_pending_slashes(validator_chain: Any) -> None:
    chain = validator_chain()
    chain.grow(3)
    book = ValidatorBook(chain.app, ACCOUNTS[0], 0)
    assert book.probe_position() is None  # not started
    book.resume(chain.signed.state, chain.signed.certificates[3], None, BLS[0], 0)
    every = int(chain.app.inner.params()["epoch_blocks"])
    assert book.probe_position() == (4 // every, 4 % every, every)
    assert book.file_uptime(0, [(b"\x05" * 32, 7_000, 3)]) == []
    assert len(chain.app.mempool) == 1
    (tx,) = chain.app.mempool.reap(1 << 20, 10)
    chain.block([tx])
    assert chain.app.index[Transaction.decode(tx).hash].code == 0
    report = chain.app.inner.state.committed_get(b"report/" + bytes(8) + b"/" + PK0)
    assert canonical_decode(report) == [[b"\x05" * 32, 7_000, 3]]


def test_the_chat_chain_book_has_no_epochs(validator_chain: Any) -> None:
    chain = validator_chain("chat")
    chain.grow(1)
    book = ValidatorBook(chain.app, ACCOUNTS[0], 0)
    book.resume(chain.signed.state, chain.signed.certificates[1], None, BLS[0], 0)
    assert book.probe_position() is None
    assert book.file_uptime(0, []) == []
    assert len(chain.app.mempool) == 0
