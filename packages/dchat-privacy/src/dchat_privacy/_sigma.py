"""Sigma protocols on Ristretto255 made non-interactive with a :class:`Transcript`.

One relation covers them all: knowledge of a scalar ``x`` with ``Y_k = x * B_k``
for every base ``B_k`` of a statement. With one base this is Schnorr's proof of
knowledge of a discrete log; with two it is Chaum-Pedersen's proof that two
discrete logs are equal. A proof is ``(c, s)``: the prover commits ``R_k = r * B_k``,
absorbs the commitments, squeezes ``c`` and answers ``s = r + c * x``; the verifier
recomputes ``R_k = s * B_k - c * Y_k`` and checks that the transcript gives ``c``
again.

The OR composition is Cramer-Damgard-Schoenmakers (CRYPTO '94): for ``n``
branches sharing the bases, the prover simulates every branch but the one it
knows (random ``c_i``, ``s_i``), commits honestly on its own, and sets its
challenge to ``c - sum(other c_i)``. The verifier checks every branch equation
and that the challenges sum to the transcript's ``c``. The proof is the ``n``
challenges and ``n`` responses; every branch looks alike, so it does not say
which witness the prover held. Total prover work does not depend on the index.

Each function absorbs the statement (bases and every branch's publics) into the
transcript it is given, so the caller absorbs the context first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ._ristretto import Element, Scalar
from ._zk_errors import InvalidProofError, ZkDecodeError, ZkInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._transcript import Transcript

__all__ = (
    "MAX_BASES",
    "MAX_BRANCHES",
    "OrProof",
    "SigmaProof",
    "prove_dleq",
    "prove_dlog",
    "prove_or",
    "verify_dleq",
    "verify_dlog",
    "verify_or",
)

MAX_BASES: Final = 8
MAX_BRANCHES: Final = 4096
_S: Final = Scalar.SIZE


@dataclass(frozen=True, slots=True)
class SigmaProof:
    """A Schnorr or Chaum-Pedersen proof: challenge and response, 64 bytes on the wire."""

    challenge: Scalar
    response: Scalar

    SIZE = 2 * _S

    def to_bytes(self) -> bytes:
        return self.challenge.to_bytes() + self.response.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> SigmaProof:
        """Raises ZkDecodeError unless ``data`` is two canonical scalars."""
        if not isinstance(data, bytes) or len(data) != cls.SIZE:
            raise ZkDecodeError("a sigma proof is 64 bytes")
        return cls(Scalar.from_bytes(data[:_S]), Scalar.from_bytes(data[_S:]))


@dataclass(frozen=True, slots=True)
class OrProof:
    """A CDS OR-proof over ``n`` branches: ``n`` challenges then ``n`` responses."""

    challenges: tuple[Scalar, ...]
    responses: tuple[Scalar, ...]

    def to_bytes(self) -> bytes:
        return b"".join(c.to_bytes() for c in self.challenges + self.responses)

    @classmethod
    def from_bytes(cls, data: bytes, branches: int) -> OrProof:
        """Raises ZkDecodeError unless ``data`` is ``2 * branches`` canonical scalars."""
        if not 1 <= branches <= MAX_BRANCHES:
            raise ZkDecodeError("branch count out of range")
        if not isinstance(data, bytes) or len(data) != 2 * _S * branches:
            raise ZkDecodeError("OR-proof length does not match the branch count")
        scalars = tuple(Scalar.from_bytes(data[i : i + _S]) for i in range(0, len(data), _S))
        return cls(scalars[:branches], scalars[branches:])


def _absorb_statement(
    transcript: Transcript, bases: Sequence[Element], branches: Sequence[Sequence[Element]]
) -> None:
    if not 1 <= len(bases) <= MAX_BASES:
        raise ZkInputError("a statement has 1 to 8 bases")
    if not 1 <= len(branches) <= MAX_BRANCHES:
        raise ZkInputError("an OR statement has 1 to 4096 branches")
    if any(len(publics) != len(bases) for publics in branches):
        raise ZkInputError("every branch has one public element per base")
    transcript.append(b"sigma-shape", bytes((len(bases),)) + len(branches).to_bytes(2, "big"))
    transcript.append_elements(b"bases", tuple(bases))
    transcript.append_elements(b"publics", tuple(y for publics in branches for y in publics))


def _recommit(
    bases: Sequence[Element], publics: Sequence[Element], c: Scalar, s: Scalar
) -> tuple[Element, ...]:
    return tuple(b * s - y * c for b, y in zip(bases, publics, strict=True))


def _holds(bases: Sequence[Element], publics: Sequence[Element], witness: Scalar) -> bool:
    return all(b * witness == y for b, y in zip(bases, publics, strict=True))


def prove_dleq(
    transcript: Transcript,
    bases: Sequence[Element],
    publics: Sequence[Element],
    witness: Scalar,
    *,
    rng: Callable[[int], bytes] = os.urandom,
) -> SigmaProof:
    """Prove knowledge of ``witness`` with ``publics[k] = witness * bases[k]`` for all ``k``.

    Two bases make a Chaum-Pedersen proof of equal discrete logs.

    Raises:
        ZkInputError: the witness does not satisfy the statement, or a bad shape.
    """
    _absorb_statement(transcript, bases, (publics,))
    if not _holds(bases, publics, witness):
        raise ZkInputError("the witness does not satisfy the statement")
    nonce = transcript.nonce(witness, rng)
    transcript.append_elements(b"commit", tuple(b * nonce for b in bases))
    c = transcript.challenge(b"challenge")
    return SigmaProof(c, nonce + c * witness)


def verify_dleq(
    transcript: Transcript,
    bases: Sequence[Element],
    publics: Sequence[Element],
    proof: SigmaProof,
) -> None:
    """Check a :func:`prove_dleq` proof on a transcript in the prover's state.

    Raises:
        InvalidProofError: the proof does not verify.
    """
    _absorb_statement(transcript, bases, (publics,))
    commits = _recommit(bases, publics, proof.challenge, proof.response)
    transcript.append_elements(b"commit", commits)
    if transcript.challenge(b"challenge") != proof.challenge:
        raise InvalidProofError


def prove_dlog(
    transcript: Transcript,
    public: Element,
    witness: Scalar,
    *,
    base: Element | None = None,
    rng: Callable[[int], bytes] = os.urandom,
) -> SigmaProof:
    """Schnorr proof of knowledge of ``witness`` with ``public = witness * base`` (default B)."""
    return prove_dleq(transcript, (base or Element.generator(),), (public,), witness, rng=rng)


def verify_dlog(
    transcript: Transcript, public: Element, proof: SigmaProof, *, base: Element | None = None
) -> None:
    """Check a :func:`prove_dlog` proof. Raises InvalidProofError."""
    verify_dleq(transcript, (base or Element.generator(),), (public,), proof)


def prove_or(
    transcript: Transcript,
    bases: Sequence[Element],
    branches: Sequence[Sequence[Element]],
    index: int,
    witness: Scalar,
    *,
    rng: Callable[[int], bytes] = os.urandom,
) -> OrProof:
    """Prove that ``witness`` satisfies one of ``branches`` without saying which.

    Raises:
        ZkInputError: ``witness`` does not satisfy branch ``index``, or a bad shape.
    """
    if not 0 <= index < len(branches) or not _holds(bases, branches[index], witness):
        raise ZkInputError("the witness does not satisfy the chosen branch")
    return _or_proof(transcript, bases, branches, index, witness, rng)


def _or_proof(
    transcript: Transcript,
    bases: Sequence[Element],
    branches: Sequence[Sequence[Element]],
    index: int,
    witness: Scalar,
    rng: Callable[[int], bytes],
) -> OrProof:
    # No check of the witness here: the soundness tests use this to show that a
    # proof made with a wrong witness does not verify.
    _absorb_statement(transcript, bases, branches)
    nonce = transcript.nonce(witness, rng)
    challenges: list[Scalar] = []
    responses: list[Scalar] = []
    commits: list[Element] = []
    for i, publics in enumerate(branches):
        c_i, s_i = Scalar.random(rng), Scalar.random(rng)
        if i == index:
            commits.extend(b * nonce for b in bases)
        else:
            commits.extend(_recommit(bases, publics, c_i, s_i))
        challenges.append(c_i)
        responses.append(s_i)
    transcript.append_elements(b"commit", tuple(commits))
    c = transcript.challenge(b"challenge")
    own = c
    for i, c_i in enumerate(challenges):
        if i != index:
            own = own - c_i
    challenges[index] = own
    responses[index] = nonce + own * witness
    return OrProof(tuple(challenges), tuple(responses))


def verify_or(
    transcript: Transcript,
    bases: Sequence[Element],
    branches: Sequence[Sequence[Element]],
    proof: OrProof,
) -> None:
    """Check a :func:`prove_or` proof on a transcript in the prover's state.

    Raises:
        InvalidProofError: the proof does not verify (also for a branch-count mismatch).
    """
    n = len(branches)
    if len(proof.challenges) != n or len(proof.responses) != n:
        raise InvalidProofError
    _absorb_statement(transcript, bases, branches)
    commits: list[Element] = []
    total = Scalar.from_int(0)
    for publics, c_i, s_i in zip(branches, proof.challenges, proof.responses, strict=True):
        commits.extend(_recommit(bases, publics, c_i, s_i))
        total = total + c_i
    transcript.append_elements(b"commit", tuple(commits))
    if transcript.challenge(b"challenge") != total:
        raise InvalidProofError
