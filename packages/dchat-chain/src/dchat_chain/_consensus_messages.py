"""Consensus messages: proposals, votes and decided blocks, with their wire format.

Every message is one canonical CBOR map whose ``"t"`` field names its type
(see ``docs/protocol.md``, "Chain: blocks, votes, certificates"). Decoding is
bounded and total: bytes either become a whole message or raise a typed
:class:`~dchat_chain.DchatChainError`. Decoding checks shape and ranges only;
signatures are checked against a validator set by ``verify``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, DecodeLimits, Fields, canonical_decode, canonical_encode
from dchat_crypto import BlsSignature, bls_verify

from ._block import MAX_BLOCK_SIZE, Block
from ._block_commit import (
    HASH_SIZE,
    MAX_HEIGHT,
    MAX_ROUND,
    CommitCertificate,
    VoteKind,
    proposal_sign_bytes,
    vote_sign_bytes,
)
from ._errors import (
    InvalidBlockError,
    InvalidCertificateError,
    InvalidMessageError,
    InvalidProposalError,
    InvalidVoteError,
)
from ._validators import MAX_VALIDATORS

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_crypto import BlsSecretKey

    from ._consensus_votes import SignatureCache
    from ._validators import ValidatorSet

__all__ = ("ConsensusMessage", "Decided", "Proposal", "Vote", "decided_height", "decode_message")

_LIMITS: Final = DecodeLimits(max_size=MAX_BLOCK_SIZE + 8192, max_depth=5, max_items=12_100)
_VOTE_FIELDS: Final = frozenset({"t", "k", "h", "r", "b", "i", "sig"})
_PROPOSAL_FIELDS: Final = frozenset({"t", "h", "r", "pol", "block", "sig"})
_DECIDED_FIELDS: Final = frozenset({"t", "block", "cert"})
# How every canonical decided-block message begins (keys sort by their encodings:
# "t", "cert", "block"; inside the certificate "b" then "h"), up to the height.
_DECIDED_START: Final = b"\xa3\x61t\x67decided\x64cert\xa5\x61b\x58\x20"
_HEIGHT_AT: Final = len(_DECIDED_START) + HASH_SIZE + 2


@dataclass(frozen=True, slots=True)
class Vote:
    """A prevote or precommit by the validator at ``validator_index``.

    ``block_hash`` None is a vote for nil (no block this round).
    """

    kind: VoteKind
    height: int
    round: int
    block_hash: bytes | None
    validator_index: int
    signature: BlsSignature

    @classmethod
    def create(
        cls,
        key: BlsSecretKey,
        chain_id: str,
        kind: VoteKind,
        height: int,
        round_: int,
        block_hash: bytes | None,
        validator_index: int,
    ) -> Vote:
        """Sign a vote with ``key``."""
        signature = key.sign(vote_sign_bytes(chain_id, kind, height, round_, block_hash))
        return cls(kind, height, round_, block_hash, validator_index, signature)

    def sign_bytes(self, chain_id: str) -> bytes:
        """The bytes the signature covers."""
        return vote_sign_bytes(chain_id, self.kind, self.height, self.round, self.block_hash)

    def verify(self, validators: ValidatorSet, chain_id: str) -> None:
        """Check the signer exists in ``validators`` and the signature is theirs.

        Raises:
            InvalidVoteError: Unknown validator index or a bad signature.
        """
        if self.validator_index >= len(validators):
            raise InvalidVoteError("vote from a validator index outside the set")
        key = validators.validators[self.validator_index].bls_public_key
        try:
            bls_verify(key, self.sign_bytes(chain_id), self.signature)
        except DchatError:
            raise InvalidVoteError("vote signature does not verify") from None

    def to_obj(self) -> dict[str, Any]:
        """The canonical map of this vote."""
        return {
            "t": "vote",
            "k": int(self.kind),
            "h": self.height,
            "r": self.round,
            "b": self.block_hash,
            "i": self.validator_index,
            "sig": self.signature.to_bytes(),
        }

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return canonical_encode(self.to_obj())

    @classmethod
    def from_obj(cls, obj: Any) -> Vote:
        """Decode a vote map.

        Raises:
            InvalidVoteError: The map is malformed or out of range.
        """
        try:
            f = Fields(obj, "vote", _VOTE_FIELDS)
            raw_hash = f.raw("b")
            if raw_hash is not None and (
                not isinstance(raw_hash, bytes) or len(raw_hash) != HASH_SIZE
            ):
                raise InvalidVoteError("vote block hash must be 32 bytes or null")
            return cls(
                kind=VoteKind(f.get_int("k", lo=1, hi=2)),
                height=f.get_int("h", lo=1, hi=MAX_HEIGHT),
                round=f.get_int("r", hi=MAX_ROUND),
                block_hash=raw_hash,
                validator_index=f.get_int("i", hi=MAX_VALIDATORS - 1),
                signature=BlsSignature.from_bytes(f.get_bytes("sig", size=96)),
            )
        except InvalidVoteError:
            raise
        except DchatError as exc:
            raise InvalidVoteError(f"malformed vote: {exc}") from None

    @classmethod
    def from_bytes(cls, data: bytes) -> Vote:
        """Decode a vote from untrusted bytes.

        Raises:
            InvalidVoteError: The bytes are not a well-formed vote.
        """
        message = decode_message(data)
        if not isinstance(message, Vote):
            raise InvalidVoteError("not a vote")
        return message


@dataclass(frozen=True, slots=True)
class Proposal:
    """The proposer's block for ``(height, round)``.

    ``pol_round`` is the round of the prevote quorum (proof of lock) that made
    the proposer re-propose an earlier block, or -1 for a fresh block.
    """

    height: int
    round: int
    pol_round: int
    block: Block
    signature: BlsSignature

    @classmethod
    def create(
        cls, key: BlsSecretKey, chain_id: str, round_: int, pol_round: int, block: Block
    ) -> Proposal:
        """Sign a proposal of ``block`` in ``round_`` with ``key``."""
        message = proposal_sign_bytes(chain_id, block.height, round_, pol_round, block.hash())
        return cls(block.height, round_, pol_round, block, key.sign(message))

    def verify(
        self, validators: ValidatorSet, chain_id: str, *, signatures: SignatureCache | None = None
    ) -> None:
        """Check it is signed by the proposer of its round in ``validators``.

        ``signatures`` (a cache of successes), when given, checks the signature.

        Raises:
            InvalidProposalError: Wrong height in the block, bad ``pol_round``, a
                body that does not match the header, or not signed by the round's
                proposer.
        """
        if self.block.height != self.height or not -1 <= self.pol_round < self.round:
            raise InvalidProposalError("proposal height or proof-of-lock round is inconsistent")
        try:
            # The signature covers the header hash only; the body must match it,
            # or a relay could swap transactions under a valid signature.
            self.block.check_structure()
        except DchatError as exc:
            raise InvalidProposalError(f"proposal block is malformed: {exc}") from None
        proposer = validators.proposer(self.round)
        message = proposal_sign_bytes(
            chain_id, self.height, self.round, self.pol_round, self.block.hash()
        )
        try:
            if signatures is None:
                bls_verify(proposer.bls_public_key, message, self.signature)
            else:
                signatures.verify(proposer.bls_public_key, message, self.signature)
        except DchatError:
            raise InvalidProposalError("proposal is not signed by the round's proposer") from None

    def to_obj(self) -> dict[str, Any]:
        """The canonical map of this proposal."""
        return {
            "t": "proposal",
            "h": self.height,
            "r": self.round,
            "pol": self.pol_round,
            "block": self.block.to_obj(),
            "sig": self.signature.to_bytes(),
        }

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return canonical_encode(self.to_obj())

    @classmethod
    def from_obj(cls, obj: Any) -> Proposal:
        """Decode a proposal map.

        Raises:
            InvalidProposalError: The map (or its block) is malformed.
        """
        try:
            f = Fields(obj, "proposal", _PROPOSAL_FIELDS)
            return cls(
                height=f.get_int("h", lo=1, hi=MAX_HEIGHT),
                round=f.get_int("r", hi=MAX_ROUND),
                pol_round=f.get_int("pol", lo=-1, hi=MAX_ROUND),
                block=Block.from_obj(f.raw("block")),
                signature=BlsSignature.from_bytes(f.get_bytes("sig", size=96)),
            )
        except DchatError as exc:
            raise InvalidProposalError(f"malformed proposal: {exc}") from None


@dataclass(frozen=True, slots=True)
class Decided:
    """A decided block with its certificate: lets a peer one height behind catch up."""

    block: Block
    certificate: CommitCertificate

    def to_obj(self) -> dict[str, Any]:
        """The canonical map of this message."""
        return {"t": "decided", "block": self.block.to_obj(), "cert": self.certificate.to_obj()}

    def to_bytes(self) -> bytes:
        """Canonical encoding."""
        return canonical_encode(self.to_obj())

    @classmethod
    def from_obj(cls, obj: Any) -> Decided:
        """Decode a decided-block map.

        Raises:
            InvalidBlockError: The block is malformed or its body does not match its header.
            InvalidCertificateError: The certificate is malformed or for another block.
        """
        try:
            f = Fields(obj, "decided", _DECIDED_FIELDS)
            raw_block, raw_cert = f.raw("block"), f.raw("cert")
        except DchatError as exc:
            raise InvalidBlockError(f"malformed decided block: {exc}") from None
        block = Block.from_obj(raw_block)
        block.check_structure()
        certificate = CommitCertificate.from_obj(raw_cert)
        if certificate.height != block.height or certificate.block_hash != block.hash():
            raise InvalidCertificateError("certificate is not for this block")
        return cls(block, certificate)


ConsensusMessage = Proposal | Vote | Decided

_DECODERS: Final[dict[str, Callable[[Any], ConsensusMessage]]] = {
    "vote": Vote.from_obj,
    "proposal": Proposal.from_obj,
    "decided": Decided.from_obj,
}


def decided_height(data: bytes) -> int | None:
    """The height of a decided-block message, read from its first bytes alone.

    Validators re-send their last decided block every second so that a peer one
    height behind can catch up; every other peer already has it and would
    ignore it after decoding a whole block. This lets them drop it unread.
    Returns None unless ``data`` starts exactly like the canonical encoding of
    a decided-block message (then :func:`decode_message` judges it in full).
    """
    if not data.startswith(_DECIDED_START) or data[_HEIGHT_AT - 2 : _HEIGHT_AT] != b"\x61h":
        return None
    head = data[_HEIGHT_AT : _HEIGHT_AT + 1]
    if not head or head[0] < 24:
        return head[0] if head else None
    if head[0] > 27:
        return None
    size = 1 << (head[0] - 24)
    raw = data[_HEIGHT_AT + 1 : _HEIGHT_AT + 1 + size]
    value = int.from_bytes(raw, "big")
    if len(raw) != size or value < (24 if size == 1 else 1 << (4 * size)):
        return None  # truncated or not the shortest form: not canonical
    return value


def decode_message(data: bytes) -> ConsensusMessage:
    """Decode any consensus message from untrusted bytes.

    Raises:
        InvalidMessageError: Undecodable bytes or an unknown type; its subclasses
            :class:`InvalidVoteError` and :class:`InvalidProposalError` for a
            malformed vote or proposal.
        InvalidBlockError, InvalidCertificateError: A malformed decided block.
    """
    try:
        obj = canonical_decode(data, _LIMITS)
    except DchatError as exc:
        raise InvalidMessageError(f"malformed consensus message: {exc}") from None
    kind = obj.get("t") if isinstance(obj, dict) else None
    decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
    if decoder is None:
        raise InvalidMessageError("not a consensus message")
    return decoder(obj)
