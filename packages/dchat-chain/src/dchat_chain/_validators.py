"""Validators, validator sets and stake-weighted proposer rotation.

A :class:`ValidatorSet` is ordered by validator id (so a vote's validator index
and a certificate's bitmap mean the same on every node) and carries each
validator's *proposer priority*, Tendermint's weighted round robin:

    one step:  every priority += its power;
               the proposer is the highest priority (lowest index on ties);
               the proposer's priority -= total power.

Over ``total`` steps a validator proposes ``power`` times, spread out evenly.
Before each step priorities are re-centred around zero and, if their spread
exceeds ``2 * total``, scaled down, which bounds them forever. The proposer of
``(height, round)`` is the one chosen by step ``round + 1`` from the height's
priorities, and the next height's priorities are this height's after one step,
so rotation depends only on the chain, never on a node's clock or luck.

Keys enter a set only with a proof of possession of their BLS key
(checked by :meth:`ValidatorSet.create`, :meth:`ValidatorSet.from_bytes` and
:meth:`ValidatorSet.with_changes`); without it a rogue key could forge the
one-pairing aggregate a commit certificate relies on.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, DecodeError, Fields, canonical_decode, canonical_encode
from dchat_crypto import BlsPublicKey, BlsSignature, VerifyKey
from dchat_crypto.hazmat import bls_verify_possession

from ._errors import InvalidValidatorSetError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ._app import ValidatorUpdate

__all__ = ("MAX_VALIDATORS", "Validator", "ValidatorSet", "validator_set_of")

MAX_VALIDATORS: Final = 1024
MAX_TOTAL_POWER: Final = 1 << 60
MAX_ID_SIZE: Final = 64
_HASH_DOMAIN: Final = "dchat-validators-v1"
_V_FIELDS: Final = frozenset({"id", "key", "bls", "pop", "power"})


@dataclass(frozen=True, slots=True)
class Validator:
    """One validator: who it is, its BLS vote key and its voting power."""

    validator_id: bytes
    signing_key: VerifyKey  # Ed25519 identity key
    bls_public_key: BlsPublicKey
    power: int
    proof_of_possession: BlsSignature  # over bls_public_key, from BlsSecretKey.prove_possession

    def to_obj(self) -> dict[str, Any]:
        """The canonical map of this validator."""
        return {
            "id": self.validator_id,
            "key": self.signing_key.to_bytes(),
            "bls": self.bls_public_key.to_bytes(),
            "pop": self.proof_of_possession.to_bytes(),
            "power": self.power,
        }

    @classmethod
    def from_obj(cls, obj: Any) -> Validator:
        """Decode a validator map (the proof is not checked here).

        Raises:
            InvalidValidatorSetError: The map is malformed.
        """
        try:
            f = Fields(obj, "validator", _V_FIELDS)
            return cls(
                validator_id=f.get_bytes("id", max_size=MAX_ID_SIZE),
                signing_key=VerifyKey.from_bytes(f.get_bytes("key", size=32)),
                bls_public_key=BlsPublicKey.from_bytes(f.get_bytes("bls", size=48)),
                power=f.get_int("power", lo=0, hi=MAX_TOTAL_POWER),
                proof_of_possession=BlsSignature.from_bytes(f.get_bytes("pop", size=96)),
            )
        except DchatError as exc:
            raise InvalidValidatorSetError(f"malformed validator: {exc}") from None


def _check_possession(validator: Validator) -> None:
    try:
        bls_verify_possession(validator.bls_public_key, validator.proof_of_possession)
    except DchatError:
        raise InvalidValidatorSetError("a BLS key lacks a valid proof of possession") from None


def _check_members(validators: Sequence[Validator]) -> None:
    if not 0 < len(validators) <= MAX_VALIDATORS:
        raise InvalidValidatorSetError("a validator set holds 1 to 1024 validators")
    ids = [v.validator_id for v in validators]
    if ids != sorted(ids) or len(set(ids)) != len(ids):
        raise InvalidValidatorSetError("validators must be sorted by id without duplicates")
    if len({v.bls_public_key for v in validators}) != len(validators):
        raise InvalidValidatorSetError("two validators share a BLS key")
    for v in validators:
        if not v.validator_id or not 0 < v.power <= MAX_TOTAL_POWER:
            raise InvalidValidatorSetError("a validator has an empty id or a bad power")
    if sum(v.power for v in validators) > MAX_TOTAL_POWER:
        raise InvalidValidatorSetError("total voting power too large")


class ValidatorSet:
    """An immutable, ordered set of validators with proposer priorities."""

    __slots__ = ("_by_id", "_hash", "_priorities", "_proposers", "_total", "validators")

    validators: tuple[Validator, ...]

    def __init__(self, validators: Iterable[Validator], priorities: Sequence[int]) -> None:
        # Private: use create() / from_bytes(), which check proofs of possession.
        self.validators = tuple(validators)
        _check_members(self.validators)
        if len(priorities) != len(self.validators):
            raise InvalidValidatorSetError("one priority per validator")
        self._priorities = tuple(priorities)
        self._total = sum(v.power for v in self.validators)
        self._by_id = {v.validator_id: i for i, v in enumerate(self.validators)}
        self._hash: bytes | None = None
        self._proposers: dict[int, int] = {}

    @classmethod
    def create(cls, validators: Iterable[Validator]) -> ValidatorSet:
        """A genesis set: sorted by id, zero priorities, every proof of possession checked.

        Raises:
            InvalidValidatorSetError: Bad members or a missing/forged proof.
        """
        members = sorted(validators, key=lambda v: v.validator_id)
        result = cls(members, [0] * len(members))
        for v in members:
            _check_possession(v)
        return result

    # -- facts ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.validators)

    @property
    def total_power(self) -> int:
        """The sum of every validator's power."""
        return self._total

    @property
    def priorities(self) -> tuple[int, ...]:
        """Proposer priorities, aligned with :attr:`validators`."""
        return self._priorities

    def has_quorum(self, power: int) -> bool:
        """Whether ``power`` is more than two thirds of the total (Tendermint's 2f+1)."""
        return 3 * power > 2 * self._total

    def has_one_third(self, power: int) -> bool:
        """Whether ``power`` is more than a third of the total (Tendermint's f+1)."""
        return 3 * power > self._total

    def index_of(self, validator_id: bytes) -> int | None:
        """The index of ``validator_id``, or None if it is not in the set."""
        return self._by_id.get(validator_id)

    def hash(self) -> bytes:
        """SHA-256 of the canonical (id, keys, power) list; priorities and proofs excluded."""
        if self._hash is None:
            rows = [
                [v.validator_id, v.signing_key.to_bytes(), v.bls_public_key.to_bytes(), v.power]
                for v in self.validators
            ]
            self._hash = hashlib.sha256(canonical_encode([_HASH_DOMAIN, rows])).digest()
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValidatorSet):
            return NotImplemented
        return self.validators == other.validators and self._priorities == other._priorities

    def __hash__(self) -> int:
        return hash((self.hash(), self._priorities))

    def __repr__(self) -> str:
        return f"ValidatorSet(n={len(self)}, total={self._total}, hash={self.hash().hex()[:16]})"

    # -- proposer rotation ---------------------------------------------------------------

    def _step(self, priorities: list[int]) -> int:
        total = self._total
        spread = max(priorities) - min(priorities)
        if spread > 2 * total:
            ratio = -(-spread // (2 * total))  # ceil: keeps the spread within 2 * total
            priorities[:] = [p // ratio for p in priorities]
        # Floor division keeps this integer and deterministic across platforms.
        average = sum(priorities) // len(priorities)
        priorities[:] = [
            p - average + v.power for p, v in zip(priorities, self.validators, strict=True)
        ]
        best = max(range(len(priorities)), key=lambda i: (priorities[i], -i))
        priorities[best] -= total
        return best

    def proposer(self, round_: int) -> Validator:
        """The proposer of ``round_`` at the height this set (with its priorities) is for."""
        index = self._proposers.get(round_)
        if index is None:
            priorities = list(self._priorities)
            for _ in range(round_ + 1):
                index = self._step(priorities)
            assert index is not None
            if len(self._proposers) < 64:
                self._proposers[round_] = index
        return self.validators[index]

    def advanced(self) -> ValidatorSet:
        """The same validators with priorities one step on: the next height's set."""
        priorities = list(self._priorities)
        self._step(priorities)
        return self._derive(self.validators, priorities)

    def _derive(self, validators: Sequence[Validator], priorities: Sequence[int]) -> ValidatorSet:
        result = ValidatorSet.__new__(ValidatorSet)
        ValidatorSet.__init__(result, validators, priorities)
        return result

    def with_changes(self, changes: Sequence[Validator]) -> ValidatorSet:
        """Apply power changes (0 removes); new or re-keyed validators must prove possession.

        A newcomer starts at priority ``-1.125 * total`` (Tendermint's rule), so it
        cannot jump the proposer queue by re-joining.

        Raises:
            InvalidValidatorSetError: A bad change, a missing proof, or an empty result.
        """
        members = {
            v.validator_id: (v, p) for v, p in zip(self.validators, self._priorities, strict=True)
        }
        if len({c.validator_id for c in changes}) != len(changes):
            raise InvalidValidatorSetError("two changes for one validator")
        newcomers: list[Validator] = []
        for change in changes:
            old = members.pop(change.validator_id, None)
            if change.power == 0:
                continue
            if old is None or old[0].bls_public_key != change.bls_public_key:
                _check_possession(change)
                newcomers.append(change)
            else:
                members[change.validator_id] = (change, old[1])
        total = sum(v.power for v, _ in members.values()) + sum(v.power for v in newcomers)
        for v in newcomers:
            members[v.validator_id] = (v, -(total + total // 8))
        ordered = sorted(members.values(), key=lambda vp: vp[0].validator_id)
        return self._derive([v for v, _ in ordered], [p for _, p in ordered])

    # -- encoding ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Canonical encoding, proofs and priorities included."""
        return canonical_encode(
            {"v": [v.to_obj() for v in self.validators], "p": list(self._priorities)}
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, check_possession: bool = True) -> ValidatorSet:
        """Decode a set from untrusted bytes, checking every proof of possession.

        ``check_possession=False`` is for bytes this node stored itself.

        Raises:
            InvalidValidatorSetError: The bytes are not a valid set.
        """
        try:
            f = Fields(canonical_decode(data), "validator set", frozenset({"v", "p"}))
            members = [Validator.from_obj(v) for v in f.get_list("v", max_len=MAX_VALIDATORS)]
            priorities = f.get_list("p", max_len=MAX_VALIDATORS)
        except DecodeError as exc:
            raise InvalidValidatorSetError(f"malformed validator set: {exc}") from None
        if any(isinstance(p, bool) or not isinstance(p, int) for p in priorities):
            raise InvalidValidatorSetError("priorities must be integers")
        result = cls(members, priorities)
        if check_possession:
            for v in members:
                _check_possession(v)
        return result


def validator_set_of(updates: Iterable[ValidatorUpdate]) -> ValidatorSet:
    """The set an application's validator updates describe (its genesis validators)."""
    return ValidatorSet.create(
        Validator(
            validator_id=u.validator_id,
            signing_key=VerifyKey.from_bytes(u.signing_key),
            bls_public_key=BlsPublicKey.from_bytes(u.bls_public_key),
            power=u.power,
            proof_of_possession=BlsSignature.from_bytes(u.proof_of_possession),
        )
        for u in updates
    )
