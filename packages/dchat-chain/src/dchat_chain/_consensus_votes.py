"""Vote bookkeeping for one height, and a cache of verified signatures.

:class:`HeightVotes` keeps at most one vote per (round, kind, validator) and
tallies voting power by block hash, which is all the paper's "upon 2f+1 ..."
and "upon f+1 ..." conditions ask. A second, different vote from the same slot
is never stored: it is returned so the engine can turn the pair into evidence.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from typing import TYPE_CHECKING

from dchat_crypto import bls_aggregate, bls_verify
from dchat_crypto.hazmat import bls_fast_aggregate_verify

from ._block_commit import CommitCertificate, VoteKind, make_bitmap

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dchat_crypto import BlsPublicKey, BlsSignature

    from ._consensus_messages import Vote
    from ._validators import ValidatorSet

__all__ = ("HeightVotes", "SignatureCache")


class SignatureCache:
    """Remembers BLS signatures that verified, so a re-sent vote costs a lookup.

    Only successes are cached (keyed by key, message and signature), so the
    cache can never make a bad signature pass. Several engines in one process
    may share one cache.
    """

    __slots__ = ("_capacity", "_seen")

    def __init__(self, capacity: int = 65_536) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[tuple[bytes, bytes, bytes], None] = OrderedDict()

    def verify(self, key: BlsPublicKey, message: bytes, signature: BlsSignature) -> None:
        """Like :func:`dchat_crypto.bls_verify`, but each success is checked once.

        Raises:
            BadSignatureError: The signature does not verify.
        """
        entry = (key.to_bytes(), message, signature.to_bytes())
        if entry in self._seen:
            self._seen.move_to_end(entry)
            return
        bls_verify(key, message, signature)
        self._remember(entry)

    def verify_aggregate(
        self, keys: Sequence[BlsPublicKey], message: bytes, signature: BlsSignature
    ) -> None:
        """Like :func:`dchat_crypto.hazmat.bls_fast_aggregate_verify`, each success checked once.

        A commit certificate is checked by every engine that validates the next
        block, and a proposal's signature by every engine it reaches; engines that
        share this cache pay for one pairing check each.

        Raises:
            BadSignatureError: The aggregate does not verify.
        """
        # A one-byte tag keeps an aggregate's key field (1 + 48n bytes) apart
        # from a single key's (48 bytes).
        entry = (b"\x01" + b"".join(k.to_bytes() for k in keys), message, signature.to_bytes())
        if entry in self._seen:
            self._seen.move_to_end(entry)
            return
        bls_fast_aggregate_verify(keys, message, signature)
        self._remember(entry)

    def _remember(self, entry: tuple[bytes, bytes, bytes]) -> None:
        self._seen[entry] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)


class HeightVotes:
    """All votes received at one height, by round, kind and validator.

    Like the paper, tallies count *messages*: an equivocating validator whose
    vote for ``B`` and vote for nil both arrived counts towards both (safety
    already allows for f such validators). Which versions are kept is the
    engine's choice (nil and known blocks), so memory stays bounded.
    """

    __slots__ = ("_power", "_senders", "_validators", "_votes")

    def __init__(self, validators: ValidatorSet) -> None:
        self._validators = validators
        self._votes: dict[tuple[int, VoteKind], dict[int, dict[bytes | None, Vote]]] = defaultdict(
            dict
        )
        self._power: dict[tuple[int, VoteKind], dict[bytes | None, int]] = defaultdict(
            lambda: defaultdict(int)
        )
        self._senders: dict[int, set[int]] = defaultdict(set)

    def versions(self, vote: Vote) -> dict[bytes | None, Vote]:
        """The votes already held from ``vote``'s validator, round and kind, by block hash."""
        return self._votes.get((vote.round, vote.kind), {}).get(vote.validator_index, {})

    def add(self, vote: Vote) -> None:
        """Count a verified vote (a version not held yet)."""
        slot = (vote.round, vote.kind)
        self._votes[slot].setdefault(vote.validator_index, {})[vote.block_hash] = vote
        power = self._validators.validators[vote.validator_index].power
        self._power[slot][vote.block_hash] += power
        self.note_sender(vote.round, vote.validator_index)

    def note_sender(self, round_: int, index: int) -> None:
        """Record that validator ``index`` sent something for ``round_``."""
        self._senders[round_].add(index)

    def power_for(self, round_: int, kind: VoteKind, block_hash: bytes | None) -> int:
        """Power of the votes for ``block_hash`` (None: nil)."""
        return self._power.get((round_, kind), {}).get(block_hash, 0)

    def power_any(self, round_: int, kind: VoteKind) -> int:
        """Power of the validators that cast any vote of ``kind`` in ``round_``."""
        members = self._validators.validators
        return sum(members[i].power for i in self._votes.get((round_, kind), {}))

    def sender_power(self, round_: int) -> int:
        """Power of the validators that sent any message for ``round_``."""
        members = self._validators.validators
        return sum(members[i].power for i in self._senders.get(round_, ()))

    def rounds_above(self, round_: int) -> list[int]:
        """Rounds above ``round_`` from which something was received."""
        return sorted(r for r in self._senders if r > round_)

    def quorum_blocks(self, kind: VoteKind) -> list[tuple[int, bytes]]:
        """``(round, block_hash)`` pairs that have 2f+1 votes of ``kind``."""
        return [
            (r, block_hash)
            for (r, k), tally in self._power.items()
            if k is kind
            for block_hash, power in tally.items()
            if block_hash is not None and self._validators.has_quorum(power)
        ]

    def votes_for(self, round_: int, kind: VoteKind, block_hash: bytes | None) -> list[Vote]:
        """The votes of ``kind`` for ``block_hash`` in ``round_``, by validator index."""
        slot = self._votes.get((round_, kind), {})
        return [slot[i][block_hash] for i in sorted(slot) if block_hash in slot[i]]

    def certificate(self, round_: int, block_hash: bytes) -> CommitCertificate:
        """Aggregate the precommits for ``block_hash`` in ``round_`` into a certificate."""
        votes = self.votes_for(round_, VoteKind.PRECOMMIT, block_hash)
        signers = make_bitmap((v.validator_index for v in votes), len(self._validators))
        signature = bls_aggregate(v.signature for v in votes)
        return CommitCertificate(votes[0].height, round_, block_hash, signers, signature)
