"""A person's identity: the keys they hold and the encrypted keystore they live in.

An identity has three independent keys:

* the **identity key** (Ed25519) signs everything the person says; its digest is
  the person's :class:`~dchat_core.IdentityId`;
* the **encryption key** (X25519) receives sealed envelopes;
* the **mailbox key** (Ed25519) authenticates the person's node to its relay
  when it fetches mail. The relay sees only the mailbox id (the digest of this
  key), never the identity id, so relays cannot link mailboxes to people.

On disk the keys exist only inside a passphrase keystore (Argon2id + AEAD, see
:func:`dchat_crypto.encrypt_with_passphrase`). An identity may instead be derived
from a BIP-39 recovery phrase (:meth:`Identity.from_phrase`), so that the phrase
alone restores all three keys (path scheme in :mod:`._derivation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dchat_core import (
    DecodeError,
    Fields,
    IdentityId,
    MailboxId,
    canonical_decode,
    canonical_encode,
)
from dchat_crypto import (
    DecryptionError,
    KdfParams,
    KeystoreFormatError,
    PrivateKey,
    SigningKey,
    decrypt_with_passphrase,
    encrypt_with_passphrase,
)

from ._derivation import IdentitySeed, Purpose
from ._errors import KeystoreError

if TYPE_CHECKING:
    from ._records import Rng

__all__ = ("Identity",)

_KEYSTORE_FIELDS = frozenset({"v", "identity", "encryption", "mailbox"})


@dataclass(frozen=True, slots=True, repr=False)
class Identity:
    """The private keys of one identity."""

    signing_key: SigningKey
    encryption_key: PrivateKey
    mailbox_key: SigningKey

    @classmethod
    def generate(cls, rng: Rng | None = None) -> Identity:
        """A fresh identity with three independent random keys (from ``rng`` if given)."""
        if rng is None:
            return cls(SigningKey.generate(), PrivateKey.generate(), SigningKey.generate())
        return cls(
            SigningKey.from_bytes(rng(32)),
            PrivateKey.from_bytes(rng(32)),
            SigningKey.from_bytes(rng(32)),
        )

    @classmethod
    def from_seed(cls, seed: IdentitySeed, *, account: int = 0) -> Identity:
        """The identity of ``account`` under ``seed``: keys at device ``0'``."""
        return cls(
            seed.signing_key(account, 0, Purpose.IDENTITY),
            seed.exchange_key(account, 0, Purpose.ENCRYPTION),
            seed.signing_key(account, 0, Purpose.MAILBOX),
        )

    @classmethod
    def from_phrase(cls, phrase: str, *, passphrase: str = "", account: int = 0) -> Identity:
        """Restore the identity a BIP-39 recovery phrase stands for.

        Raises:
            IdentityArgumentError: the phrase is not valid BIP-39 (word or checksum).
        """
        return cls.from_seed(IdentitySeed.from_phrase(phrase, passphrase), account=account)

    @property
    def identity_id(self) -> IdentityId:
        """The self-certifying id: digest of the identity public key."""
        return IdentityId.derive(self.signing_key.public_key.to_bytes())

    @property
    def mailbox_id(self) -> MailboxId:
        """The relay mailbox this identity fetches from."""
        return MailboxId.derive(self.mailbox_key.public_key.to_bytes())

    def __repr__(self) -> str:
        return f"Identity({self.identity_id})"

    def to_keystore(self, passphrase: str | bytes, params: KdfParams = KdfParams.DEFAULT) -> bytes:
        """Serialize the private keys, encrypted under ``passphrase``."""
        secret = canonical_encode(
            {
                "v": 1,
                "identity": self.signing_key.to_bytes(),
                "encryption": self.encryption_key.to_bytes(),
                "mailbox": self.mailbox_key.to_bytes(),
            }
        )
        return encrypt_with_passphrase(secret, passphrase, params=params)

    @classmethod
    def from_keystore(cls, blob: bytes, passphrase: str | bytes) -> Identity:
        """Unlock a keystore made by :meth:`to_keystore`.

        Raises:
            KeystoreError: wrong passphrase, tampering or a malformed keystore.
        """
        try:
            secret = decrypt_with_passphrase(blob, passphrase)
        except (DecryptionError, KeystoreFormatError):
            raise KeystoreError("cannot unlock the identity keystore") from None
        try:
            fields = Fields(canonical_decode(secret), "keystore", _KEYSTORE_FIELDS)
            if fields.get_int("v") != 1:
                raise KeystoreError("unsupported identity keystore version")
            return cls(
                SigningKey.from_bytes(fields.get_bytes("identity", size=32)),
                PrivateKey.from_bytes(fields.get_bytes("encryption", size=32)),
                SigningKey.from_bytes(fields.get_bytes("mailbox", size=32)),
            )
        except DecodeError:
            raise KeystoreError("malformed identity keystore") from None
