"""Errors of the RSA blind signatures and blind tokens (:mod:`dchat_privacy`).

They derive from the package root :class:`~dchat_privacy.DchatPrivacyError`::

    DchatPrivacyError
    ├── BlindSignatureError(PeerError)            an RFC 9474 signature did not verify (opaque)
    ├── BlindInputError(CallerError, ValueError)  unusable key, message or length
    ├── BlindSigningFaultError                    blind_sign's result failed its own check
    └── TokenError                                blind tokens; ``code`` is the wire answer
        ├── BadTokenError(PeerError, ValueError)      "bad_token": malformed or forged (opaque)
        ├── SpentTokenError(PeerError)                "spent": already redeemed here
        ├── UnknownKeyError(PeerError)                "unknown_key": no key with this id
        ├── ExpiredTokenError(PeerError)              "expired": key epoch outside the window
        ├── SpentSetFullError(TransportError)         "full": the epoch's spent set is full
        └── TokenMessageError(PeerError, ValueError)  "malformed": bad request or answer

A forged token, a token for another redeemer and a malformed one all raise the
same :class:`BadTokenError` with the same message: the redeemer never says which
check failed.
"""

from __future__ import annotations

from typing import ClassVar

from dchat_core import CallerError, PeerError, TransportError

from ._padding import DchatPrivacyError

__all__ = (
    "BadTokenError",
    "BlindInputError",
    "BlindSignatureError",
    "BlindSigningFaultError",
    "ExpiredTokenError",
    "SpentSetFullError",
    "SpentTokenError",
    "TokenError",
    "TokenMessageError",
    "UnknownKeyError",
)


class BlindSignatureError(DchatPrivacyError, PeerError):
    """An RFC 9474 signature did not verify; deliberately says nothing more."""

    def __init__(self) -> None:
        super().__init__("invalid blind signature")


class BlindInputError(DchatPrivacyError, CallerError, ValueError):
    """RFC 9474 input that cannot be used (key size, message not invertible, length)."""


class BlindSigningFaultError(DchatPrivacyError):
    """The signer's result did not verify: a computation fault; nothing was returned."""

    def __init__(self) -> None:
        super().__init__("blind signing failed")


class TokenError(DchatPrivacyError):
    """Root of the blind-token errors; :attr:`code` is the short answer put on the wire."""

    code: ClassVar[str] = "token_error"


class BadTokenError(TokenError, PeerError, ValueError):
    """A token is malformed, forged or bound to another redeemer (opaque)."""

    code = "bad_token"

    def __init__(self) -> None:
        super().__init__("bad token")


class SpentTokenError(TokenError, PeerError):
    """The token was already redeemed at this redeemer (double spending)."""

    code = "spent"

    def __init__(self) -> None:
        super().__init__("token already spent")


class UnknownKeyError(TokenError, PeerError):
    """No issuer key with the token's or request's key id is known."""

    code = "unknown_key"

    def __init__(self) -> None:
        super().__init__("unknown token key")


class ExpiredTokenError(TokenError, PeerError):
    """The key's epoch is outside the accepted window (too old or not yet valid)."""

    code = "expired"

    def __init__(self) -> None:
        super().__init__("token key epoch not accepted")


class SpentSetFullError(TokenError, TransportError):
    """The spent set of the token's epoch holds its maximum; refused, not forgotten."""

    code = "full"

    def __init__(self) -> None:
        super().__init__("spent set full for this epoch")


class TokenMessageError(TokenError, PeerError, ValueError):
    """A token request, issuance answer or stored token blob is malformed or inconsistent."""

    code = "malformed"
