"""Evidence of double signing, checkable by anyone with the validator set.

A validator that signs two different votes of one kind for one height and round
(two prevotes for different blocks, say) has broken the protocol: an honest
validator never does. The two signed votes prove it; no trust in the node that
reports them is needed. The votes are stored in canonical order (by their
encoding), so one offence has exactly one encoding and an application can
deduplicate submissions by hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, DecodeLimits, Fields, canonical_decode, canonical_encode
from dchat_crypto import bls_verify

from ._consensus_messages import Vote
from ._errors import InvalidEvidenceError
from ._validators import MAX_ID_SIZE

if TYPE_CHECKING:
    from dchat_crypto import BlsPublicKey

    from ._validators import ValidatorSet

__all__ = ("DuplicateVoteEvidence",)

_LIMITS: Final = DecodeLimits(max_size=2048, max_depth=3, max_items=64)
_FIELDS: Final = frozenset({"t", "id", "a", "b"})


@dataclass(frozen=True, slots=True)
class DuplicateVoteEvidence:
    """Two conflicting votes signed by one validator.

    Attributes:
        validator_id: The offender (for the application to slash).
        vote_a: The vote whose encoding sorts first.
        vote_b: The other vote.
    """

    validator_id: bytes
    vote_a: Vote
    vote_b: Vote

    @classmethod
    def from_votes(cls, validator_id: bytes, first: Vote, second: Vote) -> DuplicateVoteEvidence:
        """Evidence from two votes in any order (not checked: call :meth:`verify`)."""
        a, b = sorted((first, second), key=lambda v: v.to_bytes())
        return cls(validator_id, a, b)

    @property
    def height(self) -> int:
        """The height of the offence."""
        return self.vote_a.height

    def _check_shape(self) -> None:
        a, b = self.vote_a, self.vote_b
        if (a.kind, a.height, a.round, a.validator_index) != (
            b.kind,
            b.height,
            b.round,
            b.validator_index,
        ):
            raise InvalidEvidenceError("the votes are not for one validator, kind, height, round")
        if a.block_hash == b.block_hash:
            raise InvalidEvidenceError("the votes do not conflict")
        if a.to_bytes() >= b.to_bytes():
            raise InvalidEvidenceError("the votes are not in canonical order")

    def verify_with_key(self, bls_public_key: BlsPublicKey, chain_id: str) -> None:
        """Check the evidence against the offender's BLS key (looked up by the caller).

        Raises:
            InvalidEvidenceError: The votes do not conflict or a signature is not the key's.
        """
        self._check_shape()
        try:
            for vote in (self.vote_a, self.vote_b):
                bls_verify(bls_public_key, vote.sign_bytes(chain_id), vote.signature)
        except DchatError:
            raise InvalidEvidenceError("evidence signature does not verify") from None

    def verify(self, validators: ValidatorSet, chain_id: str) -> None:
        """Check the evidence against the validator set of its height.

        Raises:
            InvalidEvidenceError: The index is not ``validator_id`` in the set, the
                votes do not conflict, or a signature does not verify.
        """
        index = self.vote_a.validator_index
        if (
            index >= len(validators)
            or validators.validators[index].validator_id != self.validator_id
        ):
            raise InvalidEvidenceError("the offender is not at that index of the validator set")
        self.verify_with_key(validators.validators[index].bls_public_key, chain_id)

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return canonical_encode(
            {
                "t": "duplicate-vote",
                "id": self.validator_id,
                "a": self.vote_a.to_obj(),
                "b": self.vote_b.to_obj(),
            }
        )

    def hash(self) -> bytes:
        """SHA-256 of the encoding: one id per offence."""
        return hashlib.sha256(self.to_bytes()).digest()

    @classmethod
    def from_bytes(cls, data: bytes) -> DuplicateVoteEvidence:
        """Decode evidence from untrusted bytes (structure only; call :meth:`verify`).

        Raises:
            InvalidEvidenceError: The bytes are not well-formed evidence.
        """
        try:
            f = Fields(canonical_decode(data, _LIMITS), "evidence", _FIELDS)
            if f.get_str("t", max_len=32) != "duplicate-vote":
                raise InvalidEvidenceError("unknown evidence type")
            evidence = cls(
                validator_id=f.get_bytes("id", max_size=MAX_ID_SIZE),
                vote_a=Vote.from_obj(_vote_obj(f.raw("a"))),
                vote_b=Vote.from_obj(_vote_obj(f.raw("b"))),
            )
        except InvalidEvidenceError:
            raise
        except DchatError as exc:
            raise InvalidEvidenceError(f"malformed evidence: {exc}") from None
        evidence._check_shape()
        return evidence


def _vote_obj(obj: Any) -> Any:
    if not isinstance(obj, dict) or obj.get("t") != "vote":
        raise InvalidEvidenceError("evidence must hold two votes")
    return obj
