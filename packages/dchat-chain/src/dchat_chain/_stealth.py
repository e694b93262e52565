"""Stealth payments: one-time accounts on the currency chain (dual-key stealth addresses).

Theory of operation. A recipient publishes a *meta-address*: a scan public key
``S = s·B`` and a spend public key ``P = p·B`` (Ed25519 points, prime-order
subgroup). To pay it, a sender draws an ephemeral scalar ``r``, computes
``R = r·B`` and the shared point ``Z = r·S`` and derives::

    tweak    = SHA-512("dchat-stealth-tweak-v1" 0 || Z || R || P) mod L
    view tag = SHA-256("dchat-stealth-tag-v1" 0 || Z || R)[0]
    account  = P + tweak·B

then sends an ordinary ``transfer`` to ``account`` carrying ``stealth =
R || view tag`` (33 bytes). The recipient, for each such transfer, computes
``Z = s·R`` (the same point), compares the view tag (one in 256 other
transfers gets past it) and then the account; if it matches, the account's
secret scalar is ``p + tweak`` and :class:`~dchat_crypto.hazmat.ScalarSigningKey`
signs for it. The scan key alone finds payments (a watch-only wallet); only the
spend key spends them.

A memo's ``R`` is checked where it is used: libsodium's scalar multiplication
refuses any point that is not canonical, on the curve and in the prime-order
subgroup (so no small-order component can make ``Z`` reveal anything about
``s``), and such a memo matches nothing. The meta-address is checked when
decoded, so a sender never multiplies a bad point either.

Every payment has a fresh ``r``, so two payments to one meta-address share no
field on chain: different accounts, different ``R``, independent tags. What the
chain still shows is in ``docs/rationale.md`` (the payer, amounts, times, and
the later spend from the one-time account).

Group and scalar steps are libsodium's, through :mod:`dchat_crypto.hazmat`.
Hostile input (a meta-address or memo that is no valid point) is a
:class:`StealthFormatError`; a memo that is not for us is simply not matched.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_crypto import InvalidKeyError
from dchat_crypto.hazmat import (
    ScalarSigningKey,
    ed25519_add,
    ed25519_base_mul,
    ed25519_mul,
    ed25519_point_ok,
    ed25519_scalar_from_hash,
)

from ._errors import ChainArgumentError

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_identity import Identity

__all__ = (
    "META_ADDRESS_PREFIX",
    "STEALTH_MEMO_SIZE",
    "StealthFormatError",
    "StealthKeys",
    "StealthMemo",
    "StealthMetaAddress",
    "stealth_payment",
)

STEALTH_MEMO_SIZE: Final = 33
META_ADDRESS_PREFIX: Final = "dchat-stealth:"
_POINT: Final = 32
_TWEAK: Final = b"dchat-stealth-tweak-v1\x00"
_TAG: Final = b"dchat-stealth-tag-v1\x00"
_SCAN: Final = b"dchat-stealth-scan-v1"
_SPEND: Final = b"dchat-stealth-spend-v1"


class StealthFormatError(ChainArgumentError):
    """A meta-address or stealth memo is malformed or holds no valid point."""


def _checked_point(data: bytes, what: str) -> bytes:
    if not ed25519_point_ok(data):
        raise StealthFormatError(f"{what} is not a valid Ed25519 point")
    return data


@dataclass(frozen=True, slots=True)
class StealthMetaAddress:
    """What a recipient publishes: scan and spend public keys (32 bytes each)."""

    scan_key: bytes
    spend_key: bytes

    SIZE = 2 * _POINT

    def __post_init__(self) -> None:
        _checked_point(self.scan_key, "the scan key")
        _checked_point(self.spend_key, "the spend key")

    def to_bytes(self) -> bytes:
        """``scan_key || spend_key``."""
        return self.scan_key + self.spend_key

    @classmethod
    def from_bytes(cls, data: bytes) -> StealthMetaAddress:
        """Decode :meth:`to_bytes`.

        Raises:
            StealthFormatError: Not 64 bytes, or a key is no valid point.
        """
        if not isinstance(data, bytes) or len(data) != cls.SIZE:
            raise StealthFormatError("a stealth meta-address is 64 bytes")
        return cls(data[:_POINT], data[_POINT:])

    def to_text(self) -> str:
        """``dchat-stealth:`` and the 128 hex digits of :meth:`to_bytes`."""
        return META_ADDRESS_PREFIX + self.to_bytes().hex()

    @classmethod
    def from_text(cls, text: str) -> StealthMetaAddress:
        """Decode :meth:`to_text`.

        Raises:
            StealthFormatError: Wrong prefix, not hex, or not a meta-address.
        """
        if not isinstance(text, str) or not text.startswith(META_ADDRESS_PREFIX):
            raise StealthFormatError(f"a stealth meta-address starts with {META_ADDRESS_PREFIX}")
        digits = text[len(META_ADDRESS_PREFIX) :]
        if len(digits) != 2 * cls.SIZE or not all(c in "0123456789abcdef" for c in digits):
            raise StealthFormatError("a stealth meta-address has 128 lowercase hex digits")
        return cls.from_bytes(bytes.fromhex(digits))


@dataclass(frozen=True, slots=True)
class StealthMemo:
    """What a stealth transfer carries: the ephemeral key ``R`` and a one-byte view tag."""

    ephemeral: bytes
    view_tag: int

    def to_bytes(self) -> bytes:
        """``ephemeral || view_tag`` (33 bytes)."""
        return self.ephemeral + bytes([self.view_tag])

    @classmethod
    def from_bytes(cls, data: bytes) -> StealthMemo:
        """Decode a memo from a transfer (untrusted; the key is checked when used).

        Raises:
            StealthFormatError: Not 33 bytes.
        """
        if not isinstance(data, bytes) or len(data) != STEALTH_MEMO_SIZE:
            raise StealthFormatError(f"a stealth memo is {STEALTH_MEMO_SIZE} bytes")
        return cls(data[:_POINT], data[_POINT])


def _derive(shared: bytes, ephemeral: bytes, spend_key: bytes) -> tuple[bytes, int]:
    tweak = ed25519_scalar_from_hash(_TWEAK + shared + ephemeral + spend_key)
    tag = hashlib.sha256(_TAG + shared + ephemeral).digest()[0]
    return tweak, tag


def stealth_payment(
    to: StealthMetaAddress, rng: Callable[[int], bytes] = os.urandom
) -> tuple[bytes, StealthMemo]:
    """A fresh one-time account of ``to`` and the memo its owner finds it by.

    Returns:
        The 32-byte account (an Ed25519 public key) and the transfer's memo.
    """
    r = ed25519_scalar_from_hash(rng(64))
    ephemeral = ed25519_base_mul(r)
    tweak, tag = _derive(ed25519_mul(r, to.scan_key), ephemeral, to.spend_key)
    return ed25519_add(to.spend_key, ed25519_base_mul(tweak)), StealthMemo(ephemeral, tag)


class StealthKeys:
    """A recipient's scan secret and spend key; finds and spends its one-time accounts.

    Args:
        scan_secret: The scan scalar ``s`` (32 bytes, reduced, not zero).
        spend: The spend key ``p``.
    """

    __slots__ = ("_meta", "_scan", "_spend")

    def __init__(self, scan_secret: bytes, spend: ScalarSigningKey) -> None:
        scan_key = ed25519_base_mul(scan_secret)
        self._scan, self._spend = scan_secret, spend
        self._meta = StealthMetaAddress(scan_key, spend.public_key.to_bytes())

    @classmethod
    def from_seed(cls, seed: bytes) -> StealthKeys:
        """The stealth keys derived from a secret seed (a wallet key's 32 bytes)."""
        scan = ed25519_scalar_from_hash(_SCAN + b"\x00" + seed)
        return cls(scan, ScalarSigningKey.from_seed(seed, _SPEND))

    @classmethod
    def of_identity(cls, identity: Identity) -> StealthKeys:
        """The stealth keys of an identity (a node's own, or a burner): from its key's seed.

        A burner's derive from the burner's own random seed, never the owner's,
        so its meta-address shares nothing with the owner's or another burner's.
        """
        return cls.from_seed(identity.signing_key.to_bytes())

    @property
    def meta_address(self) -> StealthMetaAddress:
        """The meta-address to publish."""
        return self._meta

    def tweak_for(self, account: bytes, memo: StealthMemo) -> bytes | None:
        """The tweak if ``account`` with ``memo`` is one of ours, else None."""
        try:
            shared = ed25519_mul(self._scan, memo.ephemeral)
        except InvalidKeyError:  # not a usable point: no payment of ours
            return None
        tweak, tag = _derive(shared, memo.ephemeral, self._meta.spend_key)
        if tag != memo.view_tag:
            return None
        mine = ed25519_add(self._meta.spend_key, ed25519_base_mul(tweak))
        return tweak if hmac.compare_digest(mine, account) else None

    def owns(self, account: bytes, memo: StealthMemo) -> bool:
        """Whether ``account`` with ``memo`` is one of our one-time accounts."""
        return self.tweak_for(account, memo) is not None

    def spending_key(self, account: bytes, memo: StealthMemo) -> ScalarSigningKey:
        """The key that signs for one of our one-time accounts.

        Raises:
            StealthFormatError: ``account`` with ``memo`` is not ours.
        """
        tweak = self.tweak_for(account, memo)
        if tweak is None:
            raise StealthFormatError("not one of this wallet's stealth accounts")
        return self._spend.tweaked(tweak)
