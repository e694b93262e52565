"""Typed transaction errors, each with the result code it gives in a block.

::

    InvalidTransactionError(PeerError, ValueError)        (from ._errors)
    ├── MalformedTransactionError     code 1  not a well-formed transaction or body
    ├── BadTransactionSignatureError  code 2  the sender's signature does not verify
    ├── WrongChainError               code 3  signed for another chain (cross-chain replay)
    ├── NonceError
    │   ├── ReplayedNonceError        code 4  nonce already used by the sender
    │   └── FutureNonceError          code 5  nonce beyond the next one (a gap)
    ├── InsufficientFundsError        code 6  balance cannot cover fee and amount
    ├── FeeTooLowError                code 7  fee under the chain's minimum
    ├── UnauthorizedError             code 8  the sender may not do this
    └── RejectedTransactionError      code 9  valid form, but the state forbids it now

Codes 1-5 and 7 are *admission* failures: the transaction has no effect at all,
not even a fee. Codes 6, 8 and 9 raised while executing an admitted transaction
still cost its fee and consume its nonce; only its own writes are undone.
"""

from __future__ import annotations

from typing import ClassVar

from ._errors import InvalidTransactionError

__all__ = (
    "BadTransactionSignatureError",
    "FeeTooLowError",
    "FutureNonceError",
    "InsufficientFundsError",
    "MalformedTransactionError",
    "NonceError",
    "RejectedTransactionError",
    "ReplayedNonceError",
    "UnauthorizedError",
    "WrongChainError",
    "result_code",
)


class _Coded(InvalidTransactionError):
    code: ClassVar[int] = 9


class MalformedTransactionError(_Coded):
    """The bytes are not a well-formed transaction, or its body is malformed for its kind."""

    code = 1


class BadTransactionSignatureError(_Coded):
    """The sender's signature over the transaction does not verify."""

    code = 2

    def __init__(self) -> None:
        super().__init__("bad transaction signature")


class WrongChainError(_Coded):
    """The transaction names another chain id: a replay from another chain."""

    code = 3


class NonceError(_Coded):
    """The transaction's nonce is not the sender's next one.

    Attributes:
        expected: The sender's next nonce in the state that was checked.
    """

    def __init__(self, message: str, expected: int) -> None:
        super().__init__(message)
        self.expected = expected


class ReplayedNonceError(NonceError):
    """The nonce was already used: a replayed or superseded transaction."""

    code = 4


class FutureNonceError(NonceError):
    """The nonce is ahead of the sender's next one; earlier nonces are missing."""

    code = 5


class InsufficientFundsError(_Coded):
    """The sender's balance cannot cover the fee (and amount)."""

    code = 6


class FeeTooLowError(_Coded):
    """The fee is below the chain's minimum fee."""

    code = 7


class UnauthorizedError(_Coded):
    """The sender lacks the right to do what the transaction asks."""

    code = 8


class RejectedTransactionError(_Coded):
    """The transaction is well-formed but the current state does not allow it."""

    code = 9


def result_code(error: InvalidTransactionError) -> int:
    """The block result code for ``error`` (9 for an untyped rejection)."""
    return error.code if isinstance(error, _Coded) else RejectedTransactionError.code
