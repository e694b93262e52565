"""Currency chain: transfers, fees and burn, staking, unbonding, slashing, relay rewards."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_chain import ChainArgumentError, CurrencyChainApp, Transaction
from dchat_chain.lowlevel import (
    BlockContext,
    ChainAnswerError,
    InvalidEvidenceError,
    PaymentRecord,
    decode_payment_record,
    payment_key,
    validator_id_of,
    verify_proof,
)
from dchat_core import canonical_decode, canonical_encode
from dchat_crypto import BlsSecretKey, SigningKey

KEYS = [SigningKey(bytes([i + 1]) * 32) for i in range(4)]
A, B, V, R = KEYS  # two users, a validator operator, a relay operator
PK = {k: k.public_key.to_bytes() for k in KEYS}
BLS = BlsSecretKey.from_seed(b"v" * 32)
BLS2 = BlsSecretKey.from_seed(b"w" * 32)


def bls_parts(key: BlsSecretKey) -> tuple[bytes, bytes]:
    return key.public_key.to_bytes(), key.prove_possession().to_bytes()


def genesis(**params: int) -> bytes:
    bls, pop = bls_parts(BLS)
    doc = {
        "v": 1,
        "kind": "currency",
        "chain_id": "cur",
        "params": {"unbonding_blocks": 3, "epoch_blocks": 4, "dispute_blocks": 2, **params},
        "accounts": [[PK[k], 10_000] for k in KEYS],
        "validators": [[PK[V], bls, pop, 1_000]],
        "relay_pool": 500,
    }
    return canonical_encode(doc)


class Chain:
    """A currency chain driven block by block, with nonces tracked per key."""

    def __init__(self, verifier=None, **params: int) -> None:
        self.app = CurrencyChainApp.from_genesis(genesis(**params), verifier)
        self.nonces = {k: 0 for k in KEYS}
        self.supply = total_supply(self.app)

    def tx(self, key: SigningKey, kind: str, body: dict, fee: int = 0) -> bytes:
        tx = Transaction.create(
            key, chain_id="cur", nonce=self.nonces[key], fee=fee, kind=kind, body=body
        )
        self.nonces[key] += 1
        return tx.raw

    def block(self, *txs: bytes, proposer: bytes = b""):
        height = self.app.height + 1
        result = self.app.apply_block(BlockContext("cur", height, height * 1000, proposer), txs)
        assert self.app.commit() == result.app_hash
        assert total_supply(self.app) == self.supply  # nothing is created or lost
        return result

    def run(self, key: SigningKey, kind: str, body: dict, fee: int = 0) -> int:
        return self.block(self.tx(key, kind, body, fee)).tx_results[0].code

    def balance(self, key: SigningKey) -> int:
        return self.app.account(PK[key]).balance


def total_supply(app: CurrencyChainApp) -> int:
    """Balances + stake + unbonding + relay stake + channels + pool + burned."""
    total = 0
    for key, raw in app.state.committed_items().items():
        if key.startswith(b"acct/"):
            total += int.from_bytes(raw[:8], "big")
            continue
        value = canonical_decode(raw)
        if key.startswith(b"val/"):
            total += value["stake"]
        elif key.startswith(b"unb/"):
            total += sum(v for _, v in value)
        elif key.startswith((b"relay/", b"pool/")) or key == b"meta/burned":
            total += value
        elif key.startswith(b"chan/"):
            total += value["da"] + value["db"]
    return total


def test_transfer_moves_funds_and_fee_splits_between_burn_and_proposer() -> None:
    chain = Chain(burn_permille=300)
    proposer = validator_id_of(PK[V])
    result = chain.block(
        chain.tx(A, "transfer", {"to": PK[B], "amount": 100}, fee=10), proposer=proposer
    )
    assert result.tx_results[0].code == 0
    assert chain.balance(A) == 10_000 - 110
    assert chain.balance(B) == 10_100
    assert chain.balance(V) == 10_000 + 7  # 70 % of the fee
    assert canonical_decode(chain.app.state.committed_get(b"meta/burned")) == 3


def test_fees_from_an_unknown_proposer_are_all_burned() -> None:
    chain = Chain(burn_permille=0)
    chain.block(chain.tx(A, "transfer", {"to": PK[B], "amount": 1}, fee=10))
    assert canonical_decode(chain.app.state.committed_get(b"meta/burned")) == 10


def test_genesis_validator_and_a_new_one_from_stake() -> None:
    chain = Chain()
    (initial,) = chain.app.initial_validators()
    assert initial.validator_id == validator_id_of(PK[V])
    assert initial.power == 1_000
    bls, pop = bls_parts(BLS2)
    result = chain.block(chain.tx(A, "stake", {"amount": 500, "bls": bls, "pop": pop}))
    assert result.tx_results[0].code == 0
    (update,) = result.validator_updates
    assert update.validator_id == validator_id_of(PK[A])
    assert update.power == 500
    assert update.signing_key == PK[A]
    assert update.proof_of_possession == pop
    assert chain.balance(A) == 9_500


def test_stake_needs_a_valid_proof_of_possession() -> None:
    chain = Chain()
    bls, _ = bls_parts(BLS2)
    _, wrong_pop = bls_parts(BLS)
    assert chain.run(A, "stake", {"amount": 5, "bls": bls, "pop": wrong_pop}) == 9
    assert chain.run(A, "stake", {"amount": 5}) == 9  # a first stake needs the key
    assert chain.run(A, "stake", {"amount": 5, "bls": b"x" * 48, "pop": wrong_pop}) == 9
    assert chain.balance(A) == 10_000


def test_unbonding_pays_out_after_the_period_and_lowers_power() -> None:
    chain = Chain()
    result = chain.block(chain.tx(V, "unbond", {"amount": 400}))
    assert [u.power for u in result.validator_updates] == [600]
    height = chain.app.height
    assert chain.balance(V) == 10_000
    while chain.app.height < height + 2:
        chain.block()
        assert chain.balance(V) == 10_000
    chain.block()  # height + 3: matured
    assert chain.balance(V) == 10_400
    assert chain.run(V, "unbond", {"amount": 601}) == 9
    result = chain.block(chain.tx(V, "unbond", {"amount": 600}))
    assert [u.power for u in result.validator_updates] == [0]


def test_slashing_on_evidence_burns_rewards_and_tombstones() -> None:
    offender = validator_id_of(PK[V])

    def verifier(evidence: bytes) -> bytes:
        if evidence != b"double-sign by V":
            raise InvalidEvidenceError("not evidence")
        return offender

    chain = Chain(verifier, slash_permille=100, slash_reward_permille=500)
    chain.block(chain.tx(V, "unbond", {"amount": 200}))  # unbonding stake is slashable too
    assert chain.run(A, "slash", {"evidence": b"forged"}) == 8
    result = chain.block(chain.tx(A, "slash", {"evidence": b"double-sign by V"}))
    assert result.tx_results[0].code == 0
    assert [(u.validator_id, u.power) for u in result.validator_updates] == [(offender, 0)]
    # 10 % of 800 bonded + 10 % of 200 unbonding = 100; half to the reporter.
    assert chain.balance(A) == 10_050
    assert canonical_decode(chain.app.state.committed_get(b"meta/burned")) == 50
    assert chain.run(A, "slash", {"evidence": b"double-sign by V"}) == 9  # only once
    assert chain.run(V, "stake", {"amount": 1}) == 9


def test_slash_without_a_verifier_is_rejected() -> None:
    chain = Chain()
    assert chain.run(A, "slash", {"evidence": b"x"}) == 9


def test_relay_rewards_are_pro_rata_to_median_scores() -> None:
    chain = Chain(relay_reward_per_epoch=300, min_relay_stake=10)
    assert chain.run(R, "relay_bond", {"amount": 10}) == 0
    assert chain.run(B, "relay_bond", {"amount": 10}) == 0
    assert chain.app.height == 2  # epoch 0 is heights 0..3
    scores = sorted([[PK[R], 300], [PK[B], 100]])
    result = chain.block(
        chain.tx(A, "uptime_report", {"epoch": 0, "scores": scores}),  # not a validator
        chain.tx(V, "uptime_report", {"epoch": 0, "scores": scores}),
    )
    assert [r.code for r in result.tx_results] == [8, 0]
    assert chain.balance(R) == 10_000 - 10
    chain.block()  # height 4: epoch 1 starts, epoch 0 is paid
    assert chain.balance(R) == 10_000 - 10 + 225
    assert chain.balance(B) == 10_000 - 10 + 75
    assert canonical_decode(chain.app.state.committed_get(b"pool/relay")) == 200


def test_uptime_report_rules() -> None:
    chain = Chain(epoch_blocks=100)
    good = [[PK[R], 1]]
    assert chain.run(V, "uptime_report", {"epoch": 5, "scores": good}) == 9
    assert chain.run(V, "uptime_report", {"epoch": 0, "scores": [[PK[R], 10_001]]}) == 1
    assert chain.run(V, "uptime_report", {"epoch": 0, "scores": good * 2}) == 1
    assert chain.run(V, "uptime_report", {"epoch": 0, "scores": good}) == 0
    assert chain.run(V, "uptime_report", {"epoch": 0, "scores": good}) == 9  # one per epoch


def test_queries_prove_committed_accounts() -> None:
    chain = Chain()
    chain.block(chain.tx(A, "transfer", {"to": PK[B], "amount": 1}))
    result = chain.app.query(b"acct/" + PK[B])
    assert result.height == 1
    assert result.app_hash == chain.app.app_hash
    assert verify_proof(result.app_hash, result.key, result.value, result.proof)
    assert result.value == (10_001).to_bytes(8, "big") + bytes(8)


def test_a_transfer_ref_is_recorded_once_with_a_proof() -> None:
    chain = Chain()
    ref = bytes(range(32))
    assert chain.run(A, "transfer", {"to": PK[B], "amount": 25, "ref": ref}) == 0
    result = chain.app.query(payment_key(ref))
    assert result.value is not None
    assert verify_proof(result.app_hash, result.key, result.value, result.proof)
    assert decode_payment_record(result.value) == PaymentRecord(PK[A], PK[B], 25)
    # The same reference pays once: refused (code 9), its amount stays, the fee is paid.
    assert chain.run(B, "transfer", {"to": PK[B], "amount": 7, "ref": ref}) == 9
    assert decode_payment_record(chain.app.query(payment_key(ref)).value or b"").amount == 25
    assert chain.balance(B) == 10_025
    # A failed transfer (too little money) records nothing.
    other = bytes(32)
    assert chain.run(A, "transfer", {"to": PK[B], "amount": 10**9, "ref": other}) == 6
    assert chain.app.query(payment_key(other)).value is None
    # A reference of the wrong size is a malformed body.
    assert chain.run(A, "transfer", {"to": PK[B], "amount": 1, "ref": b"short"}) == 1


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\xa0",
        canonical_encode({"amt": 0, "from": bytes(32), "to": bytes(32)}),
        canonical_encode({"amt": 1, "from": bytes(31), "to": bytes(32)}),
        canonical_encode({"amt": 1, "from": bytes(32), "to": bytes(32), "x": 1}),
    ],
)
def test_a_malformed_payment_record_is_an_answer_error(value: bytes) -> None:
    with pytest.raises(ChainAnswerError):
        decode_payment_record(value)


def test_bad_genesis_documents_are_refused() -> None:
    good = canonical_decode(genesis())
    for change in (
        {"kind": "chat"},
        {"params": {"burn_permille": 1001}},
        {"params": {"nope": 1}},
        {"accounts": [[PK[A], 1], [PK[A], 2]]},
        {"validators": [[PK[V], b"x" * 48, b"y" * 96, 5]]},
        {"accounts": [[PK[A], 2**63 - 1], [PK[B], 2**63 - 1]]},
    ):
        with pytest.raises(ChainArgumentError):
            CurrencyChainApp.from_genesis(canonical_encode({**good, **change}))
    with pytest.raises(ChainArgumentError):
        CurrencyChainApp.from_genesis(b"\x00")


actions = st.lists(
    st.tuples(
        st.sampled_from(KEYS),
        st.sampled_from(["transfer", "stake", "unbond", "relay_bond", "relay_unbond", "fund"]),
        st.integers(0, 12_000),
        st.integers(0, 50),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions, st.integers(1, 4))
def test_random_activity_conserves_the_supply(steps, per_block) -> None:
    chain = Chain(burn_permille=500)
    proposer = validator_id_of(PK[V])
    bodies = {
        "transfer": lambda n: {"to": PK[B], "amount": n},
        "stake": lambda n: {"amount": n},
        "unbond": lambda n: {"amount": n},
        "relay_bond": lambda n: {"amount": n},
        "relay_unbond": lambda n: {"amount": n},
        "fund": lambda n: {"amount": n},
    }
    pending = []
    for key, kind, amount, fee in steps:
        real = "fund_relay_pool" if kind == "fund" else kind
        pending.append(chain.tx(key, real, bodies[kind](amount), fee))
        if len(pending) >= per_block:
            chain.block(*pending, proposer=proposer)  # asserts conservation
            pending = []
    chain.block(*pending)
