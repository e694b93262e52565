"""What validators sign, and the commit certificate that proves a block final.

Every signature in consensus is a BLS signature over a canonical CBOR list that
starts with a domain tag and the chain id, so a vote on the chat chain can never
count on the currency chain, and a vote can never pass for a proposal::

    vote:     ["dchat-vote-v1", chain_id, kind, height, round, block_hash | null]
    proposal: ["dchat-proposal-v1", chain_id, height, round, pol_round, block_hash]

The validator's index is *not* signed: all precommits for one block in one
round have identical sign-bytes, which is what lets a :class:`CommitCertificate`
be checked with one ``bls_fast_aggregate_verify`` over the signers' keys.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, DecodeLimits, Fields, canonical_decode, canonical_encode
from dchat_crypto import BlsSignature
from dchat_crypto.hazmat import bls_fast_aggregate_verify

from ._errors import InvalidCertificateError
from ._validators import MAX_VALIDATORS

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._consensus_votes import SignatureCache
    from ._validators import ValidatorSet

__all__ = (
    "MAX_ROUND",
    "CommitCertificate",
    "VoteKind",
    "bitmap_indices",
    "make_bitmap",
    "proposal_sign_bytes",
    "vote_sign_bytes",
)

MAX_ROUND: Final = 1 << 20  # far beyond any real round; bounds hostile input
MAX_HEIGHT: Final = 1 << 62
HASH_SIZE: Final = 32
_CERT_FIELDS: Final = frozenset({"h", "r", "b", "s", "sig"})
_CERT_LIMITS: Final = DecodeLimits(max_size=1024, max_depth=2, max_items=16)


class VoteKind(enum.IntEnum):
    """The two votes of a Tendermint round."""

    PREVOTE = 1
    PRECOMMIT = 2


def vote_sign_bytes(
    chain_id: str, kind: VoteKind, height: int, round_: int, block_hash: bytes | None
) -> bytes:
    """The bytes a validator signs when it votes."""
    return canonical_encode(["dchat-vote-v1", chain_id, int(kind), height, round_, block_hash])


def proposal_sign_bytes(
    chain_id: str, height: int, round_: int, pol_round: int, block_hash: bytes
) -> bytes:
    """The bytes a proposer signs for its proposal (``pol_round`` -1 means none)."""
    return canonical_encode(["dchat-proposal-v1", chain_id, height, round_, pol_round, block_hash])


def make_bitmap(indices: Iterable[int], size: int) -> bytes:
    """A signer bitmap: validator ``i`` is bit ``i % 8`` (LSB first) of byte ``i // 8``."""
    out = bytearray((size + 7) // 8)
    for i in indices:
        out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def bitmap_indices(bitmap: bytes, size: int) -> list[int] | None:
    """The indices set in ``bitmap``, or None if it is not a bitmap of ``size`` bits."""
    if len(bitmap) != (size + 7) // 8:
        return None
    indices = [i for i in range(size) if bitmap[i >> 3] >> (i & 7) & 1]
    padding = size % 8
    if padding and bitmap[-1] >> padding:
        return None  # bits set beyond the last validator: two encodings of one set
    return indices


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    """Proof that validators with more than 2/3 of the power precommitted a block.

    Attributes:
        height: The block's height.
        round: The round whose precommits are aggregated.
        block_hash: The committed block's hash.
        signers: Bitmap over the validator set of that height.
        signature: BLS aggregate of the signers' precommits.
    """

    height: int
    round: int
    block_hash: bytes
    signers: bytes
    signature: BlsSignature

    def verify(
        self, validators: ValidatorSet, chain_id: str, *, signatures: SignatureCache | None = None
    ) -> None:
        """Check the certificate against the validator set of its height.

        One pairing check (``bls_fast_aggregate_verify``) whatever the set size,
        none if ``signatures`` (a cache of successes) already saw this one pass.

        Raises:
            InvalidCertificateError: Bad bitmap, not more than 2/3 of the power,
                or an aggregate that does not verify (the message never says which
                signer's part failed).
        """
        indices = bitmap_indices(self.signers, len(validators))
        if not indices:
            raise InvalidCertificateError("signer bitmap does not fit the validator set")
        members = validators.validators
        if not validators.has_quorum(sum(members[i].power for i in indices)):
            raise InvalidCertificateError("signers hold no more than 2/3 of the power")
        message = vote_sign_bytes(
            chain_id, VoteKind.PRECOMMIT, self.height, self.round, self.block_hash
        )
        keys = [members[i].bls_public_key for i in indices]
        try:
            if signatures is None:
                bls_fast_aggregate_verify(keys, message, self.signature)
            else:
                signatures.verify_aggregate(keys, message, self.signature)
        except DchatError:
            raise InvalidCertificateError("commit certificate does not verify") from None

    def to_obj(self) -> dict[str, Any]:
        """The canonical map of this certificate."""
        return {
            "h": self.height,
            "r": self.round,
            "b": self.block_hash,
            "s": self.signers,
            "sig": self.signature.to_bytes(),
        }

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return canonical_encode(self.to_obj())

    def hash(self) -> bytes:
        """SHA-256 of the encoding (what the next header's ``last_commit_hash`` holds)."""
        return hashlib.sha256(self.to_bytes()).digest()

    @classmethod
    def from_obj(cls, obj: Any) -> CommitCertificate:
        """Decode a certificate map (structure only; call :meth:`verify`).

        The signature is kept as bytes until :meth:`verify` decodes it; one that
        is not a valid point then fails verification.

        Raises:
            InvalidCertificateError: The map is malformed.
        """
        try:
            f = Fields(obj, "certificate", _CERT_FIELDS)
            return cls(
                height=f.get_int("h", lo=1, hi=MAX_HEIGHT),
                round=f.get_int("r", hi=MAX_ROUND),
                block_hash=f.get_bytes("b", size=HASH_SIZE),
                signers=f.get_bytes("s", max_size=(MAX_VALIDATORS + 7) // 8),
                # Decoded when verified: a synced batch carries one certificate
                # per block and checks only the top one (the hashes fix the rest).
                signature=BlsSignature.from_bytes_deferred(f.get_bytes("sig", size=96)),
            )
        except DchatError as exc:
            raise InvalidCertificateError(f"malformed certificate: {exc}") from None

    @classmethod
    def from_bytes(cls, data: bytes) -> CommitCertificate:
        """Decode from untrusted bytes (bounded, strict).

        Raises:
            InvalidCertificateError: The bytes are not a well-formed certificate.
        """
        try:
            obj = canonical_decode(data, _CERT_LIMITS)
        except DchatError as exc:
            raise InvalidCertificateError(f"malformed certificate: {exc}") from None
        return cls.from_obj(obj)
