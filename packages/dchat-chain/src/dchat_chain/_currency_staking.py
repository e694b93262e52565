"""Currency chain: validator stake, unbonding, slashing and validator-set updates.

Theory of operation. A validator is an account that bonded stake together with
a BLS key and its proof of possession (checked on the first ``stake``). Its
Ed25519 key is the account key itself, so ``validator_id = NodeId(account key)``
needs no further proof. Voting power is ``stake // power_unit`` while the stake
is at least ``min_validator_stake`` and the validator is not tombstoned.

``unbond`` moves stake into an unbonding entry that pays out at
``height + unbonding_blocks``; until then it can still be slashed, so leaving
right before evidence arrives does not escape the penalty. Double-sign evidence,
checked by an injected :class:`EvidenceVerifier`, slashes ``slash_permille`` of
bonded and unbonding stake, pays ``slash_reward_permille`` of it to the reporter,
burns the rest and tombstones the validator (power 0 forever).

At each block end, every validator whose power differs from the power last
reported to the engine yields a :class:`ValidatorUpdate`, in validator-id order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Protocol

from dchat_core import DchatError, NodeId
from dchat_crypto import BlsPublicKey, BlsSignature
from dchat_crypto.hazmat import bls_verify_possession

from ._app import ValidatorUpdate
from ._state_records import (
    amount,
    body_fields,
    burn,
    credit,
    debit,
    get_record,
    int_be,
    put_record,
)
from ._tx_errors import RejectedTransactionError, UnauthorizedError

if TYPE_CHECKING:
    from ._app import BlockContext
    from ._state import StateStore
    from ._tx import Transaction

__all__ = (
    "EvidenceVerifier",
    "current_validators",
    "load_validator",
    "queue_unbonding",
    "register_validator",
    "release_unbonded",
    "slash",
    "slash_unbonding",
    "stake",
    "unbond",
    "validator_id_of",
    "validator_updates",
)

VALSET_KEY: Final = b"valset"
MAX_POWER: Final = 1 << 50


class EvidenceVerifier(Protocol):
    """Checks misbehaviour evidence; the consensus engine's evidence type provides it."""

    def __call__(self, evidence: bytes) -> bytes:
        """Return the offending validator's id.

        Raises:
            InvalidEvidenceError: The evidence is malformed, forged or too old.
        """
        ...


def validator_id_of(operator: bytes) -> bytes:
    """The validator id of an account key: ``NodeId.derive(key)`` as 32 bytes."""
    return bytes(NodeId.derive(operator))


def _val_key(operator: bytes) -> bytes:
    return b"val/" + operator


def load_validator(state: StateStore, operator: bytes) -> dict[str, Any] | None:
    """The validator record of ``operator`` or ``None``."""
    record: dict[str, Any] | None = get_record(state, _val_key(operator))
    return record


def _validator_set(state: StateStore) -> list[bytes]:
    members: list[bytes] = get_record(state, VALSET_KEY) or []
    return members


def register_validator(
    state: StateStore, params: dict[str, Any], operator: bytes, bls: bytes, pop: bytes
) -> None:
    """Create an empty validator record after checking the BLS proof of possession."""
    members = _validator_set(state)
    if len(members) >= params["max_validators"]:
        raise RejectedTransactionError("the validator registry is full")
    try:
        bls_verify_possession(BlsPublicKey.from_bytes(bls), BlsSignature.from_bytes(pop))
    except DchatError:
        raise RejectedTransactionError("BLS key lacks a valid proof of possession") from None
    record = {"stake": 0, "bls": bls, "pop": pop, "power": 0, "tomb": False}
    put_record(state, _val_key(operator), record)
    put_record(state, b"valid/" + validator_id_of(operator), operator)
    put_record(state, VALSET_KEY, sorted([*members, operator]))


def stake(state: StateStore, params: dict[str, Any], tx: Transaction) -> None:
    """``stake {amount, [bls, pop]}``: bond ``amount`` to the sender's validator."""
    fields = body_fields(tx.body, "stake", {"amount", "bls", "pop"})
    value = amount(fields, "amount", lo=1)
    record = load_validator(state, tx.sender)
    if record is None:
        if not fields.has("bls") or not fields.has("pop"):
            raise RejectedTransactionError("a first stake must carry a BLS key and its proof")
        bls, pop = fields.get_bytes("bls", size=48), fields.get_bytes("pop", size=96)
        register_validator(state, params, tx.sender, bls, pop)
        record = load_validator(state, tx.sender)
        assert record is not None
    elif fields.has("bls") or fields.has("pop"):
        raise RejectedTransactionError("a validator's BLS key cannot change")
    if record["tomb"]:
        raise RejectedTransactionError("a tombstoned validator cannot bond again")
    debit(state, tx.sender, value)
    record["stake"] += value
    put_record(state, _val_key(tx.sender), record)


def queue_unbonding(
    state: StateStore, params: dict[str, Any], context: BlockContext, owner: bytes, value: int
) -> None:
    """Put ``value`` of ``owner``'s bonded funds on the unbonding queue."""
    release = context.height + params["unbonding_blocks"]
    entries: list[list[int]] = get_record(state, b"unb/" + owner) or []
    put_record(state, b"unb/" + owner, [*entries, [release, value]])
    queue_key = b"unbq/" + int_be(release)
    queue: list[bytes] = get_record(state, queue_key) or []
    if owner not in queue:
        put_record(state, queue_key, sorted([*queue, owner]))


def unbond(
    state: StateStore, params: dict[str, Any], context: BlockContext, tx: Transaction
) -> None:
    """``unbond {amount}``: move validator stake into an unbonding entry."""
    fields = body_fields(tx.body, "unbond", {"amount"})
    value = amount(fields, "amount", lo=1)
    record = load_validator(state, tx.sender)
    if record is None or record["stake"] < value:
        raise RejectedTransactionError("not that much stake bonded")
    record["stake"] -= value
    put_record(state, _val_key(tx.sender), record)
    queue_unbonding(state, params, context, tx.sender, value)


def release_unbonded(state: StateStore, height: int) -> None:
    """Pay out every unbonding entry that matures at ``height``."""
    queue_key = b"unbq/" + int_be(height)
    owners: list[bytes] = get_record(state, queue_key) or []
    for owner in owners:
        entries: list[list[int]] = get_record(state, b"unb/" + owner) or []
        due = sum(value for release, value in entries if release == height)
        rest = [entry for entry in entries if entry[0] != height]
        if rest:
            put_record(state, b"unb/" + owner, rest)
        else:
            state.delete(b"unb/" + owner)
        credit(state, owner, due)
    if owners:
        state.delete(queue_key)


def slash(
    state: StateStore, params: dict[str, Any], verifier: EvidenceVerifier | None, tx: Transaction
) -> None:
    """``slash {evidence}``: punish a double-signing validator proven by ``evidence``."""
    fields = body_fields(tx.body, "slash", {"evidence"})
    evidence = fields.get_bytes("evidence", max_size=64 << 10)
    if verifier is None:
        raise RejectedTransactionError("this chain has no evidence verifier")
    try:
        offender_id = verifier(evidence)
    except DchatError as exc:
        raise UnauthorizedError(f"evidence rejected: {exc}") from None
    operator = get_record(state, b"valid/" + offender_id)
    record = None if operator is None else load_validator(state, operator)
    if operator is None or record is None:
        raise RejectedTransactionError("evidence names no known validator")
    if record["tomb"]:
        raise RejectedTransactionError("validator already slashed and tombstoned")
    rate = params["slash_permille"]
    taken = record["stake"] * rate // 1000
    record["stake"] -= taken
    record["tomb"] = True
    put_record(state, _val_key(operator), record)
    taken += slash_unbonding(state, operator, rate)
    reward = taken * params["slash_reward_permille"] // 1000
    credit(state, tx.sender, reward)
    burn(state, taken - reward)


def slash_unbonding(state: StateStore, owner: bytes, rate: int) -> int:
    """Take ``rate`` permille of each of ``owner``'s unbonding entries; the amount taken."""
    entries: list[list[int]] = get_record(state, b"unb/" + owner) or []
    taken = sum(value * rate // 1000 for _, value in entries)
    if entries:
        put_record(state, b"unb/" + owner, [[r, v - v * rate // 1000] for r, v in entries])
    return taken


def _power(params: dict[str, Any], record: dict[str, Any]) -> int:
    if record["tomb"] or record["stake"] < params["min_validator_stake"]:
        return 0
    power: int = min(record["stake"] // params["power_unit"], MAX_POWER)
    return power


def validator_updates(state: StateStore, params: dict[str, Any]) -> tuple[ValidatorUpdate, ...]:
    """Updates for every validator whose power changed since it was last reported."""
    updates = []
    for operator in _validator_set(state):
        record = load_validator(state, operator)
        assert record is not None
        power = _power(params, record)
        if power != record["power"]:
            record["power"] = power
            put_record(state, _val_key(operator), record)
            update = ValidatorUpdate(
                validator_id_of(operator), record["bls"], power, operator, record["pop"]
            )
            updates.append(update)
    return tuple(sorted(updates, key=lambda u: u.validator_id))


def current_validators(state: StateStore, params: dict[str, Any]) -> tuple[ValidatorUpdate, ...]:
    """Every validator with power, as updates (the set a fresh engine starts from)."""
    updates = []
    for operator in _validator_set(state):
        record = load_validator(state, operator)
        assert record is not None
        if record["power"]:
            updates.append(
                ValidatorUpdate(
                    validator_id_of(operator),
                    record["bls"],
                    record["power"],
                    operator,
                    record["pop"],
                )
            )
    return tuple(sorted(updates, key=lambda u: u.validator_id))
