"""Blocks, the transaction Merkle tree, validator sets and commit certificates."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_chain import (
    Block,
    ChainState,
    CommitCertificate,
    DchatChainError,
    InvalidBlockError,
    InvalidCertificateError,
    Validator,
    ValidatorSet,
)
from dchat_chain._block_commit import make_bitmap
from dchat_chain._block_merkle import merkle_root
from dchat_chain._consensus_sim import CHAIN_ID, HashApp, genesis_keys
from dchat_chain.lowlevel import (
    InvalidValidatorSetError,
    Vote,
    VoteKind,
    tx_inclusion_proof,
    txs_root,
    verify_tx_inclusion,
)
from dchat_crypto import BlsSecretKey, bls_aggregate
from dchat_testing import hostile_bytes

KEYS, VALIDATORS = genesis_keys(4)
GENESIS = ChainState.genesis(CHAIN_ID, VALIDATORS, HashApp().app_hash, 0)
BLOCK_HASH = bytes(range(32))


def certificate(
    signers: list[int], *, chain_id: str = CHAIN_ID, height: int = 1
) -> CommitCertificate:
    votes = [
        Vote.create(KEYS[i], chain_id, VoteKind.PRECOMMIT, height, 0, BLOCK_HASH, i)
        for i in signers
    ]
    bitmap = make_bitmap(signers, len(VALIDATORS))
    return CommitCertificate(
        height, 0, BLOCK_HASH, bitmap, bls_aggregate(v.signature for v in votes)
    )


# -- transaction Merkle tree ----------------------------------------------------------------


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=40), st.data())
def test_every_transaction_has_an_inclusion_proof(txs: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(txs) - 1))
    root = txs_root(txs)
    proof = tx_inclusion_proof(txs, index)
    assert verify_tx_inclusion(root, txs[index], index, len(txs), proof)
    assert not verify_tx_inclusion(root, txs[index] + b"x", index, len(txs), proof)
    if len(txs) > 1:
        other = (index + 1) % len(txs)
        assert not verify_tx_inclusion(root, txs[index], other, len(txs), proof) or (
            txs[other] == txs[index]
        )


def _rfc6962_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1 as written: split at the largest power of two below n."""
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _rfc6962_root(leaves[:k]) + _rfc6962_root(leaves[k:])).digest()


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70))
def test_merkle_root_is_the_rfc6962_tree(leaves: list[bytes]) -> None:
    assert merkle_root(leaves) == _rfc6962_root(leaves)


def test_roots_depend_on_order_and_content() -> None:
    assert txs_root([b"a", b"b"]) != txs_root([b"b", b"a"])
    assert txs_root([]) != txs_root([b""])
    assert txs_root([b"a", b"b", b"c"]) != txs_root([b"a", b"b"])


# -- blocks ---------------------------------------------------------------------------------


def test_block_round_trips_and_validates() -> None:
    block = GENESIS.make_block(0, 5, [b"tx-1", b"tx-2"], None)
    assert Block.from_bytes(block.to_bytes()) == block
    GENESIS.validate_block(block)


@pytest.mark.parametrize(
    "change",
    [
        {"chain_id": "other"},
        {"height": 2},
        {"time_ms": 0},
        {"prev_block_hash": b"\x01" * 32},
        {"app_hash": b"\x02" * 32},
        {"validators_hash": b"\x03" * 32},
        {"next_validators_hash": b"\x03" * 32},
        {"round": 1},  # the proposer of round 1 is someone else
        {"txs_root": b"\x04" * 32},
    ],
)
def test_a_block_breaking_any_header_rule_is_refused(change: dict[str, object]) -> None:
    block = GENESIS.make_block(0, 5, [b"tx-1"], None)
    bad = replace(block, header=replace(block.header, **change))  # type: ignore[arg-type]
    with pytest.raises(InvalidBlockError):
        GENESIS.validate_block(bad)


@settings(max_examples=200)
@given(hostile_bytes(max_size=300))
def test_block_decoding_of_garbage_is_a_typed_error(data: bytes) -> None:
    with pytest.raises(InvalidBlockError):
        Block.from_bytes(data)


# -- validator sets -------------------------------------------------------------------------


def test_a_key_without_proof_of_possession_is_refused() -> None:
    rogue = BlsSecretKey.from_seed(b"r" * 32)
    member = replace(
        VALIDATORS.validators[0], bls_public_key=rogue.public_key
    )  # keeps the other key's proof
    with pytest.raises(InvalidValidatorSetError):
        ValidatorSet.create([member, *VALIDATORS.validators[1:]])
    with pytest.raises(InvalidValidatorSetError):
        VALIDATORS.with_changes([replace(member, validator_id=b"new-one")])
    forged = ValidatorSet([member, *VALIDATORS.validators[1:]], [0] * 4).to_bytes()
    with pytest.raises(InvalidValidatorSetError):
        ValidatorSet.from_bytes(forged)


def test_set_round_trips_and_hash_ignores_priorities() -> None:
    again = ValidatorSet.from_bytes(VALIDATORS.advanced().to_bytes())
    assert again == VALIDATORS.advanced()
    assert again.hash() == VALIDATORS.hash()


_SPARE_KEYS = [BlsSecretKey.from_seed(bytes([i]) * 32).public_key for i in range(7)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=7))
def test_proposers_rotate_in_proportion_to_power(powers: list[int]) -> None:
    template = VALIDATORS.validators[0]
    members = [
        replace(template, validator_id=bytes([i]), power=p, bls_public_key=_SPARE_KEYS[i])
        for i, p in enumerate(powers)
    ]
    validators = ValidatorSet(members, [0] * len(members))
    counts: Counter[bytes] = Counter()
    for _ in range(validators.total_power):  # one height after another
        counts[validators.proposer(0).validator_id] += 1
        validators = validators.advanced()
    assert counts == {v.validator_id: v.power for v in members}
    assert validators.proposer(2) == validators.advanced().advanced().proposer(0)


def test_changes_add_remove_and_repower() -> None:
    newcomer_key = BlsSecretKey.from_seed(b"n" * 32)
    newcomer = replace(
        VALIDATORS.validators[0],
        validator_id=b"\xff" * 8,
        bls_public_key=newcomer_key.public_key,
        proof_of_possession=newcomer_key.prove_possession(),
        power=5,
    )
    removed = replace(VALIDATORS.validators[1], power=0)
    repowered = replace(VALIDATORS.validators[2], power=30)
    changed = VALIDATORS.with_changes([newcomer, removed, repowered])
    ids = [v.validator_id for v in changed.validators]
    assert ids == sorted(ids)
    assert len(ids) == 4
    assert changed.total_power == 10 + 30 + 10 + 5
    assert changed.priorities[-1] < 0  # a newcomer queues at the back


# -- commit certificates --------------------------------------------------------------------


def test_certificate_of_a_quorum_verifies_and_round_trips() -> None:
    cert = certificate([0, 1, 3])
    cert.verify(VALIDATORS, CHAIN_ID)
    assert CommitCertificate.from_bytes(cert.to_bytes()) == cert


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: certificate([0, 1]),  # exactly 2/3 is not more than 2/3
        lambda c: replace(c, signers=c.signers + b"\x00"),  # bitmap of the wrong length
        lambda c: replace(c, signers=bytes([c.signers[0] | 0x80])),  # bit beyond the set
        lambda c: replace(c, signers=make_bitmap([0, 1, 2], 4)),  # bitmap lies about signers
        lambda c: replace(c, block_hash=bytes(32)),  # not what they signed
        lambda c: replace(c, round=1),
        lambda c: certificate([0, 1, 3], chain_id="another-chain"),
        lambda c: replace(c, signature=KEYS[0].sign(b"forged")),
        lambda c: replace(c, signers=b"\x00"),
    ],
)
def test_bad_certificates_are_refused(mutate: object) -> None:
    bad = mutate(certificate([0, 1, 3]))  # type: ignore[operator]
    with pytest.raises(InvalidCertificateError):
        bad.verify(VALIDATORS, CHAIN_ID)


@settings(max_examples=100)
@given(bit=st.integers(0, 96 * 8 - 1))
def test_a_decoded_certificate_with_a_damaged_signature_never_verifies(bit: int) -> None:
    # The signature is decoded only when verified; a damaged one (whether or not
    # it is still a curve point) fails there, as a typed certificate error.
    obj = certificate([0, 1, 3]).to_obj()
    raw = bytearray(obj["sig"])
    raw[bit // 8] ^= 1 << (bit % 8)
    damaged = CommitCertificate.from_obj({**obj, "sig": bytes(raw)})
    assert damaged.to_obj()["sig"] == bytes(raw)
    with pytest.raises(InvalidCertificateError):
        damaged.verify(VALIDATORS, CHAIN_ID)


def test_a_certificate_signature_of_the_wrong_size_is_refused_at_decoding() -> None:
    obj = certificate([0, 1, 3]).to_obj()
    with pytest.raises(InvalidCertificateError):
        CommitCertificate.from_obj({**obj, "sig": obj["sig"][:95]})


@settings(max_examples=200)
@given(hostile_bytes(max_size=200))
def test_certificate_decoding_of_garbage_is_a_typed_error(data: bytes) -> None:
    with pytest.raises(InvalidCertificateError):
        CommitCertificate.from_bytes(data)


def test_validator_decode_errors_are_chain_errors() -> None:
    with pytest.raises(DchatChainError):
        Validator.from_obj({"id": b"x"})
