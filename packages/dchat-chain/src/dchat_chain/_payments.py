"""Payment references: a transfer that names what it pays for, provable to a light client.

A ``transfer`` may carry ``ref``, 32 opaque bytes its sender chose (dchat's
chat layer puts a hash commitment to one chat message there, see
``dchat_messaging``). The chain keeps one record per reference::

    payref/<ref(32)> = canonical {"amt": amount, "from": sender(32), "to": recipient(32)}

written by the transfer that moved the money, in the same state change, so
the record exists exactly when that transfer succeeded. A second transfer
with the same ``ref`` is refused (code 9): a reference pays once. Whoever
holds the reference reads the record from ``GET /v1/chain/state/{key}`` with
its Merkle proof; :func:`decode_payment_record` parses the proven value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._errors import ChainAnswerError
from ._tx import MAX_AMOUNT
from ._tx_errors import RejectedTransactionError

if TYPE_CHECKING:
    from ._state import StateStore

__all__ = (
    "PAYMENT_PREFIX",
    "PAYMENT_REF_SIZE",
    "PaymentRecord",
    "decode_payment_record",
    "payment_key",
    "record_payment",
)

PAYMENT_PREFIX: Final = b"payref/"
PAYMENT_REF_SIZE: Final = 32
_FIELDS: Final = frozenset({"amt", "from", "to"})
_LIMITS: Final = DecodeLimits(max_size=256, max_depth=2, max_items=8)


def payment_key(ref: bytes) -> bytes:
    """The state key of the record of payment reference ``ref``."""
    if len(ref) != PAYMENT_REF_SIZE:
        raise ValueError("a payment reference is 32 bytes")
    return PAYMENT_PREFIX + ref


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """What the chain recorded for a payment reference: who paid whom how much."""

    sender: bytes
    recipient: bytes
    amount: int

    def to_bytes(self) -> bytes:
        """The stored value."""
        return canonical_encode({"amt": self.amount, "from": self.sender, "to": self.recipient})


def decode_payment_record(value: bytes) -> PaymentRecord:
    """Parse a proven ``payref/`` value.

    Raises:
        ChainAnswerError: not a payment record.
    """
    try:
        f = Fields(canonical_decode(value, _LIMITS), "payment record", _FIELDS)
        return PaymentRecord(
            f.get_bytes("from", size=32),
            f.get_bytes("to", size=32),
            f.get_int("amt", lo=1, hi=MAX_AMOUNT),
        )
    except DecodeError as exc:
        raise ChainAnswerError(f"not a payment record: {exc}") from None


def record_payment(state: StateStore, ref: bytes, record: PaymentRecord) -> None:
    """Keep ``record`` under ``ref`` (inside the transfer's state change).

    Raises:
        RejectedTransactionError: the reference paid already.
    """
    key = payment_key(ref)
    if state.get(key) is not None:
        raise RejectedTransactionError("this payment reference was used already")
    state.set(key, record.to_bytes())
