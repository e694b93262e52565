"""Currency chain: relay faults found by the uptime reports, and their slashing evidence.

Theory of operation. When an epoch's rewards are paid (see
:mod:`._currency_relays`), every relay some validator scored gets its *median*
score of that epoch (a validator that could not reach a relay, or caught it
claiming receipts it could not show, scores it low; the median means a
minority of validators can neither sink nor save it). A median below
``relay_fault_score`` is a *strike*; a median at or above it clears the
strikes. At ``relay_fault_epochs`` strikes in a row (0: never) the chain
records a *fault* of that relay, at that epoch, and clears the strikes.

A recorded fault is punished through the chain's evidence path: a ``slash``
transaction whose evidence is :class:`RelayFaultEvidence` (the relay's
account and the epoch of the fault). Anyone may send it; the chain checks it
against its own record, so every validator decides it the same way, and it
can succeed once. It takes ``relay_slash_permille`` of the relay's bond and
of its unbonding entries (so unbonding right before does not escape), pays
``slash_reward_permille`` of that to the sender and burns the rest, like a
double-signing validator's penalty.

State: ``rstrike/<account>`` -> strikes in a row; ``rfault/<account>`` ->
epoch of the unpunished fault; ``rfaults`` -> the accounts with one, sorted
(so a validator finds them without a scan).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self

from dchat_core import DchatError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._currency_genesis import CURRENCY_PARAMS
from ._currency_relays import relay_key
from ._currency_staking import slash_unbonding
from ._errors import InvalidEvidenceError
from ._state_genesis import param
from ._state_records import body_fields, burn, credit, get_record, put_record
from ._tx_errors import RejectedTransactionError, UnauthorizedError

if TYPE_CHECKING:
    from ._state import StateStore
    from ._tx import Transaction

__all__ = (
    "FAULTS_KEY",
    "RelayFaultEvidence",
    "is_relay_fault",
    "note_faults",
    "pending_faults",
    "slash_relay",
)

FAULTS_KEY: Final = b"rfaults"
EVIDENCE_TYPE: Final = "relay-fault"
_LIMITS: Final = DecodeLimits(max_size=256, max_depth=1, max_items=8)


@dataclass(frozen=True, slots=True)
class RelayFaultEvidence:
    """The evidence that punishes a recorded relay fault.

    Attributes:
        relay: The relay's stake account (32 bytes).
        epoch: The epoch at which the chain recorded the fault.
    """

    relay: bytes
    epoch: int

    def to_bytes(self) -> bytes:
        """Canonical encoding: ``{"t": "relay-fault", "relay": account, "e": epoch}``."""
        return canonical_encode({"t": EVIDENCE_TYPE, "relay": self.relay, "e": self.epoch})

    def hash(self) -> bytes:
        """SHA-256 of the encoding: one id per offence."""
        return hashlib.sha256(self.to_bytes()).digest()

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode from untrusted bytes (the chain checks it against its record).

        Raises:
            InvalidEvidenceError: Not well-formed relay-fault evidence.
        """
        try:
            f = Fields(canonical_decode(data, _LIMITS), "evidence", frozenset({"t", "relay", "e"}))
            if f.get_str("t", max_len=32) != EVIDENCE_TYPE:
                raise InvalidEvidenceError("not relay-fault evidence")
            return cls(f.get_bytes("relay", size=32), f.get_int("e", hi=1 << 62))
        except InvalidEvidenceError:
            raise
        except DchatError as exc:
            raise InvalidEvidenceError(f"malformed evidence: {exc}") from None


def _param(params: dict[str, Any], name: str) -> int:
    return param(params, CURRENCY_PARAMS, name)


def _set_fault_list(state: StateStore, accounts: list[bytes]) -> None:
    if accounts:
        put_record(state, FAULTS_KEY, sorted(accounts))
    elif state.get(FAULTS_KEY) is not None:
        state.delete(FAULTS_KEY)


def note_faults(
    state: StateStore, params: dict[str, Any], epoch: int, medians: dict[bytes, int]
) -> None:
    """Count strikes from ``epoch``'s median scores; record a fault at the threshold."""
    needed = _param(params, "relay_fault_epochs")
    if not needed:
        return
    floor = _param(params, "relay_fault_score")
    faults: list[bytes] = get_record(state, FAULTS_KEY) or []
    for relay, score in sorted(medians.items()):
        key = b"rstrike/" + relay
        if score >= floor:
            if state.get(key) is not None:
                state.delete(key)
            continue
        strikes: int = (get_record(state, key) or 0) + 1
        if strikes < needed:
            put_record(state, key, strikes)
            continue
        if state.get(key) is not None:
            state.delete(key)
        put_record(state, b"rfault/" + relay, epoch)
        if relay not in faults:
            faults.append(relay)
    _set_fault_list(state, faults)


def pending_faults(state: StateStore) -> list[RelayFaultEvidence]:
    """Evidence for every recorded, unpunished relay fault (committed state)."""
    raw = state.committed_get(FAULTS_KEY)
    accounts: list[bytes] = [] if raw is None else canonical_decode(raw)
    found = []
    for relay in accounts:
        epoch = state.committed_get(b"rfault/" + relay)
        if epoch is not None:
            found.append(RelayFaultEvidence(relay, canonical_decode(epoch)))
    return found


def is_relay_fault(tx: Transaction) -> bool:
    """Whether a ``slash`` transaction carries relay-fault evidence (by its type tag)."""
    evidence = tx.body.get("evidence")
    if not isinstance(evidence, bytes) or len(evidence) > 256:
        return False
    try:
        decoded = canonical_decode(evidence, _LIMITS)
    except DchatError:
        return False
    return isinstance(decoded, dict) and decoded.get("t") == EVIDENCE_TYPE


def slash_relay(state: StateStore, params: dict[str, Any], tx: Transaction) -> None:
    """``slash {evidence}`` with relay-fault evidence: punish a recorded relay fault."""
    fields = body_fields(tx.body, "slash", {"evidence"})
    try:
        evidence = RelayFaultEvidence.from_bytes(fields.get_bytes("evidence", max_size=256))
    except InvalidEvidenceError as exc:
        raise UnauthorizedError(f"evidence rejected: {exc}") from None
    relay = evidence.relay
    if get_record(state, b"rfault/" + relay) != evidence.epoch:
        raise RejectedTransactionError("no such relay fault is recorded")
    rate = _param(params, "relay_slash_permille")
    bonded: int = get_record(state, relay_key(relay)) or 0
    taken = bonded * rate // 1000
    if bonded - taken:
        put_record(state, relay_key(relay), bonded - taken)
    elif bonded:
        state.delete(relay_key(relay))
    taken += slash_unbonding(state, relay, rate)
    reward = taken * params["slash_reward_permille"] // 1000
    credit(state, tx.sender, reward)
    burn(state, taken - reward)
    state.delete(b"rfault/" + relay)
    faults: list[bytes] = get_record(state, FAULTS_KEY) or []
    _set_fault_list(state, [f for f in faults if f != relay])
