"""Double-signing evidence: verifiable by anyone, strict on bad input."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings

from dchat_chain._consensus_sim import CHAIN_ID, genesis_keys
from dchat_chain.lowlevel import DuplicateVoteEvidence, InvalidEvidenceError, Vote, VoteKind
from dchat_testing import hostile_bytes

KEYS, VALIDATORS = genesis_keys(4)
ID1 = VALIDATORS.validators[1].validator_id


def votes(a: bytes | None = b"\x01" * 32, b: bytes | None = None) -> tuple[Vote, Vote]:
    return (
        Vote.create(KEYS[1], CHAIN_ID, VoteKind.PRECOMMIT, 7, 2, a, 1),
        Vote.create(KEYS[1], CHAIN_ID, VoteKind.PRECOMMIT, 7, 2, b, 1),
    )


def test_evidence_verifies_round_trips_and_is_order_independent() -> None:
    first, second = votes()
    evidence = DuplicateVoteEvidence.from_votes(ID1, first, second)
    evidence.verify(VALIDATORS, CHAIN_ID)
    evidence.verify_with_key(KEYS[1].public_key, CHAIN_ID)
    assert DuplicateVoteEvidence.from_bytes(evidence.to_bytes()) == evidence
    assert DuplicateVoteEvidence.from_votes(ID1, second, first) == evidence
    assert evidence.height == 7


@pytest.mark.parametrize(
    "make",
    [
        lambda: DuplicateVoteEvidence.from_votes(ID1, *votes(b"\x01" * 32, b"\x01" * 32)),
        lambda: DuplicateVoteEvidence.from_votes(VALIDATORS.validators[2].validator_id, *votes()),
        lambda: DuplicateVoteEvidence.from_votes(
            ID1, votes()[0], Vote.create(KEYS[1], CHAIN_ID, VoteKind.PRECOMMIT, 7, 3, None, 1)
        ),
        lambda: DuplicateVoteEvidence.from_votes(
            ID1, votes()[0], replace(votes()[1], signature=KEYS[2].sign(b"x"))
        ),
        lambda: DuplicateVoteEvidence.from_votes(
            ID1,
            Vote.create(KEYS[1], "other", VoteKind.PRECOMMIT, 7, 2, None, 1),
            Vote.create(KEYS[1], "other", VoteKind.PRECOMMIT, 7, 2, b"\x02" * 32, 1),
        ),
    ],
)
def test_evidence_that_proves_nothing_is_refused(make: object) -> None:
    with pytest.raises(InvalidEvidenceError):
        make().verify(VALIDATORS, CHAIN_ID)  # type: ignore[operator]


def test_unordered_encoding_is_refused() -> None:
    good = DuplicateVoteEvidence.from_votes(ID1, *votes())
    swapped = DuplicateVoteEvidence(ID1, good.vote_b, good.vote_a)
    with pytest.raises(InvalidEvidenceError):
        DuplicateVoteEvidence.from_bytes(swapped.to_bytes())


@settings(max_examples=200)
@given(hostile_bytes(max_size=300))
def test_garbage_is_a_typed_error(data: bytes) -> None:
    with pytest.raises(InvalidEvidenceError):
        DuplicateVoteEvidence.from_bytes(data)
