"""Recovery phrases and the key path scheme: one phrase restores every key.

A BIP-39 phrase (24 words, 256 bits of entropy, via the ``mnemonic`` package,
Trezor's reference implementation) becomes a 64-byte seed with BIP-39's
PBKDF2 (an optional passphrase is the BIP-39 "25th word"). SLIP-0010 then
derives Ed25519 keys along::

    m / 44' / 25443' / account' / device' / purpose' / index'

``44'`` is BIP-44's purpose and ``25443'`` (0x6363, ASCII "cc" for "chat")
our coin type, chosen outside the ranges SLIP-0044 lists for wallets we know of,
so a wallet given the same phrase derives different keys. Every level is
hardened (Ed25519 has no other kind). ``device' = 0'`` holds the identity's own
keys; devices ``1'``, ``2'``, ... are the devices the seed holder provisions
itself. ``purpose`` says what a key is for (:class:`Purpose`) and ``index``
numbers rotations of it. X25519 and symmetric keys take the 32 private bytes
of their own path, never a key that is also used for signatures.
"""

from __future__ import annotations

import unicodedata
from enum import IntEnum

from mnemonic import Mnemonic

from dchat_crypto import PrivateKey, SigningKey
from dchat_crypto.hazmat import hkdf_sha256

from ._errors import IdentityArgumentError
from ._records import Rng, default_rng
from ._slip10 import ExtendedKey

__all__ = (
    "COIN_TYPE",
    "IdentitySeed",
    "Purpose",
    "generate_phrase",
    "key_path",
    "phrase_to_seed",
)

COIN_TYPE = 25443
_MAX_LEVEL = 2**31 - 1
_WORDLIST = Mnemonic("english")


class Purpose(IntEnum):
    """The ``purpose'`` level of the path: what a derived key is used for."""

    IDENTITY = 0
    ENCRYPTION = 1
    MAILBOX = 2
    DEVICE = 3
    DEVICE_EXCHANGE = 4
    SYNC = 5


def key_path(account: int, device: int, purpose: Purpose, index: int = 0) -> str:
    """The derivation path of one key, e.g. ``m/44'/25443'/0'/0'/0'/0'``.

    Raises:
        IdentityArgumentError: a level is not an integer in ``[0, 2**31)``.
    """
    levels = (account, device, int(purpose), index)
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= _MAX_LEVEL:
            raise IdentityArgumentError("path levels are integers in [0, 2**31)")
    return "m/44'/{}'/{}'/{}'/{}'/{}'".format(COIN_TYPE, *levels)


def generate_phrase(rng: Rng = default_rng) -> str:
    """A new 24-word English BIP-39 recovery phrase from 32 bytes of ``rng``."""
    return _WORDLIST.to_mnemonic(rng(32))


def _normalise(phrase: str) -> str:
    if not isinstance(phrase, str) or len(phrase) > 1024:
        raise IdentityArgumentError("a recovery phrase must be text")
    return " ".join(unicodedata.normalize("NFKD", phrase).lower().split())


def phrase_to_seed(phrase: str, passphrase: str = "") -> bytes:
    """The 64-byte BIP-39 seed of ``phrase`` (checksum verified).

    Raises:
        IdentityArgumentError: unknown word, wrong length or bad checksum.
    """
    words = _normalise(phrase)
    if len(words.split()) not in (12, 15, 18, 21, 24) or not _WORDLIST.check(words):
        raise IdentityArgumentError("not a valid recovery phrase (unknown word or bad checksum)")
    if not isinstance(passphrase, str):
        raise IdentityArgumentError("the phrase passphrase must be text")
    return Mnemonic.to_seed(words, passphrase)


class IdentitySeed:
    """A master seed and the keys the path scheme derives from it.

    ``repr`` shows nothing secret. Args: ``seed``, 16 to 64 bytes.
    """

    __slots__ = ("_master",)

    def __init__(self, seed: bytes) -> None:
        self._master = ExtendedKey.master(seed)

    @classmethod
    def from_phrase(cls, phrase: str, passphrase: str = "") -> IdentitySeed:
        """The seed of a BIP-39 recovery phrase (see :func:`phrase_to_seed`)."""
        return cls(phrase_to_seed(phrase, passphrase))

    def node(self, account: int, device: int, purpose: Purpose, index: int = 0) -> ExtendedKey:
        """The SLIP-0010 node at :func:`key_path` ``(account, device, purpose, index)``."""
        return self._master.derive(key_path(account, device, purpose, index))

    def signing_key(
        self, account: int, device: int, purpose: Purpose, index: int = 0
    ) -> SigningKey:
        """An Ed25519 key at the given path."""
        return self.node(account, device, purpose, index).signing_key

    def exchange_key(
        self, account: int, device: int, purpose: Purpose, index: int = 0
    ) -> PrivateKey:
        """An X25519 key whose scalar is the 32 private bytes at the given path."""
        return PrivateKey.from_bytes(self.node(account, device, purpose, index).private)

    def sync_secret(self, account: int = 0, index: int = 0) -> bytes:
        """The 32-byte secret all of an identity's devices share for sync messages."""
        node = self.node(account, 0, Purpose.SYNC, index)
        return hkdf_sha256(node.private, salt=b"", info=b"dchat-sync-secret-v1", length=32)

    def __repr__(self) -> str:
        return "IdentitySeed(<secret>)"
