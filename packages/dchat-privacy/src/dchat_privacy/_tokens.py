"""Blind tokens on RFC 9474: issuer keys, token requests, issuance and the client's tokens.

Theory of operation
-------------------
An issuer holds one RSA key per epoch and publishes its :class:`TokenKey`
(epoch and public key; the *key id* is SHA-256 of the public key's DER
SubjectPublicKeyInfo). A client who paid asks for ``count`` tokens with a
:class:`TokenRequest`: the key id, the payment reference (opaque bytes that
the issuer's caller checks, for instance a currency-chain transfer) and
``count`` blinded messages. Each token message is::

    prefix(32) || "dchat-token-v1" || key_id(32) || redeemer(32) || nonce(32)

signed with RSABSSA-SHA384-PSS-Randomized (the 32-byte random ``prefix`` is
RFC 9474's Prepare). ``redeemer`` names the relay that will accept it, so a
token cannot be spent once at each relay; the issuer never sees it, nor the
nonce. :meth:`TokenIssuer.issue` answers with one blind signature per blinded
message (:class:`TokenIssuance`), and :meth:`PendingTokens.finalize` unblinds
and verifies them into :class:`Token` objects, redeemable with
:meth:`Token.redemption` (see :mod:`dchat_privacy._token_redeem`).

The issuer learns who paid and how many tokens they got; the redeemer learns
that a holder of a valid token of that epoch's key came; neither signature
nor message links the two. All blobs are canonical CBOR maps with bounded,
exactly sized fields (docs/protocol.md, "Blind tokens").
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._blind_errors import (
    BadTokenError,
    BlindInputError,
    BlindSignatureError,
    ExpiredTokenError,
    TokenMessageError,
    UnknownKeyError,
)
from ._rsabssa import Blinded, BlindVariant, blind, blind_sign, finalize, prepare

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = (
    "MAX_TOKENS_PER_REQUEST",
    "PendingTokens",
    "Token",
    "TokenIssuance",
    "TokenIssuer",
    "TokenIssuerKey",
    "TokenKey",
    "TokenRequest",
    "decode_token_issuance",
    "decode_token_request",
    "request_tokens",
    "token_message",
)

VARIANT: Final = BlindVariant.PSS_RANDOMIZED
DOMAIN: Final = b"dchat-token-v1"
ID_SIZE: Final = 32
NONCE_SIZE: Final = 32
PREFIX_SIZE: Final = 32  # RFC 9474 Prepare's random prefix
MAX_TOKENS_PER_REQUEST: Final = 64
MAX_PAYMENT_REF: Final = 256
MAX_MODULUS_BYTES: Final = 512  # 4096-bit keys at most
MAX_SPKI: Final = 1024
DEFAULT_KEY_BITS: Final = 2048
_MESSAGE_LIMITS: Final = DecodeLimits(max_size=40_000, max_depth=2, max_items=80)
_KEY_LIMITS: Final = DecodeLimits(max_size=4096, max_depth=1, max_items=8)


def _field_error(exc: DecodeError) -> TokenMessageError:
    return TokenMessageError(str(exc))


def token_message(key_id: bytes, redeemer: bytes, nonce: bytes) -> bytes:
    """The token message before Prepare's prefix: domain, key id, redeemer, nonce."""
    return DOMAIN + key_id + redeemer + nonce


def _check_public(key: rsa.RSAPublicKey) -> None:
    bits = key.key_size
    if not 2048 <= bits <= 8 * MAX_MODULUS_BYTES or bits % 8:
        raise BlindInputError("token keys are RSA keys of 2048 to 4096 bits, whole bytes")
    if not 3 <= key.public_numbers().e < 1 << 32:
        raise BlindInputError("token keys have a public exponent below 2**32")


@dataclass(frozen=True, slots=True)
class TokenKey:
    """An issuer's public key for one epoch, as published."""

    epoch: int
    public_key: rsa.RSAPublicKey

    @property
    def spki(self) -> bytes:
        """The public key as DER SubjectPublicKeyInfo."""
        return self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def key_id(self) -> bytes:
        """SHA-256 of :attr:`spki`."""
        return hashlib.sha256(self.spki).digest()

    @property
    def modulus_bytes(self) -> int:
        """Size of signatures and blinded messages under this key."""
        return self.public_key.key_size // 8

    def to_bytes(self) -> bytes:
        """Canonical CBOR ``{"v": 1, "e": epoch, "k": spki}``."""
        return canonical_encode({"v": 1, "e": self.epoch, "k": self.spki})

    @classmethod
    def from_bytes(cls, data: bytes) -> TokenKey:
        """Decode a published key.

        Raises:
            TokenMessageError: malformed, not an RSA key, or an unsupported size.
        """
        try:
            fields = Fields(canonical_decode(data, _KEY_LIMITS), "token key", _KEY_FIELDS)
            fields.get_int("v", lo=1, hi=1)
            epoch = fields.get_int("e")
            spki = fields.get_bytes("k", max_size=MAX_SPKI)
        except DecodeError as exc:
            raise _field_error(exc) from None
        try:
            key = serialization.load_der_public_key(spki)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise TokenMessageError("token key is not a valid public key") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise TokenMessageError("token key is not an RSA key")
        try:
            _check_public(key)
        except BlindInputError:
            raise TokenMessageError("token key size not supported") from None
        return cls(epoch, key)


_KEY_FIELDS: Final = frozenset({"v", "e", "k"})


@dataclass(frozen=True, slots=True)
class TokenIssuerKey:
    """An issuer's private key for one epoch."""

    epoch: int
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(cls, epoch: int, bits: int = DEFAULT_KEY_BITS) -> TokenIssuerKey:
        """A fresh key for ``epoch`` (``e = 65537``)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        _check_public(key.public_key())
        return cls(epoch, key)

    @property
    def public(self) -> TokenKey:
        """The key to publish."""
        return TokenKey(self.epoch, self.private_key.public_key())

    def to_bytes(self) -> bytes:
        """Canonical CBOR ``{"v": 1, "e": epoch, "sk": PKCS#8 DER}`` (unencrypted: seal it)."""
        der = self.private_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return canonical_encode({"v": 1, "e": self.epoch, "sk": der})

    @classmethod
    def from_bytes(cls, data: bytes) -> TokenIssuerKey:
        """Load a key written by :meth:`to_bytes`.

        Raises:
            TokenMessageError: the blob is malformed or holds no usable RSA key.
        """
        try:
            fields = Fields(canonical_decode(data, _KEY_LIMITS), "issuer key", _ISSUER_FIELDS)
            fields.get_int("v", lo=1, hi=1)
            epoch = fields.get_int("e")
            der = fields.get_bytes("sk", max_size=4096)
            key = serialization.load_der_private_key(der, password=None)
        except DecodeError as exc:
            raise _field_error(exc) from None
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise TokenMessageError("issuer key is not a valid private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TokenMessageError("issuer key is not an RSA key")
        try:
            _check_public(key.public_key())
        except BlindInputError:
            raise TokenMessageError("issuer key size not supported") from None
        return cls(epoch, key)


_ISSUER_FIELDS: Final = frozenset({"v", "e", "sk"})


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A client's request: ``len(blinded)`` tokens under ``key_id``, paid by ``payment_ref``."""

    key_id: bytes
    payment_ref: bytes
    blinded: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        """Canonical CBOR ``{"v": 1, "k": key_id, "p": payment_ref, "b": [blinded, ...]}``."""
        return canonical_encode(
            {"v": 1, "k": self.key_id, "p": self.payment_ref, "b": list(self.blinded)}
        )


@dataclass(frozen=True, slots=True)
class TokenIssuance:
    """The issuer's answer: one blind signature per blinded message, in order."""

    key_id: bytes
    blind_signatures: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        """Canonical CBOR ``{"v": 1, "k": key_id, "s": [blind signature, ...]}``."""
        return canonical_encode({"v": 1, "k": self.key_id, "s": list(self.blind_signatures)})


def _decode_batch(
    data: bytes, what: str, list_key: str, allowed: frozenset[str | int]
) -> tuple[Fields, bytes, tuple[bytes, ...]]:
    try:
        fields = Fields(canonical_decode(data, _MESSAGE_LIMITS), what, allowed)
        fields.get_int("v", lo=1, hi=1)
        key_id = fields.get_bytes("k", size=ID_SIZE)
        items = fields.get_list(list_key, max_len=MAX_TOKENS_PER_REQUEST)
    except DecodeError as exc:
        raise _field_error(exc) from None
    if not items or not all(
        isinstance(item, bytes) and 256 <= len(item) <= MAX_MODULUS_BYTES for item in items
    ):
        raise TokenMessageError(f"{what}: bad item count or item")
    if len({len(item) for item in items}) != 1:
        raise TokenMessageError(f"{what}: items of different sizes")
    return fields, key_id, tuple(items)


def decode_token_request(data: bytes) -> TokenRequest:
    """Decode a :class:`TokenRequest` from untrusted bytes.

    Raises:
        TokenMessageError: malformed, empty, over :data:`MAX_TOKENS_PER_REQUEST`, bad sizes.
    """
    fields, key_id, items = _decode_batch(
        data, "token request", "b", frozenset({"v", "k", "p", "b"})
    )
    try:
        payment_ref = fields.get_bytes("p", max_size=MAX_PAYMENT_REF)
    except DecodeError as exc:
        raise _field_error(exc) from None
    return TokenRequest(key_id, payment_ref, items)


def decode_token_issuance(data: bytes) -> TokenIssuance:
    """Decode a :class:`TokenIssuance` from untrusted bytes.

    Raises:
        TokenMessageError: malformed, empty, too many signatures or bad sizes.
    """
    _, key_id, items = _decode_batch(data, "token issuance", "s", frozenset({"v", "k", "s"}))
    return TokenIssuance(key_id, items)


class TokenIssuer:
    """Signs token requests with the current epoch's key (sans-IO).

    The caller decodes the request, checks that ``payment_ref`` pays for
    ``len(request.blinded)`` tokens and was not used before, then calls :meth:`issue`.
    """

    def __init__(self, keys: Iterable[TokenIssuerKey]) -> None:
        self._keys = {key.public.key_id: key for key in keys}

    def add_key(self, key: TokenIssuerKey) -> None:
        """Start signing with ``key`` (for its epoch)."""
        self._keys[key.public.key_id] = key

    def issue(self, request: TokenRequest, *, epoch: int) -> TokenIssuance:
        """Blind-sign every message of ``request`` with the key it names.

        Raises:
            UnknownKeyError: this issuer has no key with the request's key id.
            ExpiredTokenError: that key is not the key of ``epoch``.
            TokenMessageError: a blinded message does not fit the key.
        """
        key = self._keys.get(request.key_id)
        if key is None:
            raise UnknownKeyError
        if key.epoch != epoch:
            raise ExpiredTokenError
        try:
            sigs = tuple(blind_sign(key.private_key, item) for item in request.blinded)
        except BlindInputError:
            raise TokenMessageError("blinded message does not fit the key") from None
        return TokenIssuance(request.key_id, sigs)


@dataclass(frozen=True, slots=True)
class Token:
    """An unblinded token: redeemable once at ``redeemer`` while its key's epoch is accepted."""

    key_id: bytes
    epoch: int
    redeemer: bytes
    nonce: bytes
    prefix: bytes
    signature: bytes = field(repr=False)

    def redemption(self) -> bytes:
        """Canonical CBOR ``{"v": 1, "k": key_id, "n": nonce, "p": prefix, "s": signature}``."""
        return canonical_encode(
            {"v": 1, "k": self.key_id, "n": self.nonce, "p": self.prefix, "s": self.signature}
        )

    def to_record(self) -> dict[str, Any]:
        """The stored form: the redemption's fields plus ``"e"`` epoch and ``"r"`` redeemer."""
        return {
            "v": 1,
            "k": self.key_id,
            "e": self.epoch,
            "r": self.redeemer,
            "n": self.nonce,
            "p": self.prefix,
            "s": self.signature,
        }


@dataclass(frozen=True, slots=True)
class _Pending:
    nonce: bytes
    prepared: bytes
    blinded: Blinded = field(repr=False)


@dataclass(frozen=True, slots=True)
class PendingTokens:
    """The client's secret state between a request and the issuer's answer."""

    key: TokenKey
    redeemer: bytes
    items: tuple[_Pending, ...] = field(repr=False)

    def finalize(self, answer: bytes) -> list[Token]:
        """Unblind and verify the issuer's answer into tokens.

        Raises:
            TokenMessageError: the answer is malformed, for another key, or of the wrong count.
            BadTokenError: a signature does not verify (a faulty or cheating issuer).
        """
        issuance = decode_token_issuance(answer)
        if issuance.key_id != self.key.key_id or len(issuance.blind_signatures) != len(self.items):
            raise TokenMessageError("token issuance does not answer this request")
        tokens = []
        for item, blind_sig in zip(self.items, issuance.blind_signatures, strict=True):
            try:
                sig = finalize(self.key.public_key, item.prepared, blind_sig, item.blinded, VARIANT)
            except BlindSignatureError:
                raise BadTokenError from None
            prefix = item.prepared[:PREFIX_SIZE]
            tokens.append(
                Token(self.key.key_id, self.key.epoch, self.redeemer, item.nonce, prefix, sig)
            )
        return tokens

    def to_bytes(self) -> bytes:
        """The secret state for safe keeping until the answer comes (seal it: it unblinds).

        Canonical CBOR ``{"v": 1, "k": key, "r": redeemer, "i": [[nonce,
        prepared, blinded message, inverse], ...]}``; a client that stores it
        before paying can finish the purchase after a restart.
        """
        items = [[i.nonce, i.prepared, i.blinded.message, i.blinded.inverse] for i in self.items]
        return canonical_encode({"v": 1, "k": self.key.to_bytes(), "r": self.redeemer, "i": items})

    @classmethod
    def from_bytes(cls, data: bytes) -> PendingTokens:
        """Decode :meth:`to_bytes` (checked: each item is a token message of this key).

        Raises:
            TokenMessageError: malformed, or an item that does not belong to the key.
        """
        try:
            fields = Fields(canonical_decode(data, _PENDING_LIMITS), "pending tokens", _PENDING)
            fields.get_int("v", lo=1, hi=1)
            key = TokenKey.from_bytes(fields.get_bytes("k", max_size=4096))
            redeemer = fields.get_bytes("r", size=ID_SIZE)
            raw = fields.get_list("i", max_len=MAX_TOKENS_PER_REQUEST)
        except DecodeError as exc:
            raise _field_error(exc) from None
        size = key.modulus_bytes
        items = []
        for item in raw:
            if not (
                isinstance(item, list)
                and len(item) == 4
                and all(isinstance(part, bytes) for part in item)
            ):
                raise TokenMessageError("pending tokens: bad item")
            nonce, prepared, message, inverse = item
            expected = token_message(key.key_id, redeemer, nonce)
            if (
                len(nonce) != NONCE_SIZE
                or len(prepared) != PREFIX_SIZE + len(expected)
                or prepared[PREFIX_SIZE:] != expected
                or len(message) != size
                or len(inverse) != size
            ):
                raise TokenMessageError("pending tokens: an item does not belong to this key")
            items.append(_Pending(nonce, prepared, Blinded(message, inverse)))
        if not items:
            raise TokenMessageError("pending tokens: no item")
        return cls(key, redeemer, tuple(items))


_PENDING: Final = frozenset({"v", "k", "r", "i"})
_PENDING_LIMITS: Final = DecodeLimits(max_size=80_000, max_depth=3, max_items=300)


def request_tokens(
    key: TokenKey, redeemer: bytes, count: int, payment_ref: bytes
) -> tuple[TokenRequest, PendingTokens]:
    """Make a request for ``count`` tokens redeemable at ``redeemer`` (a 32-byte relay id).

    Raises:
        BlindInputError: bad count, redeemer or payment reference size, or key size.
    """
    if not 1 <= count <= MAX_TOKENS_PER_REQUEST:
        raise BlindInputError("token count out of range")
    if len(redeemer) != ID_SIZE or len(payment_ref) > MAX_PAYMENT_REF:
        raise BlindInputError("redeemer must be 32 bytes, payment reference at most 256")
    _check_public(key.public_key)
    items = []
    for _ in range(count):
        nonce = os.urandom(NONCE_SIZE)
        prepared = prepare(token_message(key.key_id, redeemer, nonce), VARIANT)
        items.append(_Pending(nonce, prepared, blind(key.public_key, prepared, VARIANT)))
    request = TokenRequest(key.key_id, bytes(payment_ref), tuple(i.blinded.message for i in items))
    return request, PendingTokens(key, bytes(redeemer), tuple(items))
