"""Light client: certified headers, validator-set changes, state proofs."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_chain import (
    CurrencyChainApp,
    InvalidCertificateError,
    LightClient,
    LightClientError,
    Transaction,
    ValidatorSet,
)
from dchat_chain._light_sim import SignedChain, validator_set_of
from dchat_chain._state_records import account_key
from dchat_chain.lowlevel import (
    InvalidStateProofError,
    UnexpectedHeaderError,
    UntrustedValidatorsError,
    UnverifiedHeaderError,
)
from dchat_core import canonical_encode
from dchat_crypto import BlsSecretKey, SigningKey
from dchat_testing import hostile_bytes

BLS = [BlsSecretKey.from_seed(bytes([40 + i]) * 32) for i in range(5)]
ACCOUNTS = [SigningKey(bytes([60 + i]) * 32) for i in range(5)]
PK = [a.public_key.to_bytes() for a in ACCOUNTS]
NEWCOMER = 4  # account and BLS key of a validator that joins by staking


def currency_genesis(chain_id: str = "cur") -> bytes:
    validators = [
        [PK[i], BLS[i].public_key.to_bytes(), BLS[i].prove_possession().to_bytes(), 100]
        for i in range(4)
    ]
    return canonical_encode(
        {
            "v": 1,
            "kind": "currency",
            "chain_id": chain_id,
            "accounts": [[pk, 10_000] for pk in PK],
            "validators": validators,
        }
    )


def new_chain(chain_id: str = "cur", keys: list[BlsSecretKey] | None = None) -> SignedChain:
    app = CurrencyChainApp.from_genesis(currency_genesis(chain_id))
    return SignedChain(chain_id, app, validator_set_of(app.initial_validators()), keys or BLS[:4])


def transfer(chain: SignedChain, sender: int, nonce: int, value: int) -> bytes:
    tx = Transaction.create(
        ACCOUNTS[sender],
        chain_id=chain.state.chain_id,
        nonce=nonce,
        fee=0,
        kind="transfer",
        body={"to": PK[(sender + 1) % 5], "amount": value},
    )
    return tx.raw


def follower(chain: SignedChain) -> LightClient:
    first = chain.headers[1]
    assert first.validators_hash == chain.next_sets[1].hash()  # no change at genesis
    return LightClient(first.chain_id, chain.next_sets[1])


def feed(client: LightClient, chain: SignedChain, last: int) -> None:
    for h in range(client.height + 1, last + 1):
        client.update(chain.headers[h], chain.certificates[h], chain.next_sets[h])


@lru_cache(maxsize=1)
def shared_chain() -> SignedChain:
    """Three blocks of a four-validator currency chain (read-only for tests)."""
    chain = new_chain()
    for _ in range(3):
        chain.produce()
    return chain


@pytest.fixture
def chain() -> SignedChain:
    return shared_chain()


def test_follows_a_chain_from_its_genesis_set(chain: SignedChain) -> None:
    client = follower(chain)
    feed(client, chain, 3)
    assert client.height == 3
    assert client.last_hash == chain.headers[3].hash()
    assert client.header(2) == chain.headers[2]


def test_state_after_block_n_is_proven_against_header_n_plus_one() -> None:
    chain = new_chain()
    chain.produce()
    chain.produce([transfer(chain, 0, 0, 7)])  # block 2 moves funds
    value, proof = chain.query(account_key(PK[1]))  # the state after block 2
    chain.produce()  # header 3 carries it
    client = follower(chain)
    feed(client, chain, 3)
    assert value is not None
    assert client.verify_state(chain.headers[3], account_key(PK[1]), value, proof) == 2
    # Header 2 holds the state after block 1: the same proof does not hold there.
    with pytest.raises(InvalidStateProofError):
        client.verify_state(chain.headers[2], account_key(PK[1]), value, proof)
    with pytest.raises(InvalidStateProofError):
        client.verify_state(chain.headers[3], account_key(PK[1]), value + b"x", proof)
    absent, absence = chain.query(b"no-such-key")
    chain.produce()
    feed(client, chain, 4)
    assert absent is None
    assert client.verify_state(chain.headers[4], b"no-such-key", None, absence) == 3


def test_proofs_against_unverified_headers_are_refused(chain: SignedChain) -> None:
    client = follower(chain)
    feed(client, chain, 2)
    value, proof = chain.query(b"meta/block")
    with pytest.raises(UnverifiedHeaderError):
        client.verify_state(chain.headers[3], b"meta/block", value, proof)
    forged = replace(chain.headers[2], app_hash=bytes(32))
    with pytest.raises(UnverifiedHeaderError):
        client.verify_state(forged, b"meta/block", None, proof)


def test_headers_at_unexpected_heights_are_refused(chain: SignedChain) -> None:
    client = follower(chain)
    with pytest.raises(UnexpectedHeaderError):
        client.update(chain.headers[2], chain.certificates[2])
    feed(client, chain, 1)
    with pytest.raises(UnexpectedHeaderError):
        client.update(chain.headers[1], chain.certificates[1])  # a replay
    assert client.height == 1


def test_headers_of_another_chain_are_refused(chain: SignedChain) -> None:
    # Same validators, another chain id: its certificates must never count here.
    other = new_chain("cur-test")
    other.produce()
    client = follower(chain)
    with pytest.raises(UnexpectedHeaderError):
        client.update(other.headers[1], other.certificates[1])
    relabelled = replace(other.headers[1], chain_id="cur")
    with pytest.raises(InvalidCertificateError):
        client.update(relabelled, other.certificates[1])
    assert client.height == 0


@pytest.mark.parametrize(
    "forge",
    [
        lambda c: replace(c, round=c.round + 1),
        lambda c: replace(c, signers=b"\x01"),  # one validator of four: no quorum
        lambda c: replace(c, block_hash=bytes(32)),
        lambda c: replace(c, signature=BLS[0].sign(b"something else")),
    ],
)
def test_forged_certificates_are_refused(chain: SignedChain, forge: object) -> None:
    client = follower(chain)
    with pytest.raises(InvalidCertificateError):
        client.update(chain.headers[1], forge(chain.certificates[1]))  # type: ignore[operator]
    assert client.height == 0


def test_a_set_that_does_not_chain_from_the_trusted_one_is_refused(chain: SignedChain) -> None:
    # An attacker runs "cur" with its own keys: a perfectly certified fork.
    attackers = [BlsSecretKey.from_seed(bytes([90 + i]) * 32) for i in range(4)]
    fake_set = ValidatorSet.create(
        replace(v, bls_public_key=k.public_key, proof_of_possession=k.prove_possession())
        for v, k in zip(chain.next_sets[1].validators, attackers, strict=True)
    )
    fork = SignedChain(
        "cur", CurrencyChainApp.from_genesis(currency_genesis()), fake_set, attackers
    )
    fork.produce()
    client = follower(chain)
    with pytest.raises(UntrustedValidatorsError):
        client.update(fork.headers[1], fork.certificates[1])
    # Claiming the honest set's hash does not help: the signatures are not theirs.
    disguised = replace(fork.headers[1], validators_hash=chain.headers[1].validators_hash)
    with pytest.raises(InvalidCertificateError):
        client.update(disguised, fork.certify(disguised, fake_set))
    assert client.height == 0


def stake_newcomer(chain: SignedChain) -> None:
    bls = BLS[NEWCOMER]
    body = {
        "amount": 1_000,
        "bls": bls.public_key.to_bytes(),
        "pop": bls.prove_possession().to_bytes(),
    }
    tx = Transaction.create(
        ACCOUNTS[NEWCOMER], chain_id="cur", nonce=0, fee=0, kind="stake", body=body
    )
    chain.add_key(bls)
    result = chain.produce([tx.raw])
    assert result.tx_results[0].code == 0
    assert result.validator_updates


def test_follows_a_validator_set_change_only_with_the_announced_set() -> None:
    chain = new_chain()
    chain.produce()
    stake_newcomer(chain)  # block 2: the new validator's power applies at height 4
    for _ in range(3):
        chain.produce()
    assert chain.headers[4].validators_hash != chain.headers[3].validators_hash
    assert chain.headers[3].next_validators_hash == chain.headers[4].validators_hash
    client = follower(chain)
    feed(client, chain, 2)
    with pytest.raises(UntrustedValidatorsError):
        client.update(chain.headers[3], chain.certificates[3])  # the new set is withheld
    with pytest.raises(UntrustedValidatorsError):
        client.update(chain.headers[3], chain.certificates[3], chain.next_sets[1])
    assert client.height == 2
    feed(client, chain, 5)
    assert client.validators.hash() == chain.headers[5].next_validators_hash
    # The old four alone hold 400 of 1,400: they can no longer certify a header.
    block = chain.state.make_block(0, 10**6, [], chain.certificates[5])
    with pytest.raises(InvalidCertificateError):
        client.update(block.header, chain.certify(block.header, keys=BLS[:4]))
    assert client.height == 5


def test_trusted_header_start_and_round_trip(chain: SignedChain) -> None:
    client = LightClient.from_trusted_header(chain.headers[2], chain.next_sets[2])
    feed(client, chain, 3)
    assert client.height == 3
    restored = LightClient.from_bytes(client.to_bytes())
    assert (restored.chain_id, restored.height, restored.last_hash) == (
        client.chain_id,
        client.height,
        client.last_hash,
    )
    assert restored.validators == client.validators
    subset = ValidatorSet.create(chain.next_sets[2].validators[:1])
    with pytest.raises(UntrustedValidatorsError):
        LightClient.from_trusted_header(chain.headers[2], subset)


HEADER_FIELDS = ["height", "round", "time_ms", "prev_block_hash", "txs_root", "app_hash"]


@settings(max_examples=40, deadline=None)
@given(
    field=st.sampled_from(
        [*HEADER_FIELDS, "validators_hash", "next_validators_hash", "proposer_id"]
    ),
    data=st.data(),
)
def test_any_change_to_a_certified_header_is_refused(field: str, data: st.DataObject) -> None:
    chain = shared_chain()
    header = chain.headers[1]
    old = getattr(header, field)
    if isinstance(old, int):
        new: object = data.draw(st.integers(0, 1 << 40).filter(lambda v: v != old))
    else:
        new = data.draw(st.binary(min_size=len(old), max_size=len(old)).filter(lambda v: v != old))
    client = follower(chain)
    with pytest.raises((LightClientError, InvalidCertificateError)):
        client.update(replace(header, **{field: new}), chain.certificates[1], chain.next_sets[1])
    assert client.height == 0


@settings(max_examples=100, deadline=None)
@given(hostile_bytes(max_size=400))
def test_garbage_proofs_and_states_are_typed_errors(data: bytes) -> None:
    chain = shared_chain()
    client = follower(chain)
    feed(client, chain, 2)
    with pytest.raises(InvalidStateProofError):
        client.verify_state(chain.headers[2], b"meta/block", b"x", data)
    with pytest.raises(UntrustedValidatorsError):
        LightClient.from_bytes(data)
