"""Schnorr, Chaum-Pedersen and CDS OR-proofs: complete, and sound against the usual forgeries."""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_privacy import InvalidProofError
from dchat_privacy._sigma import _or_proof
from dchat_privacy.lowlevel import (
    Element,
    OrProof,
    Scalar,
    SigmaProof,
    Transcript,
    ZkDecodeError,
    ZkInputError,
    prove_dleq,
    prove_dlog,
    prove_or,
    verify_dleq,
    verify_dlog,
    verify_or,
)

G = Element.generator()
H = Element.from_uniform_bytes(hashlib.sha512(b"second base").digest())


def t(label: bytes = b"ctx") -> Transcript:
    transcript = Transcript(b"test-sigma")
    transcript.append(b"context", label)
    return transcript


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes((data[index] ^ 1,)) + data[index + 1 :]


def test_schnorr_roundtrip_and_context_binding() -> None:
    x = Scalar.random()
    proof = prove_dlog(t(), G * x, x)
    verify_dlog(t(), G * x, SigmaProof.from_bytes(proof.to_bytes()))
    with pytest.raises(InvalidProofError):
        verify_dlog(t(b"other"), G * x, proof)
    with pytest.raises(InvalidProofError):
        verify_dlog(t(), G * (x + Scalar.from_int(1)), proof)


def test_schnorr_needs_the_witness() -> None:
    x = Scalar.random()
    with pytest.raises(ZkInputError):
        prove_dlog(t(), G * x, x + Scalar.from_int(1))


@given(st.integers(0, 63))
@settings(max_examples=20, deadline=None)
def test_tampered_schnorr_proof_fails(index: int) -> None:
    x = Scalar.from_int(1234567)
    blob = prove_dlog(t(), G * x, x).to_bytes()
    try:
        proof = SigmaProof.from_bytes(flip(blob, index))
    except ZkDecodeError:
        return
    with pytest.raises(InvalidProofError):
        verify_dlog(t(), G * x, proof)


def test_chaum_pedersen_proves_equal_logs_only() -> None:
    x = Scalar.random()
    proof = prove_dleq(t(), (G, H), (G * x, H * x), x)
    verify_dleq(t(), (G, H), (G * x, H * x), proof)
    y = x + Scalar.from_int(1)
    with pytest.raises(ZkInputError):
        prove_dleq(t(), (G, H), (G * x, H * y), x)
    with pytest.raises(InvalidProofError):  # same proof, second log changed
        verify_dleq(t(), (G, H), (G * x, H * y), proof)
    with pytest.raises(InvalidProofError):  # bases swapped
        verify_dleq(t(), (H, G), (H * x, G * x), proof)


def test_a_schnorr_proof_is_not_a_chaum_pedersen_proof() -> None:
    x = Scalar.random()
    proof = prove_dlog(t(), G * x, x)
    with pytest.raises(InvalidProofError):
        verify_dleq(t(), (G, H), (G * x, H * x), proof)


def ring(n: int) -> tuple[list[Scalar], list[tuple[Element]]]:
    secrets = [Scalar.random() for _ in range(n)]
    return secrets, [(G * s,) for s in secrets]


@pytest.mark.parametrize("index", [0, 3, 7])
def test_or_proof_roundtrip_for_any_index(index: int) -> None:
    secrets, branches = ring(8)
    proof = prove_or(t(), (G,), branches, index, secrets[index])
    verify_or(t(), (G,), branches, OrProof.from_bytes(proof.to_bytes(), 8))


def test_or_proof_with_a_wrong_witness_never_verifies() -> None:
    _, branches = ring(8)
    outsider = Scalar.random()
    with pytest.raises(ZkInputError):
        prove_or(t(), (G,), branches, 2, outsider)
    for index in range(8):  # the honest algorithm run without the check
        forged = _or_proof(t(), (G,), branches, index, outsider, os.urandom)
        with pytest.raises(InvalidProofError):
            verify_or(t(), (G,), branches, forged)


def test_or_proof_is_bound_to_ring_and_transcript() -> None:
    secrets, branches = ring(4)
    proof = prove_or(t(), (G,), branches, 1, secrets[1])
    with pytest.raises(InvalidProofError):
        verify_or(t(b"other"), (G,), branches, proof)
    with pytest.raises(InvalidProofError):
        verify_or(t(), (G,), [*branches[:3], (G * Scalar.random(),)], proof)
    with pytest.raises(InvalidProofError):  # reordered ring
        verify_or(t(), (G,), branches[::-1], proof)
    with pytest.raises(InvalidProofError):  # fewer branches
        verify_or(t(), (G,), branches[:3], OrProof(proof.challenges[:3], proof.responses[:3]))


def test_or_proof_challenges_cannot_be_shifted() -> None:
    # Moving challenge mass between branches keeps the sum but breaks the branch equations.
    secrets, branches = ring(4)
    proof = prove_or(t(), (G,), branches, 0, secrets[0])
    one = Scalar.from_int(1)
    cs = list(proof.challenges)
    cs[0], cs[1] = cs[0] + one, cs[1] - one
    with pytest.raises(InvalidProofError):
        verify_or(t(), (G,), branches, OrProof(tuple(cs), proof.responses))


@given(st.binary(max_size=300), st.integers(-1, 5))
def test_or_proof_decoding_is_total(data: bytes, branches: int) -> None:
    try:
        proof = OrProof.from_bytes(data, branches)
    except ZkDecodeError:
        return
    assert proof.to_bytes() == data
