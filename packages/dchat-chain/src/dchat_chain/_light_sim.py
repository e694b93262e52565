"""A chain driven block by block with certificates signed by known keys (tests, benchmarks).

:class:`SignedChain` plays a whole validator set in one object: it builds each
block with :meth:`ChainState.make_block`, validates it, has every validator it
holds a key for precommit it (aggregated into a real :class:`CommitCertificate`)
and executes it on a real application. It records each header with its
certificate and the validator set announced for the next height, which is
exactly what a light client (or a bridge transaction) consumes. No consensus
rounds are run: light clients do not care how a block was decided, only that
the certificate holds.

This module is private: light-client and bridge tests use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dchat_core import canonical_encode
from dchat_crypto import BlsSecretKey, bls_aggregate

from ._block_chain import ChainState, execute_block
from ._block_commit import CommitCertificate, VoteKind, make_bitmap, vote_sign_bytes
from ._consensus_votes import SignatureCache
from ._validators import ValidatorSet, validator_set_of

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ._app import Application, BlockResult
    from ._block import Block, BlockHeader

__all__ = ("SignedChain", "header_item", "validator_set_of")


def header_item(
    header: BlockHeader, certificate: CommitCertificate, next_set: ValidatorSet | None
) -> bytes:
    """A header as a bridge transaction carries it (see docs/protocol.md)."""
    return canonical_encode(
        {
            "header": header.to_obj(),
            "cert": certificate.to_obj(),
            "next": None if next_set is None else next_set.to_bytes(),
        }
    )


class SignedChain:
    """One application advanced by blocks that ``keys`` certify.

    Args:
        chain_id: The chain id (must be the application's).
        app: The application executing the blocks.
        validators: The genesis validator set.
        keys: BLS secret keys of (at least a quorum of) the validators.
    """

    def __init__(
        self,
        chain_id: str,
        app: Application,
        validators: ValidatorSet,
        keys: Iterable[BlsSecretKey],
    ) -> None:
        self.app = app
        self.state = ChainState.genesis(chain_id, validators, app.query(b"").app_hash, 0)
        self.keys = {k.public_key.to_bytes(): k for k in keys}
        self.blocks: dict[int, Block] = {}
        self.headers: dict[int, BlockHeader] = {}
        self.certificates: dict[int, CommitCertificate] = {}
        self.next_sets: dict[int, ValidatorSet] = {}  # the set announced for h + 1 by header h
        self.results: dict[int, BlockResult] = {}
        self._last_commit: CommitCertificate | None = None
        # The certificate checked when its block is made is checked again as the
        # next block's last commit: the second time is a lookup.
        self._signatures = SignatureCache()

    @property
    def height(self) -> int:
        """The last produced height (0 before any block)."""
        return self.state.height - 1

    def add_key(self, key: BlsSecretKey) -> None:
        """Hold another validator's key (e.g. one that joined by staking)."""
        self.keys[key.public_key.to_bytes()] = key

    def certify(
        self,
        header: BlockHeader,
        validators: ValidatorSet | None = None,
        keys: Iterable[BlsSecretKey] | None = None,
    ) -> CommitCertificate:
        """Precommit ``header`` with every held key (or ``keys``) of ``validators``; aggregate."""
        members = (validators or self.state.validators).validators
        held = self.keys if keys is None else {k.public_key.to_bytes(): k for k in keys}
        block_hash = header.hash()
        message = vote_sign_bytes(header.chain_id, VoteKind.PRECOMMIT, header.height, 0, block_hash)
        signers = [i for i, v in enumerate(members) if v.bls_public_key.to_bytes() in held]
        signature = bls_aggregate(
            held[members[i].bls_public_key.to_bytes()].sign(message) for i in signers
        )
        bitmap = make_bitmap(signers, len(members))
        return CommitCertificate(header.height, 0, block_hash, bitmap, signature)

    def produce(self, txs: Sequence[bytes] = ()) -> BlockResult:
        """Build, certify, validate and execute the next block."""
        height = self.state.height
        block = self.state.make_block(0, height * 1000, txs, self._last_commit)
        self.state.validate_block(block, signatures=self._signatures)
        certificate = self.certify(block.header)
        certificate.verify(self.state.validators, self.state.chain_id, signatures=self._signatures)
        self.blocks[height] = block
        self.headers[height] = block.header
        self.certificates[height] = certificate
        self.next_sets[height] = self.state.next_validators
        self.state, result = execute_block(self.state, self.app, block)
        self.results[height] = result
        self._last_commit = certificate
        return result

    def item(self, height: int) -> bytes:
        """Header ``height`` as a bridge header item (the next set only when it changes)."""
        header = self.headers[height]
        next_set = self.next_sets[height]
        changed = header.next_validators_hash != header.validators_hash
        return header_item(header, self.certificates[height], next_set if changed else None)

    def items(self, first: int, last: int) -> list[bytes]:
        """Header items for heights ``first..last`` (empty when ``first > last``)."""
        return [self.item(h) for h in range(first, last + 1)]

    def query(self, key: bytes) -> tuple[bytes | None, bytes]:
        """The committed value of ``key`` with its proof (provable at ``height + 1``)."""
        result = self.app.query(key)
        return result.value, result.proof
