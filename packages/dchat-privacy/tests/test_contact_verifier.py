"""The verifier's nonce book: each challenge admits one proof, once, in time."""

from __future__ import annotations

import pytest

from dchat_privacy import (
    ContactContext,
    ContactRing,
    ContactSecret,
    ContactVerifier,
    InvalidProofError,
    prove_contact,
)
from dchat_privacy.lowlevel import ReplayedProofError, ZkInputError

SECRET = ContactSecret.generate()
RING = ContactRing.padded([SECRET.public_key])


def test_a_proof_is_accepted_once() -> None:
    verifier = ContactVerifier(ttl=30)
    context = verifier.challenge(b"mbox", 5, now=100.0)
    proof = prove_contact(SECRET, RING, context)
    assert verifier.verify(proof, RING, context, now=101.0) is None
    with pytest.raises(ReplayedProofError):
        verifier.verify(proof, RING, context, now=102.0)


def test_expired_unknown_and_foreign_nonces_are_refused() -> None:
    verifier = ContactVerifier(ttl=30)
    context = verifier.challenge(b"mbox", 5, now=100.0)
    proof = prove_contact(SECRET, RING, context)
    with pytest.raises(ReplayedProofError):
        verifier.verify(proof, RING, context, now=130.0)
    made_up = ContactContext(b"mbox", 5, b"z" * 32)
    with pytest.raises(ReplayedProofError):
        verifier.verify(prove_contact(SECRET, RING, made_up), RING, made_up, now=100.0)
    issued = verifier.challenge(b"mbox", 5, now=200.0)
    moved = ContactContext(b"other", 5, issued.nonce)  # an issued nonce, another mailbox
    with pytest.raises(ReplayedProofError):
        verifier.verify(prove_contact(SECRET, RING, moved), RING, moved, now=200.0)


def test_a_failed_attempt_burns_the_nonce() -> None:
    verifier = ContactVerifier()
    context = verifier.challenge(b"mbox", 5, now=0.0)
    good = prove_contact(SECRET, RING, context)
    other_ring = ContactRing.padded([ContactSecret.generate().public_key])
    with pytest.raises(InvalidProofError):
        verifier.verify(good, other_ring, context, now=1.0)
    with pytest.raises(ReplayedProofError):
        verifier.verify(good, RING, context, now=1.0)


def test_the_book_is_bounded() -> None:
    verifier = ContactVerifier(ttl=10, max_outstanding=3)
    first = verifier.challenge(b"m", 1, now=0.0)
    for _ in range(3):
        verifier.challenge(b"m", 1, now=0.0)
    assert verifier.outstanding() == 3
    with pytest.raises(ReplayedProofError):  # the oldest was forgotten
        verifier.verify(prove_contact(SECRET, RING, first), RING, first, now=1.0)
    verifier.challenge(b"m", 1, now=20.0)  # everything older expired
    assert verifier.outstanding() == 1
    with pytest.raises(ZkInputError):
        ContactVerifier(ttl=0)
