"""Noise cipher and hash functions, ``CipherState`` and ``SymmetricState``.

Implements sections 4 and 5.1-5.2 of the Noise Protocol Framework, revision 34
(https://noiseprotocol.org/noise.html). These are the raw building blocks; the
safe entry points are :class:`HandshakeState` and :class:`NoiseTransport`.
Both state classes offer ``copy()`` so that a handshake can work on copies and
commit only when a whole message has been processed.

Speed: a CipherState builds its AEAD object once per key (on first use) and
drops it on ``rekey``; HMAC for the four known hashes is computed directly from
the precomputed pads instead of through :mod:`hmac`'s generic machinery. Both
produce the same bytes and raise the same errors as the plain definitions.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from ._errors import DecryptionError, NoiseStateError, NonceExhaustedError
from ._primitives import (
    AEAD_FAILURES,
    aesgcm_decrypt,
    aesgcm_encrypt,
    chacha20poly1305_decrypt,
    chacha20poly1305_encrypt,
    reusable_aead,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

__all__ = (
    "CIPHERS",
    "HASHES",
    "MAX_NONCE",
    "CipherFunctions",
    "CipherState",
    "HashFunctions",
    "SymmetricState",
)

MAX_NONCE = 2**64 - 1
"""Reserved nonce: never used for a message (spec section 5.1), only by ``rekey``."""

_KEY_SIZE = 32
_ZEROS = bytes(_KEY_SIZE)

_Aead = Callable[[bytes, bytes, bytes, bytes], bytes]


@dataclass(frozen=True, slots=True)
class CipherFunctions:
    """A Noise cipher: its name, AEAD functions and nonce encoding."""

    name: str
    encrypt_fn: _Aead
    decrypt_fn: _Aead
    nonce_byteorder: Literal["little", "big"]

    def nonce(self, n: int) -> bytes:
        """Encode ``n`` as 4 zero bytes then 8 bytes (LE for ChaChaPoly, BE for AESGCM)."""
        return bytes(4) + n.to_bytes(8, self.nonce_byteorder)

    def encrypt(self, k: bytes, n: int, ad: bytes, plaintext: bytes) -> bytes:
        """``ENCRYPT(k, n, ad, plaintext)`` of the spec."""
        return self.encrypt_fn(k, self.nonce(n), plaintext, ad)

    def decrypt(self, k: bytes, n: int, ad: bytes, ciphertext: bytes) -> bytes:
        """``DECRYPT(k, n, ad, ciphertext)``; raises :class:`DecryptionError`."""
        return self.decrypt_fn(k, self.nonce(n), ciphertext, ad)

    def rekey(self, k: bytes) -> bytes:
        """``REKEY(k)``: the first 32 bytes of ``ENCRYPT(k, 2**64-1, b"", zeros)``."""
        return self.encrypt(k, MAX_NONCE, b"", _ZEROS)[:_KEY_SIZE]


CIPHERS: dict[str, CipherFunctions] = {
    "ChaChaPoly": CipherFunctions(
        "ChaChaPoly", chacha20poly1305_encrypt, chacha20poly1305_decrypt, "little"
    ),
    "AESGCM": CipherFunctions("AESGCM", aesgcm_encrypt, aesgcm_decrypt, "big"),
}


@dataclass(frozen=True, slots=True)
class HashFunctions:
    """A Noise hash: ``HASH``, ``HMAC-HASH`` and the Noise ``HKDF``."""

    name: str
    constructor: Callable[..., Any]
    hashlen: int

    def hash(self, data: bytes) -> bytes:
        """``HASH(data)``."""
        return bytes(self.constructor(data).digest())

    def hmac(self, key: bytes, data: bytes) -> bytes:
        """``HMAC-HASH(key, data)`` (RFC 2104, with this hash's block length)."""
        block = _BLOCK_SIZES.get(id(self.constructor))
        if block is None:
            return hmac.new(key, data, self.constructor).digest()
        inner, outer = _pads(self.constructor, block, key)
        return _mac(self.constructor, inner, outer, data)

    def hkdf(self, chaining_key: bytes, ikm: bytes, num_outputs: int) -> list[bytes]:
        """Noise ``HKDF``: 2 or 3 outputs of ``hashlen`` bytes each."""
        h = self.constructor
        block = _BLOCK_SIZES.get(id(h))
        if block is None:
            temp_key = self.hmac(chaining_key, ikm)
            outputs: list[bytes] = []
            previous = b""
            for i in range(1, num_outputs + 1):
                previous = self.hmac(temp_key, previous + bytes([i]))
                outputs.append(previous)
            return outputs
        inner, outer = _pads(h, block, chaining_key)
        temp_key = _mac(h, inner, outer, ikm)
        # Every output is keyed by temp_key: derive its pads once, not per output.
        inner, outer = _pads(h, block, temp_key)
        outputs = []
        previous = b""
        for i in range(1, num_outputs + 1):
            previous = _mac(h, inner, outer, previous + bytes((i,)))
            outputs.append(previous)
        return outputs


# HMAC (RFC 2104) by hand for the hashes Noise names: hmac.new() spends more time
# in generic set-up than BLAKE2s spends hashing a Noise-sized input. Unknown
# constructors still go through the hmac module. Keyed by id(): these module-level
# functions live as long as the process, and any callable can be looked up, even
# an unhashable one.
_BLOCK_SIZES: Final[dict[int, int]] = {
    id(hashlib.sha256): 64,
    id(hashlib.sha512): 128,
    id(hashlib.blake2s): 64,
    id(hashlib.blake2b): 128,
}
_IPAD: Final = bytes(x ^ 0x36 for x in range(256))
_OPAD: Final = bytes(x ^ 0x5C for x in range(256))


def _pads(constructor: Callable[..., Any], block: int, key: bytes) -> tuple[bytes, bytes]:
    """``K xor ipad`` and ``K xor opad`` (the same table lookup the hmac module does)."""
    if len(key) > block:
        key = constructor(key).digest()
    key = bytes(key).ljust(block, b"\x00")
    return key.translate(_IPAD), key.translate(_OPAD)


def _mac(constructor: Callable[..., Any], inner: bytes, outer: bytes, data: bytes) -> bytes:
    digest: bytes = constructor(outer + constructor(inner + data).digest()).digest()
    return digest


HASHES: dict[str, HashFunctions] = {
    "SHA256": HashFunctions("SHA256", hashlib.sha256, 32),
    "SHA512": HashFunctions("SHA512", hashlib.sha512, 64),
    "BLAKE2s": HashFunctions("BLAKE2s", hashlib.blake2s, 32),
    "BLAKE2b": HashFunctions("BLAKE2b", hashlib.blake2b, 64),
}


class _KnownCipher:
    """One key of a built-in cipher: a reused ``cryptography`` AEAD object."""

    __slots__ = ("_aead", "_nonce")

    def __init__(self, aead: ChaCha20Poly1305 | AESGCM, byteorder: str) -> None:
        self._aead = aead
        self._nonce = _NONCE_FORMATS[byteorder]

    def encrypt(self, n: int, ad: bytes, plaintext: bytes) -> bytes:
        return self._aead.encrypt(self._nonce(n), plaintext, ad)

    def decrypt(self, n: int, ad: bytes, ciphertext: bytes) -> bytes:
        try:
            return self._aead.decrypt(self._nonce(n), ciphertext, ad)
        except AEAD_FAILURES:
            # The same single opaque error the chacha20poly1305/aesgcm wrappers raise.
            raise DecryptionError from None


class _OtherCipher:
    """One key of any other CipherFunctions: its functions are called as always."""

    __slots__ = ("_cipher", "_k")

    def __init__(self, cipher: CipherFunctions, key: bytes) -> None:
        self._cipher = cipher
        self._k = key

    def encrypt(self, n: int, ad: bytes, plaintext: bytes) -> bytes:
        return self._cipher.encrypt(self._k, n, ad, plaintext)

    def decrypt(self, n: int, ad: bytes, ciphertext: bytes) -> bytes:
        return self._cipher.decrypt(self._k, n, ad, ciphertext)


# bytes(4) + n.to_bytes(8, order), in one C call.
_NONCE_FORMATS: Final = {
    "little": struct.Struct("<4xQ").pack,
    "big": struct.Struct(">4xQ").pack,
}


def _keyed(cipher: CipherFunctions, key: bytes) -> _KnownCipher | _OtherCipher:
    # Only the exact built-in class with our own wrappers takes the fast path: a
    # subclass may have overridden encrypt()/nonce(), and must still be called.
    if type(cipher) is CipherFunctions:
        aead = reusable_aead(cipher.encrypt_fn, cipher.decrypt_fn, key)
        if aead is not None:
            return _KnownCipher(aead, cipher.nonce_byteorder)
    return _OtherCipher(cipher, key)


class CipherState:
    """A key ``k`` (or none) and a 64-bit nonce ``n`` (spec section 5.1)."""

    __slots__ = ("_cipher", "_k", "_keyed", "_n")

    def __init__(self, cipher: CipherFunctions, key: bytes | None = None) -> None:
        self._cipher = cipher
        self._k = key
        self._n = 0
        # Built from _k on first use and dropped whenever _k changes (rekey), so
        # it always holds exactly the current key.
        self._keyed: _KnownCipher | _OtherCipher | None = None

    def copy(self) -> CipherState:
        """Return an independent copy."""
        other = CipherState(self._cipher, self._k)
        other._n = self._n
        # Same key, and the AEAD objects hold nothing but the key: safe to share.
        # A later rekey of either copy replaces only that copy's reference.
        other._keyed = self._keyed
        return other

    def has_key(self) -> bool:
        """Whether a key is set (without one, encryption is the identity)."""
        return self._k is not None

    @property
    def nonce(self) -> int:
        """The next nonce to be used."""
        return self._n

    def set_nonce(self, nonce: int) -> None:
        """Set the next nonce (for tests and out-of-order transports)."""
        if not 0 <= nonce <= MAX_NONCE:
            raise ValueError("nonce must fit in 64 bits")
        self._n = nonce

    def _bind(self) -> _KnownCipher | _OtherCipher:
        assert self._k is not None
        keyed = self._keyed = _keyed(self._cipher, self._k)
        return keyed

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        """Encrypt and advance the nonce; plaintext passes through without a key."""
        keyed = self._keyed
        if keyed is None and self._k is None:
            return plaintext
        n = self._n
        # Nonce 2**64-1 is reserved; reaching it means the session must end.
        if n >= MAX_NONCE:
            raise NonceExhaustedError(_EXHAUSTED)
        if keyed is None:
            keyed = self._bind()
        ciphertext = keyed.encrypt(n, ad, plaintext)
        self._n = n + 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        """Decrypt; the nonce advances only on success.

        Raises:
            DecryptionError: If authentication fails.
            NonceExhaustedError: If the nonce space is used up.
        """
        keyed = self._keyed
        if keyed is None and self._k is None:
            return ciphertext
        n = self._n
        if n >= MAX_NONCE:
            raise NonceExhaustedError(_EXHAUSTED)
        if keyed is None:
            keyed = self._bind()
        plaintext = keyed.decrypt(n, ad, ciphertext)
        self._n = n + 1
        return plaintext

    def rekey(self) -> None:
        """Replace the key with ``REKEY(k)``; the nonce is unchanged (spec 11.3)."""
        if self._k is None:
            raise NoiseStateError("cannot rekey a CipherState without a key")
        self._k = self._cipher.rekey(self._k)
        self._keyed = None  # the cached AEAD object holds the old key


_EXHAUSTED: Final = "nonce space exhausted; start a new session"


class SymmetricState:
    """Chaining key ``ck``, handshake hash ``h`` and a CipherState (spec 5.2)."""

    __slots__ = ("_cipher", "_cs", "_hash", "ck", "h")

    def __init__(self, protocol_name: bytes, cipher: CipherFunctions, hash_: HashFunctions) -> None:
        self._cipher = cipher
        self._hash = hash_
        if len(protocol_name) <= hash_.hashlen:
            self.h = protocol_name.ljust(hash_.hashlen, b"\x00")
        else:
            self.h = hash_.hash(protocol_name)
        self.ck = self.h
        self._cs = CipherState(cipher)

    def copy(self) -> SymmetricState:
        """Return an independent copy."""
        other = object.__new__(SymmetricState)
        other._cipher, other._hash = self._cipher, self._hash
        other.ck, other.h, other._cs = self.ck, self.h, self._cs.copy()
        return other

    @property
    def hashlen(self) -> int:
        """``HASHLEN`` of the hash function."""
        return self._hash.hashlen

    def has_key(self) -> bool:
        """Whether the inner CipherState has a key."""
        return self._cs.has_key()

    def mix_key(self, ikm: bytes) -> None:
        """``MixKey``: fold DH output (or a PSK-mode ephemeral) into ``ck`` and ``k``."""
        self.ck, temp_k = self._hash.hkdf(self.ck, ikm, 2)
        self._cs = CipherState(self._cipher, temp_k[:_KEY_SIZE])

    def mix_hash(self, data: bytes) -> None:
        """``MixHash``: ``h = HASH(h || data)``."""
        self.h = self._hash.hash(self.h + data)

    def mix_key_and_hash(self, ikm: bytes) -> None:
        """``MixKeyAndHash``: used for pre-shared keys."""
        self.ck, temp_h, temp_k = self._hash.hkdf(self.ck, ikm, 3)
        self.mix_hash(temp_h)
        self._cs = CipherState(self._cipher, temp_k[:_KEY_SIZE])

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        """``EncryptAndHash``: encrypt with ``h`` as AD, then mix the ciphertext."""
        ciphertext = self._cs.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        """``DecryptAndHash``; raises :class:`DecryptionError` on failure."""
        plaintext = self._cs.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        """``Split``: two CipherStates for transport (initiator->responder first)."""
        temp_k1, temp_k2 = self._hash.hkdf(self.ck, b"", 2)
        return (
            CipherState(self._cipher, temp_k1[:_KEY_SIZE]),
            CipherState(self._cipher, temp_k2[:_KEY_SIZE]),
        )
