"""Blind tokens: the redeemer's check and spent sets, and the client's token wallet.

Theory of operation
-------------------
A redeemer (a relay) knows its own 32-byte id and the issuer keys it accepts
(:meth:`TokenRedeemer.add_key`). The current epoch is an input
(:meth:`TokenRedeemer.advance`, never a clock): a key of epoch ``E`` is
accepted while ``E <= epoch <= E + window``. :meth:`TokenRedeemer.redeem`
decodes a redemption, finds the key, checks the epoch window, rebuilds the
token message with the redeemer's *own* id (a token bound to another relay
fails here) and verifies the RSA-PSS signature; only then does it look the
token up in the spent set of the key's epoch, keyed by SHA-256 of the key id,
prefix and nonce. Spent sets are bounded: a full set refuses tokens
(:class:`SpentSetFullError`) rather than forget one. Sets of epochs that left
the window are dropped, which is safe because their tokens are refused as
expired. :attr:`RedeemedToken.token_hash` is what a node persists to rebuild
the sets after a restart (:meth:`TokenRedeemer.load_spent`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._blind_errors import (
    BadTokenError,
    BlindInputError,
    BlindSignatureError,
    ExpiredTokenError,
    SpentSetFullError,
    SpentTokenError,
    TokenMessageError,
    UnknownKeyError,
)
from ._rsabssa import verify
from ._tokens import ID_SIZE, NONCE_SIZE, PREFIX_SIZE, VARIANT, Token, token_message

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._tokens import TokenKey

__all__ = ("RedeemedToken", "TokenRedeemer", "TokenWallet", "token_hash")

DEFAULT_MAX_SPENT: Final = 250_000  # about 107 bytes each in memory: ~27 MB per epoch
MAX_WALLET_TOKENS: Final = 2048
_RETIRED: Final = 256
_REDEMPTION_FIELDS: Final = frozenset({"v", "k", "n", "p", "s"})
_REDEMPTION_LIMITS: Final = DecodeLimits(max_size=1024, max_depth=1, max_items=12)
_TOKEN_FIELDS: Final = frozenset({"v", "k", "e", "r", "n", "p", "s"})
_WALLET_LIMITS: Final = DecodeLimits(
    max_size=MAX_WALLET_TOKENS * 800, max_depth=3, max_items=MAX_WALLET_TOKENS * 16 + 8
)


def token_hash(key_id: bytes, prefix: bytes, nonce: bytes) -> bytes:
    """The spent-set key of a token: SHA-256 of a label, key id, prefix and nonce."""
    return hashlib.sha256(b"dchat-token-spent-v1" + key_id + prefix + nonce).digest()


@dataclass(frozen=True, slots=True)
class RedeemedToken:
    """A token accepted once: its key, the key's epoch and its spent-set hash."""

    key_id: bytes
    epoch: int
    token_hash: bytes


class TokenRedeemer:
    """Verifies redemptions for one redeemer id and refuses double spending (sans-IO)."""

    def __init__(
        self,
        redeemer: bytes,
        *,
        epoch: int,
        window: int = 1,
        max_spent_per_epoch: int = DEFAULT_MAX_SPENT,
    ) -> None:
        if len(redeemer) != ID_SIZE or window < 0 or max_spent_per_epoch < 1:
            raise BlindInputError("redeemer id must be 32 bytes; window and bound positive")
        self._redeemer = bytes(redeemer)
        self._epoch = epoch
        self._window = window
        self._max_spent = max_spent_per_epoch
        self._keys: dict[bytes, TokenKey] = {}
        self._retired: OrderedDict[bytes, None] = OrderedDict()
        self._spent: dict[int, set[bytes]] = {}

    @property
    def epoch(self) -> int:
        """The current epoch."""
        return self._epoch

    def add_key(self, key: TokenKey) -> None:
        """Accept tokens of ``key`` (while its epoch is in the window)."""
        self._keys[key.key_id] = key

    def advance(self, epoch: int) -> None:
        """Move to ``epoch`` (never backwards); forget keys and spent sets that left the window."""
        self._epoch = max(self._epoch, epoch)
        oldest = self._epoch - self._window
        for key_id, key in list(self._keys.items()):
            if key.epoch < oldest:
                del self._keys[key_id]
                self._retired[key_id] = None
        while len(self._retired) > _RETIRED:
            self._retired.popitem(last=False)
        for spent_epoch in [e for e in self._spent if e < oldest]:
            del self._spent[spent_epoch]

    def spent_count(self, epoch: int) -> int:
        """How many tokens of ``epoch`` were redeemed (as far as this redeemer remembers)."""
        return len(self._spent.get(epoch, ()))

    def load_spent(self, epoch: int, hashes: Iterable[bytes]) -> None:
        """Restore spent hashes of ``epoch`` saved from :attr:`RedeemedToken.token_hash`."""
        if epoch >= self._epoch - self._window:
            self._spent.setdefault(epoch, set()).update(hashes)

    def redeem(self, data: bytes) -> RedeemedToken:
        """Accept the redemption ``data`` once.

        Raises:
            BadTokenError: malformed, forged, or bound to another redeemer.
            UnknownKeyError: no accepted key has this id.
            ExpiredTokenError: the key's epoch is outside the window.
            SpentTokenError: the token was already redeemed here.
            SpentSetFullError: the epoch's spent set is at its bound.
        """
        key_id, nonce, prefix, signature = _decode_redemption(data)
        key = self._keys.get(key_id)
        if key is None:
            if key_id in self._retired:
                raise ExpiredTokenError
            raise UnknownKeyError
        if not key.epoch <= self._epoch <= key.epoch + self._window:
            raise ExpiredTokenError
        if len(signature) != key.modulus_bytes:
            raise BadTokenError
        prepared = prefix + token_message(key_id, self._redeemer, nonce)
        try:
            verify(key.public_key, prepared, signature, VARIANT)
        except BlindSignatureError:
            raise BadTokenError from None
        spent = self._spent.setdefault(key.epoch, set())
        digest = token_hash(key_id, prefix, nonce)
        if digest in spent:
            raise SpentTokenError
        if len(spent) >= self._max_spent:
            raise SpentSetFullError
        spent.add(digest)
        return RedeemedToken(key_id, key.epoch, digest)


def _decode_redemption(data: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    try:
        fields = Fields(
            canonical_decode(data, _REDEMPTION_LIMITS), "redemption", _REDEMPTION_FIELDS
        )
        fields.get_int("v", lo=1, hi=1)
        return (
            fields.get_bytes("k", size=ID_SIZE),
            fields.get_bytes("n", size=NONCE_SIZE),
            fields.get_bytes("p", size=PREFIX_SIZE),
            fields.get_bytes("s", max_size=512),
        )
    except DecodeError:
        raise BadTokenError from None


def _decode_token(value: object) -> Token:
    fields = Fields(value, "token", _TOKEN_FIELDS)
    fields.get_int("v", lo=1, hi=1)
    return Token(
        key_id=fields.get_bytes("k", size=ID_SIZE),
        epoch=fields.get_int("e"),
        redeemer=fields.get_bytes("r", size=ID_SIZE),
        nonce=fields.get_bytes("n", size=NONCE_SIZE),
        prefix=fields.get_bytes("p", size=PREFIX_SIZE),
        signature=fields.get_bytes("s", max_size=512),
    )


class TokenWallet:
    """The client's unspent tokens, oldest epoch first, at most :data:`MAX_WALLET_TOKENS`."""

    def __init__(self, tokens: Iterable[Token] = ()) -> None:
        self._tokens: list[Token] = []
        self.add(tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def add(self, tokens: Iterable[Token]) -> None:
        """Keep ``tokens``.

        Raises:
            BlindInputError: the wallet would hold more than :data:`MAX_WALLET_TOKENS`.
        """
        new = list(tokens)
        if len(self._tokens) + len(new) > MAX_WALLET_TOKENS:
            raise BlindInputError("token wallet full")
        self._tokens.extend(new)
        self._tokens.sort(key=lambda token: token.epoch)

    def count(self, redeemer: bytes) -> int:
        """How many tokens for ``redeemer`` are held."""
        return sum(token.redeemer == redeemer for token in self._tokens)

    def take(self, redeemer: bytes, *, oldest_epoch: int) -> Token | None:
        """Remove and return a token for ``redeemer`` of epoch ``oldest_epoch`` or later.

        The oldest such token goes first (it expires first). ``None`` when there is none.
        """
        for index, token in enumerate(self._tokens):
            if token.redeemer == redeemer and token.epoch >= oldest_epoch:
                return self._tokens.pop(index)
        return None

    def drop_expired(self, oldest_epoch: int) -> int:
        """Forget tokens of epochs before ``oldest_epoch``; returns how many."""
        before = len(self._tokens)
        self._tokens = [token for token in self._tokens if token.epoch >= oldest_epoch]
        return before - len(self._tokens)

    def to_bytes(self) -> bytes:
        """Canonical CBOR ``{"v": 1, "t": [token record, ...]}`` (see :meth:`Token.to_record`)."""
        return canonical_encode({"v": 1, "t": [token.to_record() for token in self._tokens]})

    @classmethod
    def from_bytes(cls, data: bytes) -> TokenWallet:
        """Load a wallet written by :meth:`to_bytes`.

        Raises:
            TokenMessageError: the blob is malformed.
        """
        try:
            fields = Fields(canonical_decode(data, _WALLET_LIMITS), "wallet", frozenset("vt"))
            fields.get_int("v", lo=1, hi=1)
            tokens = [_decode_token(item) for item in fields.get_list("t")]
        except DecodeError as exc:
            raise TokenMessageError(str(exc)) from None
        if len(tokens) > MAX_WALLET_TOKENS:
            raise TokenMessageError("wallet holds too many tokens")
        return cls(tokens)
