"""The signed transaction envelope shared by the chat chain and the currency chain.

A transaction is the canonical map::

    {"v": 1, "chain": chain id, "from": sender Ed25519 key (32), "nonce": n,
     "fee": f, "kind": text, "body": {kind-specific map}, "sig": bytes(64)}

``sig`` is the sender's Ed25519 signature over ``"dchat-tx-v1" 0x00 ||
canonical(map without "sig")``. The chain id inside the signed bytes stops a
transaction signed for one chain from being replayed on another; the per-sender
nonce stops a replay on the same chain. Decoding is strict and bounded (the
encoding is canonical, so one transaction has exactly one byte string), which
makes ``tx_hash = SHA-256(bytes)`` a stable id, equal to the block's leaf hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Self

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode
from dchat_crypto import BadSignatureError, SigningKey, VerifyKey

from ._tx_errors import BadTransactionSignatureError, MalformedTransactionError, WrongChainError

if TYPE_CHECKING:
    from dchat_crypto.hazmat import ScalarSigningKey

__all__ = ("MAX_AMOUNT", "MAX_TX_BYTES", "SIGN_DOMAIN", "Transaction", "tx_hash")

SIGN_DOMAIN: Final = b"dchat-tx-v1\x00"
MAX_TX_BYTES: Final = 32 << 10
MAX_AMOUNT: Final = 2**63 - 1
_LIMITS: Final = DecodeLimits(max_size=MAX_TX_BYTES, max_depth=6, max_items=1024)
_SIG_ENTRY: Final = b"\x63sig\x58\x40"  # text "sig", then a 64-byte byte-string head
_EIGHT_ENTRIES, _SEVEN_ENTRIES = b"\xa8", b"\xa7"
_FIELDS: Final = frozenset({"v", "chain", "from", "nonce", "fee", "kind", "body", "sig"})


def tx_hash(raw: bytes) -> bytes:
    """The transaction id: ``SHA-256`` of its canonical bytes."""
    return hashlib.sha256(raw).digest()


@dataclass(frozen=True, slots=True)
class Transaction:
    """A decoded transaction envelope (signature not yet checked by ``decode``).

    Attributes:
        chain_id: The chain this transaction is for.
        sender: The sender's 32-byte Ed25519 public key; it pays the fee.
        nonce: The sender's sequence number, from 0, one per transaction.
        fee: What the sender pays for inclusion (also the mempool priority).
        kind: The action, e.g. ``"transfer"``; the body's meaning depends on it.
        body: The kind-specific canonical map.
        signature: 64-byte Ed25519 signature over :meth:`signing_bytes`.
        raw: The canonical encoding of the whole transaction.
    """

    chain_id: str
    sender: bytes
    nonce: int
    fee: int
    kind: str
    body: dict[str, Any] = field(compare=False)
    signature: bytes
    raw: bytes = field(repr=False)

    @property
    def hash(self) -> bytes:
        """The transaction id (:func:`tx_hash` of :attr:`raw`)."""
        return tx_hash(self.raw)

    @staticmethod
    def _unsigned(
        chain_id: str, sender: bytes, nonce: int, fee: int, kind: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "v": 1,
            "chain": chain_id,
            "from": sender,
            "nonce": nonce,
            "fee": fee,
            "kind": kind,
            "body": body,
        }

    def signing_bytes(self) -> bytes:
        """The exact bytes the sender signs."""
        # The canonical map without "sig" is the canonical map with its "sig" entry
        # cut out and one entry fewer in its head: removing a key keeps the others'
        # order. "sig" sorts after "v" and "fee" (integers), so the first match is it.
        entry = _SIG_ENTRY + self.signature
        cut = self.raw.find(entry)
        if self.raw[:1] == _EIGHT_ENTRIES and cut > 0:
            return SIGN_DOMAIN + _SEVEN_ENTRIES + self.raw[1:cut] + self.raw[cut + len(entry) :]
        unsigned = self._unsigned(
            self.chain_id, self.sender, self.nonce, self.fee, self.kind, self.body
        )
        return SIGN_DOMAIN + canonical_encode(unsigned)

    @classmethod
    def create(
        cls,
        key: SigningKey | ScalarSigningKey,
        *,
        chain_id: str,
        nonce: int,
        fee: int,
        kind: str,
        body: dict[str, Any],
    ) -> Self:
        """Build and sign a transaction with ``key`` as the sender.

        ``key`` may be a :class:`~dchat_crypto.hazmat.ScalarSigningKey` (a stealth
        one-time account's): its signatures are ordinary Ed25519 ones.
        """
        sender = key.public_key.to_bytes()
        unsigned = cls._unsigned(chain_id, sender, nonce, fee, kind, body)
        signature = key.sign(SIGN_DOMAIN + canonical_encode(unsigned))
        raw = canonical_encode({**unsigned, "sig": signature})
        return cls.decode(raw)

    @classmethod
    def decode(cls, raw: bytes) -> Self:
        """Strictly decode a transaction from untrusted bytes.

        Raises:
            MalformedTransactionError: ``raw`` is not exactly one valid envelope.
        """
        try:
            fields = Fields(canonical_decode(raw, _LIMITS), "transaction", _FIELDS)
            if fields.get_int("v") != 1:
                raise DecodeError("transaction: unsupported version")
            body = fields.raw("body")
            if not isinstance(body, dict) or not all(isinstance(k, str) for k in body):
                raise DecodeError("transaction: body must be a map with text keys")
            return cls(
                chain_id=fields.get_str("chain", max_len=64),
                sender=fields.get_bytes("from", size=32),
                nonce=fields.get_int("nonce", hi=MAX_AMOUNT),
                fee=fields.get_int("fee", hi=MAX_AMOUNT),
                kind=fields.get_str("kind", max_len=32),
                body=body,
                signature=fields.get_bytes("sig", size=64),
                raw=bytes(raw),
            )
        except DecodeError as exc:
            raise MalformedTransactionError(str(exc)) from None

    def check_chain(self, chain_id: str) -> None:
        """Refuse a transaction signed for another chain.

        Raises:
            WrongChainError: :attr:`chain_id` differs from ``chain_id``.
        """
        if self.chain_id != chain_id:
            raise WrongChainError(f"transaction is for chain {self.chain_id!r}")

    def verify_signature(self) -> None:
        """Check the sender's signature.

        Raises:
            BadTransactionSignatureError: The signature does not verify.
        """
        try:
            VerifyKey(self.sender).verify(self.signature, self.signing_bytes())
        except BadSignatureError:
            raise BadTransactionSignatureError from None
