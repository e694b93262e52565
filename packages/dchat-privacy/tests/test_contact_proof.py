"""Contact proofs: a contact proves membership of the recipient's ring without saying which."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_core import canonical_decode, canonical_encode
from dchat_privacy import (
    ContactContext,
    ContactRing,
    ContactSecret,
    InvalidProofError,
    prove_contact,
    verify_contact,
)
from dchat_privacy.lowlevel import ContactKey, ContactProof, ZkDecodeError, ZkInputError

CTX = ContactContext(mailbox=b"mailbox-1", epoch=42, nonce=b"n" * 16)
SECRETS = [ContactSecret.generate() for _ in range(5)]
RING = ContactRing.padded([s.public_key for s in SECRETS])
OUTSIDER = ContactSecret.generate()


def test_a_contact_proves_membership() -> None:
    assert len(RING) == 8
    for secret in SECRETS:
        proof = prove_contact(secret, RING, CTX)
        assert verify_contact(ContactProof.from_bytes(proof.to_bytes()), RING, CTX) is None


def test_an_outsider_cannot_prove() -> None:
    with pytest.raises(ZkInputError):
        prove_contact(OUTSIDER, RING, CTX)
    # An outsider's proof for its own ring does not verify for the recipient's ring.
    own = ContactRing([OUTSIDER.public_key, *list(RING.keys)[1:]])
    proof = prove_contact(OUTSIDER, own, CTX)
    with pytest.raises(InvalidProofError):
        verify_contact(proof, RING, CTX)


@pytest.mark.parametrize(
    "other",
    [
        ContactContext(b"mailbox-2", 42, b"n" * 16),
        ContactContext(b"mailbox-1", 43, b"n" * 16),
        ContactContext(b"mailbox-1", 42, b"m" * 16),
    ],
    ids=["mailbox", "epoch", "nonce"],
)
@pytest.mark.parametrize("linkable", [False, True])
def test_proofs_do_not_transfer_between_contexts(other: ContactContext, linkable: bool) -> None:
    proof = prove_contact(SECRETS[0], RING, CTX, linkable=linkable)
    with pytest.raises(InvalidProofError):
        verify_contact(proof, RING, other, linkable=linkable)


def test_mode_must_match() -> None:
    plain = prove_contact(SECRETS[0], RING, CTX)
    tagged = prove_contact(SECRETS[0], RING, CTX, linkable=True)
    with pytest.raises(InvalidProofError):
        verify_contact(plain, RING, CTX, linkable=True)
    with pytest.raises(InvalidProofError):
        verify_contact(tagged, RING, CTX)
    # Dropping the tag from a linkable proof does not make a plain one.
    with pytest.raises(InvalidProofError):
        verify_contact(ContactProof(tagged.proof), RING, CTX)


def test_linkable_tags_link_within_an_epoch_only() -> None:
    def tag(secret: ContactSecret, ctx: ContactContext) -> bytes | None:
        proof = prove_contact(secret, RING, ctx, linkable=True)
        return verify_contact(proof, RING, ctx, linkable=True)

    same_epoch = ContactContext(CTX.mailbox, CTX.epoch, b"x" * 32)
    next_epoch = ContactContext(CTX.mailbox, CTX.epoch + 1, CTX.nonce)
    first = tag(SECRETS[0], CTX)
    assert first is not None
    assert tag(SECRETS[0], same_epoch) == first
    assert tag(SECRETS[0], next_epoch) != first
    assert tag(SECRETS[1], CTX) != first


def test_a_tag_of_another_contact_does_not_verify() -> None:
    # A contact cannot wear another contact's tag (it would dodge a rate limit).
    mine = prove_contact(SECRETS[0], RING, CTX, linkable=True)
    theirs = prove_contact(SECRETS[1], RING, CTX, linkable=True)
    with pytest.raises(InvalidProofError):
        verify_contact(ContactProof(mine.proof, theirs.tag), RING, CTX, linkable=True)


@given(st.data())
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_flipped_bit_is_refused(data: st.DataObject) -> None:
    blob = PROOF_BYTES
    index = data.draw(st.integers(0, len(blob) - 1))
    bit = data.draw(st.integers(0, 7))
    tampered = blob[:index] + bytes((blob[index] ^ (1 << bit),)) + blob[index + 1 :]
    try:
        proof = ContactProof.from_bytes(tampered)
    except ZkDecodeError:
        return
    with pytest.raises(InvalidProofError):
        verify_contact(proof, RING, CTX, linkable=True)


PROOF_BYTES = prove_contact(SECRETS[2], RING, CTX, linkable=True).to_bytes()


def test_the_proof_does_not_reveal_the_index() -> None:
    # Each branch is a uniformly random (challenge, response) pair whatever the
    # index: no branch is distinguishable, e.g. by a zero or repeated scalar.
    proofs = [prove_contact(s, RING, CTX) for s in SECRETS]
    for proof in proofs:
        scalars = [c.to_bytes() for c in proof.proof.challenges + proof.proof.responses]
        assert len(set(scalars)) == len(scalars)
        # The tag entry is the key "t", a 2-byte head and 32 bytes.
        assert len(proof.to_bytes()) == len(PROOF_BYTES) - 36


def test_ring_is_canonical_and_padded() -> None:
    keys = [s.public_key for s in SECRETS]
    assert ContactRing(keys).keys == ContactRing(reversed(keys)).keys
    assert ContactRing.from_bytes(RING.to_bytes()).keys == RING.keys
    assert len(ContactRing.padded(keys, size=64)) == 64
    assert all(k in ContactRing.padded(keys) for k in keys)
    with pytest.raises(ZkInputError):
        ContactRing([keys[0], keys[0]])
    with pytest.raises(ZkInputError):
        ContactRing([])
    unsorted = RING.keys[1].to_bytes() + RING.keys[0].to_bytes()
    with pytest.raises(ZkDecodeError):
        ContactRing.from_bytes(unsorted)
    with pytest.raises(ZkDecodeError):  # the identity has a known discrete log: never a key
        ContactKey.from_bytes(bytes(32))


def test_context_fields_are_checked() -> None:
    nonce16 = b"n" * 16
    bad = [(b"", 1, nonce16), (b"m", -1, nonce16), (b"m", 1, b"short"), (b"m" * 65, 1, nonce16)]
    for mailbox, epoch, nonce in bad:
        with pytest.raises(ZkInputError):
            ContactContext(mailbox, epoch, nonce)


def test_secret_roundtrip_and_no_secret_in_repr() -> None:
    secret = SECRETS[0]
    assert ContactSecret.from_bytes(secret.to_bytes()).public_key == secret.public_key
    assert secret.to_bytes().hex() not in repr(secret)
    with pytest.raises(ZkInputError):
        ContactSecret.from_bytes(bytes(32))


@pytest.mark.parametrize(
    "body",
    [
        {"v": 2, "c": bytes(32), "s": bytes(32)},
        {"v": True, "c": bytes(32), "s": bytes(32)},
        {"v": 1, "c": bytes(32), "s": bytes(64)},
        {"v": 1, "c": b"", "s": b""},
        {"v": 1, "c": bytes(31), "s": bytes(31)},
        {"v": 1, "c": bytes(32), "s": b"\xff" * 32},
        {"v": 1, "c": bytes(32), "s": bytes(32), "t": bytes(32)},
        {"v": 1, "c": bytes(32), "s": bytes(32), "x": 1},
        {"v": 1, "c": "text", "s": bytes(32)},
        [1, 2, 3],
    ],
)
def test_malformed_proofs_are_decode_errors(body: object) -> None:
    with pytest.raises(ZkDecodeError):
        ContactProof.from_bytes(canonical_encode(body))


def test_oversized_proof_is_refused_before_decoding() -> None:
    big = canonical_encode({"v": 1, "c": bytes(32 * 9), "s": bytes(32 * 9)})
    with pytest.raises(ZkDecodeError):
        ContactProof.from_bytes(big, max_ring=8)


@given(st.binary(max_size=600))
def test_proof_decoding_is_total(data: bytes) -> None:
    try:
        proof = ContactProof.from_bytes(data)
    except ZkDecodeError:
        return
    assert proof.to_bytes() == data


@given(st.binary(max_size=200))
def test_ring_decoding_is_total(data: bytes) -> None:
    try:
        ring = ContactRing.from_bytes(data)
    except ZkDecodeError:
        return
    assert ring.to_bytes() == data


def test_seeded_randomness_gives_reproducible_proofs() -> None:
    def rng_for(seed: int) -> Callable[[int], bytes]:
        generator = random.Random(seed)
        return lambda n: generator.randbytes(n)

    first = prove_contact(SECRETS[0], RING, CTX, rng=rng_for(1)).to_bytes()
    assert prove_contact(SECRETS[0], RING, CTX, rng=rng_for(1)).to_bytes() == first
    assert canonical_decode(first)["v"] == 1
