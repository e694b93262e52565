"""Small helpers shared by the state machines: keys, records and body readers.

State keys are ASCII prefixes followed by fixed-size binary parts (see
docs/protocol.md, "Chain: transactions and state"); values are canonical maps
with short keys. Records are read from our own committed state, yet still
decoded strictly: a corrupt store then fails loudly instead of diverging.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Self

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._tx import MAX_AMOUNT
from ._tx_errors import (
    InsufficientFundsError,
    MalformedTransactionError,
    RejectedTransactionError,
)

if TYPE_CHECKING:
    from ._state import StateStore

__all__ = (
    "ACCOUNT_PREFIX",
    "Account",
    "account_key",
    "amount",
    "body_fields",
    "burn",
    "credit",
    "debit",
    "get_record",
    "int_be",
    "load_account",
    "put_record",
    "store_account",
)

_STATE_LIMITS: Final = DecodeLimits(max_size=1 << 20, max_depth=6, max_items=1 << 16)
ACCOUNT_PREFIX: Final = b"acct/"
_ACCOUNT: Final = struct.Struct(">QQ")


def int_be(value: int, size: int = 8) -> bytes:
    """A fixed-width big-endian key part, so keys sort by number."""
    return value.to_bytes(size, "big")


def get_record(state: StateStore, key: bytes) -> Any:
    """The decoded record at ``key`` or ``None``."""
    raw = state.get(key)
    return None if raw is None else canonical_decode(raw, _STATE_LIMITS)


def put_record(state: StateStore, key: bytes, value: Any) -> None:
    """Store ``value`` canonically encoded at ``key``."""
    state.set(key, canonical_encode(value))


def body_fields(body: dict[str, Any], kind: str, allowed: set[str]) -> Fields:
    """A checked reader over a transaction body.

    Raises:
        MalformedTransactionError: The body holds unknown fields.
    """
    try:
        return Fields(body, kind, frozenset(allowed))
    except DecodeError as exc:
        raise MalformedTransactionError(str(exc)) from None


def amount(fields: Fields, key: str, *, lo: int = 0) -> int:
    """A token amount field in ``[lo, MAX_AMOUNT]``."""
    return fields.get_int(key, lo=lo, hi=MAX_AMOUNT)


@dataclass(frozen=True, slots=True)
class Account:
    """A fee/currency account: spendable balance and the next nonce.

    Stored as 16 bytes, ``balance (u64 BE) || nonce (u64 BE)``, not as a CBOR map:
    accounts are read and written several times per transaction, and a fixed
    layout costs a fraction of a canonical encode/decode.
    """

    balance: int = 0
    nonce: int = 0

    def to_bytes(self) -> bytes:
        """The stored 16-byte form."""
        return _ACCOUNT.pack(self.balance, self.nonce)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        """Read a stored account.

        Raises:
            DecodeError: ``raw`` is not 16 bytes.
        """
        if len(raw) != _ACCOUNT.size:
            raise DecodeError("account: expected 16 bytes")
        return cls(*_ACCOUNT.unpack(raw))


def account_key(owner: bytes) -> bytes:
    """``acct/`` + the owner's 32-byte public key."""
    return ACCOUNT_PREFIX + owner


def load_account(state: StateStore, owner: bytes) -> Account:
    """The account of ``owner`` (an empty one if never seen)."""
    raw = state.get(account_key(owner))
    return Account() if raw is None else Account.from_bytes(raw)


def store_account(state: StateStore, owner: bytes, account: Account) -> None:
    """Write ``owner``'s account; an empty, never-used account is not stored."""
    if account == Account():
        state.delete(account_key(owner))
    else:
        state.set(account_key(owner), account.to_bytes())


def credit(state: StateStore, owner: bytes, value: int) -> None:
    """Add ``value`` to ``owner``'s balance."""
    if value:
        account = load_account(state, owner)
        balance = account.balance + value
        if balance > MAX_AMOUNT:
            raise RejectedTransactionError("balance would overflow")
        store_account(state, owner, Account(balance, account.nonce))


def debit(state: StateStore, owner: bytes, value: int) -> None:
    """Take ``value`` from ``owner``'s balance.

    Raises:
        InsufficientFundsError: The balance is smaller than ``value``.
    """
    if value:
        account = load_account(state, owner)
        if account.balance < value:
            raise InsufficientFundsError("balance too low")
        store_account(state, owner, Account(account.balance - value, account.nonce))


BURNED_KEY: Final = b"meta/burned"


def burn(state: StateStore, value: int) -> None:
    """Destroy ``value`` tokens, counted under ``meta/burned`` for supply audits."""
    if value:
        burned = get_record(state, BURNED_KEY) or 0
        put_record(state, BURNED_KEY, burned + value)
