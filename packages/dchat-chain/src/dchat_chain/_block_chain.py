"""The agreed chain state between blocks, block validation and block execution.

:class:`ChainState` is everything a node must know to judge the next block:
its height, the validator sets around it, the previous block's hash and time
and the application hash after the previous block. Consensus, block sync and
replay after a restart all move it forward through :func:`execute_block`, so
the three can never disagree about what a valid next block is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, DecodeError, Fields, canonical_decode, canonical_encode
from dchat_crypto import BlsPublicKey, BlsSignature, VerifyKey

from ._app import BlockContext, BlockResult, ValidatorUpdate
from ._block import ZERO_HASH, Block, BlockHeader
from ._block_merkle import txs_root
from ._errors import ChainStateError, InvalidBlockError, InvalidValidatorSetError
from ._validators import Validator, ValidatorSet

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._app import Application
    from ._block_commit import CommitCertificate
    from ._consensus_votes import SignatureCache

__all__ = ("ChainState", "execute_block")

_STATE_FIELDS: Final = frozenset({"chain", "h", "vals", "next", "last", "prev", "t", "app"})


@dataclass(frozen=True, slots=True)
class ChainState:
    """The chain after ``height - 1`` blocks, ready to judge block ``height``."""

    chain_id: str
    height: int  # the next height to decide
    validators: ValidatorSet  # signs block `height`
    next_validators: ValidatorSet  # signs block `height + 1`
    last_validators: ValidatorSet | None  # signed block `height - 1` (None at genesis)
    last_block_hash: bytes
    last_time_ms: int
    app_hash: bytes

    @classmethod
    def genesis(
        cls, chain_id: str, validators: ValidatorSet, app_hash: bytes, time_ms: int
    ) -> ChainState:
        """The state before block 1."""
        return cls(
            chain_id, 1, validators, validators.advanced(), None, ZERO_HASH, time_ms, app_hash
        )

    # -- building and judging blocks -----------------------------------------------------

    def make_block(
        self,
        round_: int,
        time_ms: int,
        txs: Sequence[bytes],
        last_commit: CommitCertificate | None,
    ) -> Block:
        """The block the proposer of ``round_`` would propose with ``txs``."""
        header = BlockHeader(
            chain_id=self.chain_id,
            height=self.height,
            round=round_,
            time_ms=max(time_ms, self.last_time_ms + 1),
            prev_block_hash=self.last_block_hash,
            txs_root=txs_root(txs),
            app_hash=self.app_hash,
            validators_hash=self.validators.hash(),
            next_validators_hash=self.next_validators.hash(),
            proposer_id=self.validators.proposer(round_).validator_id,
            last_commit_hash=ZERO_HASH if last_commit is None else last_commit.hash(),
        )
        return Block(header, tuple(txs), last_commit)

    def validate_block(
        self,
        block: Block,
        *,
        check_last_commit: bool = True,
        signatures: SignatureCache | None = None,
    ) -> None:
        """Check that ``block`` may be block ``height`` of this chain.

        Everything but the application's verdict on the transactions and the
        block's own certificate: structure, every header field against this
        state, and (unless told otherwise) the previous block's certificate
        (through ``signatures``, a cache of successes, when given).

        Raises:
            InvalidBlockError: The block breaks a rule.
        """
        h = block.header
        if h.chain_id != self.chain_id or h.height != self.height:
            raise InvalidBlockError("block is for another chain or height")
        if h.prev_block_hash != self.last_block_hash or h.app_hash != self.app_hash:
            raise InvalidBlockError("block does not extend this chain's state")
        if h.validators_hash != self.validators.hash():
            raise InvalidBlockError("validators_hash does not match")
        if h.next_validators_hash != self.next_validators.hash():
            raise InvalidBlockError("next_validators_hash does not match")
        if h.time_ms <= self.last_time_ms:
            raise InvalidBlockError("block time does not increase")
        if h.proposer_id != self.validators.proposer(h.round).validator_id:
            raise InvalidBlockError("proposer_id is not the proposer of the block's round")
        block.check_structure()
        if check_last_commit and block.last_commit is not None:
            assert self.last_validators is not None  # height > 1 whenever a commit is present
            try:
                block.last_commit.verify(self.last_validators, self.chain_id, signatures=signatures)
            except DchatError as exc:
                raise InvalidBlockError(f"bad last commit: {exc}") from None

    def advance(self, block: Block, result: BlockResult) -> ChainState:
        """The state after ``block`` executed with ``result``."""
        changes = [_to_validator(u, self.next_validators) for u in result.validator_updates]
        following = self.next_validators.advanced()
        if changes:
            following = following.with_changes([c for c in changes if c is not None])
        return ChainState(
            chain_id=self.chain_id,
            height=self.height + 1,
            validators=self.next_validators,
            next_validators=following,
            last_validators=self.validators,
            last_block_hash=block.hash(),
            last_time_ms=block.header.time_ms,
            app_hash=result.app_hash,
        )

    # -- persistence ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Canonical encoding (for a node's own store)."""
        last = None if self.last_validators is None else self.last_validators.to_bytes()
        return canonical_encode(
            {
                "chain": self.chain_id,
                "h": self.height,
                "vals": self.validators.to_bytes(),
                "next": self.next_validators.to_bytes(),
                "last": last,
                "prev": self.last_block_hash,
                "t": self.last_time_ms,
                "app": self.app_hash,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ChainState:
        """Decode a state this node stored (proofs of possession are not re-checked).

        Raises:
            ChainStateError: The bytes are not a stored chain state.
        """
        try:
            f = Fields(canonical_decode(data), "chain state", _STATE_FIELDS)
            raw_last: Any = f.raw("last")
            return cls(
                chain_id=f.get_str("chain", max_len=64),
                height=f.get_int("h", lo=1),
                validators=_stored_set(f.get_bytes("vals")),
                next_validators=_stored_set(f.get_bytes("next")),
                last_validators=None if raw_last is None else _stored_set(raw_last),
                last_block_hash=f.get_bytes("prev", size=32),
                last_time_ms=f.get_int("t"),
                app_hash=f.get_bytes("app", max_size=64),
            )
        except (DecodeError, InvalidValidatorSetError) as exc:
            raise ChainStateError(f"stored chain state is corrupt: {exc}") from None


def _stored_set(data: Any) -> ValidatorSet:
    if not isinstance(data, bytes):
        raise InvalidValidatorSetError("validator set must be bytes")
    return ValidatorSet.from_bytes(data, check_possession=False)


def _to_validator(update: ValidatorUpdate, current: ValidatorSet) -> Validator | None:
    """Turn an application's update into a set change (None: removing a non-member)."""
    index = current.index_of(update.validator_id)
    old = None if index is None else current.validators[index]
    try:
        bls = BlsPublicKey.from_bytes(update.bls_public_key)
        if old is not None and (update.power == 0 or old.bls_public_key == bls):
            return replace(old, power=update.power)
        if update.power == 0:
            return None
        return Validator(
            validator_id=update.validator_id,
            signing_key=VerifyKey.from_bytes(update.signing_key),
            bls_public_key=bls,
            power=update.power,
            proof_of_possession=BlsSignature.from_bytes(update.proof_of_possession),
        )
    except DchatError as exc:
        raise InvalidValidatorSetError(f"bad validator update: {exc}") from None


def execute_block(
    state: ChainState, app: Application, block: Block
) -> tuple[ChainState, BlockResult]:
    """Execute a decided ``block`` on ``app``, commit it and return the next state.

    The caller has already established that the block is decided (a verified
    certificate, or consensus itself).
    """
    header = block.header
    context = BlockContext(state.chain_id, header.height, header.time_ms, header.proposer_id)
    result = app.apply_block(context, block.txs)
    app.commit()
    return state.advance(block, result), result
