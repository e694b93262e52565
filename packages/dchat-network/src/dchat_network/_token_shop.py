"""Paid blind tokens at a relay (sans-IO): the signed offer, sales against payments, redemption.

Theory of operation
-------------------
A relay that sells tokens (``[node.relay_tokens]``) is a blind-token issuer
and redeemer of :mod:`dchat_privacy` at once. Time is cut into epochs of
``epoch_seconds``; each epoch has its own RSA issuer key, made on first use
and kept in the relay's :class:`TokenStore` (so a restart signs and accepts
with the same keys). A key's tokens are redeemable from its epoch through
``window`` epochs after it. Stored issuer keys are sealed
(ChaCha20-Poly1305) under a key derived from the relay's node key, which is
itself kept encrypted under the node passphrase.

* **Offer** (:class:`TokenOffer`): the current epoch's public key, the account
  to pay (``payee``, by default the relay's node key's account), the ``price``
  of one token and the most tokens one payment buys, signed with the relay's
  node key (the key users pin and the directory lists), so a client checks it
  against the relay it dialled and can show it to others.
* **Sale** (:meth:`TokenShop.sell`): the client pays ``price * count`` to the
  payee on the currency chain with a transfer whose ``ref`` is
  :func:`purchase_ref` of its blinded request, then sends the request. The
  relay's caller reads the chain's ``payref/<ref>`` record through its light
  client (a commit certificate proves it) and hands it here; the shop checks
  payee and amount, records the reference as used in the same store
  transaction, and blind-signs. A payment buys once, also after a restart:
  the reference binds the exact blinded messages, and RSA blind signing is
  deterministic, so the same request sent again (its answer was lost) gets
  the same signatures, which unblind to the same tokens (spent once each);
  any other request has another reference, which no payment pays.
* **Redemption** (:meth:`TokenShop.redeem`): a deposit's authorization
  ``0x03 || redemption`` (see :mod:`._put_auth`) is verified by the
  :class:`~dchat_privacy.TokenRedeemer` and its spent-set hash stored in the
  deposit's transaction; the spent sets are reloaded at start-up.

Refusals are typed: :class:`TokenSaleError` (``code``: ``unpaid``,
``underpaid``, ``wrong_payee``, ``bad_request``,
``too_many``) for sales, the :class:`~dchat_privacy.TokenError` codes
(``bad_token``, ``spent``, ``unknown_key``, ``expired``, ``full``) for keys and
redemptions. Nothing here reads a clock or does I/O: every call takes ``now``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar, Final, Protocol

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    PeerError,
    canonical_decode,
    canonical_encode,
)
from dchat_crypto import BadSignatureError, VerifyKey
from dchat_crypto.hazmat import chacha20poly1305_decrypt, chacha20poly1305_encrypt, hkdf_sha256
from dchat_privacy import (
    ExpiredTokenError,
    TokenError,
    TokenIssuer,
    TokenIssuerKey,
    TokenRedeemer,
    UnknownKeyError,
    request_tokens,
)
from dchat_privacy.lowlevel import TokenKey, TokenMessageError, decode_token_request

from ._errors import DchatNetworkError

if TYPE_CHECKING:
    from dchat_crypto import SigningKey
    from dchat_privacy import PendingTokens
    from dchat_privacy.lowlevel import TokenRequest

__all__ = (
    "PAID_AUTH_CODES",
    "TokenOffer",
    "TokenSaleError",
    "TokenSettings",
    "TokenShop",
    "TokenStore",
    "buy_request",
    "decode_purchase",
    "purchase_ref",
)

OFFER_DOMAIN: Final = b"dchat-token-offer-v1"
PURCHASE_DOMAIN: Final = b"dchat-token-buy-v1"
MAX_OFFER: Final = 2048
_SEAL_INFO: Final = b"dchat-token-issuer-seal-v1"
PAID_AUTH_CODES: Final = frozenset({"bad_token", "spent", "unknown_key", "expired", "full"})
"""Item codes a relay answers a deposit's paid token with (besides storing it)."""
_OFFER_FIELDS: Final = frozenset({"v", "r", "k", "pay", "price", "max", "sig"})
_OFFER_LIMITS: Final = DecodeLimits(max_size=MAX_OFFER, max_depth=1, max_items=16)


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """A relay's token sales (``[node.relay_tokens]``).

    Attributes:
        enabled: Sell tokens and accept them for deposits (needs ``currency_node``).
        price: Currency units one token costs.
        max_per_payment: The most tokens one payment buys (at most 64).
        epoch_seconds: The length of a key epoch.
        window: Epochs after its own that a key's tokens are still accepted.
        payee: The account paid (64 hex digits); None: the relay's node key's account.
        key_bits: The issuer keys' RSA size.
    """

    enabled: bool = False
    price: int = 1
    max_per_payment: int = 64
    epoch_seconds: float = 86400.0
    window: int = 1
    payee: str | None = None
    key_bits: int = 2048

    def __post_init__(self) -> None:
        if self.price < 1 or not 1 <= self.max_per_payment <= 64 or self.epoch_seconds <= 0:
            raise ValueError("relay_tokens: price >= 1, max_per_payment 1..64, epoch_seconds > 0")
        if self.window < 0 or self.key_bits not in (2048, 3072, 4096):
            raise ValueError("relay_tokens: window >= 0, key_bits 2048, 3072 or 4096")
        if self.payee is not None and len(bytes.fromhex(self.payee)) != 32:
            raise ValueError("relay_tokens: payee is an account, 64 hex digits")


class TokenSaleError(DchatNetworkError, PeerError, ValueError):
    """A token purchase the relay refuses; :attr:`code` is the wire answer."""

    code: str
    codes: ClassVar[frozenset[str]] = frozenset(
        {"unpaid", "underpaid", "wrong_payee", "bad_request", "too_many"}
    )

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class TokenStore(Protocol):
    """Where a relay keeps its token state (the node's database; each call in its transaction)."""

    def token_keys(self) -> list[tuple[int, bytes]]:
        """Every stored issuer key as ``(epoch, TokenIssuerKey bytes)``."""
        ...

    def keep_token_key(self, epoch: int, key: bytes) -> None:
        """Store the issuer key of ``epoch``."""
        ...

    def use_payment(self, ref: bytes, now: float) -> bool:
        """Record payment reference ``ref`` as used; False if it already was."""
        ...

    def spend_token(self, epoch: int, digest: bytes) -> bool:
        """Record a redeemed token's spent hash; False if it already was."""
        ...

    def spent_tokens(self, since_epoch: int) -> list[tuple[int, bytes]]:
        """The spent hashes of epochs ``>= since_epoch``, as ``(epoch, hash)``."""
        ...

    def forget_tokens(self, before_epoch: int) -> None:
        """Drop keys and spent hashes of epochs before ``before_epoch``."""
        ...


def buy_request(key: TokenKey, redeemer: bytes, count: int) -> tuple[TokenRequest, PendingTokens]:
    """A client's request for ``count`` tokens redeemable at ``redeemer``, with its reference set.

    Pay :func:`purchase_ref` of the request, then send ``request.to_bytes()``.
    """
    request, pending = request_tokens(key, redeemer, count, b"")
    return replace(request, payment_ref=purchase_ref(request)), pending


def purchase_ref(request: TokenRequest) -> bytes:
    """The transfer ``ref`` that pays for ``request``: SHA-256 binding its key and messages."""
    digest = hashlib.sha256(PURCHASE_DOMAIN + request.key_id)
    digest.update(len(request.blinded).to_bytes(2, "big"))
    for item in request.blinded:
        digest.update(len(item).to_bytes(2, "big") + item)
    return digest.digest()


@dataclass(frozen=True, slots=True)
class TokenOffer:
    """A relay's signed offer: this epoch's key, whom to pay, the price, the most per payment."""

    relay: bytes
    key: TokenKey
    payee: bytes
    price: int
    max_count: int
    signature: bytes = b""

    def _signed(self) -> bytes:
        body = {"d": OFFER_DOMAIN, "r": self.relay, "k": self.key.to_bytes(), "pay": self.payee}
        return canonical_encode({**body, "price": self.price, "max": self.max_count})

    def signed_by(self, node_key: SigningKey) -> TokenOffer:
        """This offer signed with the relay's node key (``relay`` must be its public key)."""
        sig = node_key.sign(self._signed())
        return TokenOffer(self.relay, self.key, self.payee, self.price, self.max_count, sig)

    def to_bytes(self) -> bytes:
        """Canonical CBOR ``{"v": 1, "r", "k", "pay", "price", "max", "sig"}``."""
        return canonical_encode(
            {"v": 1, "r": self.relay, "k": self.key.to_bytes(), "pay": self.payee}
            | {"price": self.price, "max": self.max_count, "sig": self.signature}
        )

    @classmethod
    def from_bytes(cls, data: bytes, relay: bytes) -> TokenOffer:
        """Decode and verify an offer of the relay whose node public key is ``relay``.

        Raises:
            TokenSaleError: ``bad_offer``: malformed, another relay's, or a bad signature.
        """
        try:
            f = Fields(canonical_decode(data, _OFFER_LIMITS), "token offer", _OFFER_FIELDS)
            f.get_int("v", lo=1, hi=1)
            offer = cls(
                f.get_bytes("r", size=32),
                TokenKey.from_bytes(f.get_bytes("k", max_size=MAX_OFFER)),
                f.get_bytes("pay", size=32),
                f.get_int("price", lo=1, hi=2**63 - 1),
                f.get_int("max", lo=1, hi=64),
                f.get_bytes("sig", size=64),
            )
            if offer.relay != relay:
                raise TokenSaleError("bad_offer", "the offer names another relay")
            VerifyKey.from_bytes(relay).verify(offer.signature, offer._signed())
        except (DecodeError, TokenMessageError, BadSignatureError):
            raise TokenSaleError("bad_offer", "the token offer does not hold") from None
        return offer


class TokenShop:
    """A relay's token sales and redemptions (see the module docstring).

    Args:
        settings: Price, epochs and limits.
        node_key: The relay's node key (signs offers; its node id is the redeemer id).
        redeemer: The relay's 32-byte id that tokens are bound to (its node id).
        store: The persistent state; :meth:`load` reads it.
        now: The current time (the first epoch).
    """

    def __init__(
        self,
        settings: TokenSettings,
        node_key: SigningKey,
        redeemer: bytes,
        store: TokenStore,
        now: float,
    ) -> None:
        self.settings = settings
        self._node_key = node_key
        public = node_key.public_key.to_bytes()
        self.payee = bytes.fromhex(settings.payee) if settings.payee else public
        self._store = store
        self._keys: dict[int, TokenIssuerKey] = {}
        self._retired: set[bytes] = set()  # ids of keys dropped (one a day: stays small)
        self._issuer = TokenIssuer(())
        self._redeemer = TokenRedeemer(redeemer, epoch=self.epoch(now), window=settings.window)
        self.counts = {"sold": 0, "resent": 0, "redeemed": 0, "refused": 0}
        """Tokens sold and redeemed, redemptions refused."""

    def epoch(self, now: float) -> int:
        """The key epoch at ``now``."""
        return int(now // self.settings.epoch_seconds)

    def load(self, now: float) -> None:
        """Read the stored keys and spent sets (in the store's worker, at start-up)."""
        oldest = self.epoch(now) - self.settings.window
        self._store.forget_tokens(oldest)
        for epoch, blob in self._store.token_keys():
            self._add(TokenIssuerKey.from_bytes(self._unseal(epoch, blob)))
        spent: dict[int, list[bytes]] = {}
        for epoch, digest in self._store.spent_tokens(oldest):
            spent.setdefault(epoch, []).append(digest)
        for epoch, digests in spent.items():
            self._redeemer.load_spent(epoch, digests)

    def _seal_key(self) -> bytes:
        secret = self._node_key.to_bytes()
        return hkdf_sha256(secret, salt=b"", info=_SEAL_INFO, length=32)

    def _seal(self, epoch: int, blob: bytes) -> bytes:
        """An issuer key as stored: sealed under a key derived from the node key."""
        nonce = os.urandom(12)
        ad = epoch.to_bytes(8, "big", signed=True)
        return nonce + chacha20poly1305_encrypt(self._seal_key(), nonce, blob, ad)

    def _unseal(self, epoch: int, stored: bytes) -> bytes:
        ad = epoch.to_bytes(8, "big", signed=True)
        return chacha20poly1305_decrypt(self._seal_key(), stored[:12], stored[12:], ad)

    def _add(self, key: TokenIssuerKey) -> None:
        self._keys[key.epoch] = key
        self._issuer.add_key(key)
        self._redeemer.add_key(key.public)

    def _current(self, now: float) -> TokenIssuerKey:
        """The issuer key of this epoch, made and stored on first use."""
        epoch = self.epoch(now)
        self._redeemer.advance(epoch)
        key = self._keys.get(epoch)
        if key is None:
            key = TokenIssuerKey.generate(epoch, self.settings.key_bits)
            self._store.keep_token_key(epoch, self._seal(epoch, key.to_bytes()))
            self._add(key)
            for old in [e for e in self._keys if e < epoch - self.settings.window]:
                self._retired.add(self._keys.pop(old).public.key_id)
        return key

    def offer(self, now: float) -> TokenOffer:
        """The signed offer for this epoch (in the store's worker: it may store a new key)."""
        s = self.settings
        relay = self._node_key.public_key.to_bytes()
        offer = TokenOffer(relay, self._current(now).public, self.payee, s.price, s.max_per_payment)
        return offer.signed_by(self._node_key)

    def sell(self, request_bytes: bytes, paid: tuple[bytes, int] | None, now: float) -> bytes:
        """Blind-sign a paid request; the :class:`~dchat_privacy.lowlevel.TokenIssuance` bytes.

        ``paid``: the proven payment record of :func:`purchase_ref` of the
        request, as ``(recipient, amount)``, or None if the chain has none.

        Raises:
            TokenSaleError: malformed, unpaid, underpaid, paid to another account,
                or more tokens than allowed.
            TokenError: the request names an unknown key or one of another epoch.
        """
        request = decode_purchase(request_bytes)
        if len(request.blinded) > self.settings.max_per_payment:
            raise TokenSaleError("too_many", "more tokens than one payment buys")
        if paid is None:
            raise TokenSaleError("unpaid", "no payment with this request's reference")
        recipient, amount = paid
        if recipient != self.payee:
            raise TokenSaleError("wrong_payee", "the payment went to another account")
        if amount < self.settings.price * len(request.blinded):
            raise TokenSaleError("underpaid", "the payment does not cover these tokens")
        key = self._sale_key(request.key_id, now)
        first = self._store.use_payment(purchase_ref(request), now)
        # Sent again (the buyer lost our answer): the same signatures, so no new token.
        issuance = self._issuer.issue(request, epoch=key.epoch)
        self.counts["sold" if first else "resent"] += len(request.blinded)
        return issuance.to_bytes()

    def _sale_key(self, key_id: bytes, now: float) -> TokenIssuerKey:
        """The key a purchase names: this epoch's, or the last one's (a sale across the change).

        Raises:
            UnknownKeyError: no key of this shop has that id.
            ExpiredTokenError: the key is older, or its tokens would not be accepted.
        """
        current = self._current(now)
        key = next((k for k in self._keys.values() if k.public.key_id == key_id), None)
        if key is None:
            raise ExpiredTokenError if key_id in self._retired else UnknownKeyError
        if key.epoch < current.epoch - min(1, self.settings.window):
            raise ExpiredTokenError
        return key

    def redeem(self, redemption: bytes, now: float) -> str | None:
        """Accept a deposit's paid token once: None, or the refusal code.

        The spent hash is stored in the caller's transaction (the deposit's).
        """
        self._redeemer.advance(self.epoch(now))
        try:
            redeemed = self._redeemer.redeem(redemption)
        except TokenError as exc:
            self.counts["refused"] += 1
            return exc.code if exc.code in PAID_AUTH_CODES else "bad_token"
        if not self._store.spend_token(redeemed.epoch, redeemed.token_hash):
            self.counts["refused"] += 1
            return "spent"
        self.counts["redeemed"] += 1
        return None

    def spent_count(self, now: float) -> int:
        """Tokens redeemed in this epoch (as far as memory goes)."""
        return self._redeemer.spent_count(self.epoch(now))


def decode_purchase(data: bytes) -> TokenRequest:
    """A token request whose ``payment_ref`` is its :func:`purchase_ref`.

    Raises:
        TokenSaleError: ``bad_request``.
    """
    try:
        request = decode_token_request(data)
    except TokenMessageError:
        raise TokenSaleError("bad_request", "malformed token request") from None
    if request.payment_ref != purchase_ref(request):
        raise TokenSaleError("bad_request", "the request's reference does not bind it")
    return request
