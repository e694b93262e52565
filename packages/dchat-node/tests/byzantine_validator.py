"""A double-signing validator, for tests only: ``python byzantine_validator.py run ...``.

It runs the real ``dchat-node`` command line with one substitution: the
validator service is a subclass whose ``broadcast`` also sends, next to each of
its own prevotes for a block, a second prevote of the same height and round for
a block that does not exist, signed with the validator's real BLS key. That is
equivocation: honest validators must turn the pair into evidence and slash it.
Nothing of this lives in product code.
"""

from __future__ import annotations

import hashlib

from dchat_chain.lowlevel import PeerTag, Vote, VoteKind, decode_message
from dchat_core import DchatError
from dchat_node.cli import node_main
from dchat_node.validator import _role
from dchat_node.validator._service import ValidatorService


class DoubleSigningService(ValidatorService):
    """A validator that signs a conflicting prevote next to each of its prevotes."""

    def broadcast(self, data: bytes) -> None:
        super().broadcast(data)
        if data[:1] != bytes([PeerTag.CONSENSUS]):
            return
        try:
            message = decode_message(data[1:])
        except DchatError:
            return
        if (
            not isinstance(message, Vote)
            or message.kind != VoteKind.PREVOTE
            or message.block_hash is None
        ):
            return
        phantom = hashlib.sha256(b"no such block" + message.block_hash).digest()
        twin = Vote.create(
            self.keys.bls,
            self.app.chain_id,
            message.kind,
            message.height,
            message.round,
            phantom,
            message.validator_index,
        )
        super().broadcast(bytes([PeerTag.CONSENSUS]) + twin.to_bytes())


if __name__ == "__main__":
    _role.ValidatorService = DoubleSigningService  # type: ignore[misc]
    node_main()
