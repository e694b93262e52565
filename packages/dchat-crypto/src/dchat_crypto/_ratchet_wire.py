"""Double Ratchet primitives and wire format (version 1).

Cryptographic functions (the Signal "Double Ratchet Algorithm" specification,
section "Double Ratchet with header encryption")::

    DH        = X25519                                  (all-zero output rejected)
    KDF_RK    = HKDF-SHA256(salt=RK, ikm=DH output,
                            info=b"dchat-ratchet-v1 root", length=96)
                -> RK' (32) || CK (32) || NHK (32)
    KDF_CK    = MK  = HMAC-SHA256(CK, 0x01)
                CK' = HMAC-SHA256(CK, 0x02)
    ENCRYPT   = ChaCha20-Poly1305 with key (32) || nonce (12) =
                HKDF-SHA256(salt=32 zero bytes, ikm=MK,
                            info=b"dchat-ratchet-v1 message", length=44)
    HENCRYPT  = ChaCha20-Poly1305 under a header key with a random 12-byte nonce

Each message key is used for exactly one message, so its derived nonce never
repeats under its key. A header key serves a whole sending chain, hence the
random nonce; a chain carries at most 2**32 messages (4-byte counters), where
the chance of a repeated 96-bit nonce stays below 2**-32.

Wire layout (all integers big-endian)::

    message  = version (1 byte, 0x01)
             || header_nonce (12)                     random
             || enc_header (41 + 16)                  HENCRYPT(HK, header_nonce, header,
                                                               ad = version || AD')
             || body (len(plaintext) + 16)            ENCRYPT(MK, plaintext,
                                                              ad = AD' || message[:70])
    header   = flags (1) || ratchet_public_key (32) || PN (4) || N (4)
    flags    = bit 0: ratchet request (the sender asks for a reply); other bits 0
    AD'      = len(AD) (4) || AD                      the session's associated data

So an observer sees only the version byte, a random nonce and ciphertext: the
ratchet key, the counters and the request flag travel encrypted. The body is
bound to the whole encrypted header and both are bound to the session's
associated data (e.g. both identities), so a message from another session, or
with any byte changed, fails to decrypt.
"""

from __future__ import annotations

import os
import struct
from typing import Final, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.hmac import HMAC

from ._errors import DecryptionError
from ._primitives import AEAD_KEY_SIZE, AEAD_NONCE_SIZE, AEAD_TAG_SIZE, hkdf_sha256

__all__ = (
    "FLAG_RATCHET_REQUEST",
    "MESSAGE_OVERHEAD",
    "HeaderCiphers",
    "Header",
    "ParsedMessage",
    "ad_prefix",
    "kdf_ck",
    "kdf_rk",
    "open_body",
    "open_header",
    "parse_message",
    "seal_body",
    "seal_header",
)

VERSION: Final = 1
_VERSION_BYTE: Final = bytes((VERSION,))
_ROOT_INFO: Final = b"dchat-ratchet-v1 root"
_MESSAGE_INFO: Final = b"dchat-ratchet-v1 message"
_ZERO_SALT: Final = bytes(32)
_CK_MESSAGE: Final = b"\x01"
_CK_CHAIN: Final = b"\x02"
_SHA256: Final = hashes.SHA256()

FLAG_RATCHET_REQUEST: Final = 0x01
_KNOWN_FLAGS: Final = FLAG_RATCHET_REQUEST

_HEADER: Final = struct.Struct(">B32sII")
_HEADER_CT_SIZE: Final = _HEADER.size + AEAD_TAG_SIZE
_PREFIX_SIZE: Final = 1 + AEAD_NONCE_SIZE + _HEADER_CT_SIZE

MESSAGE_OVERHEAD: Final = _PREFIX_SIZE + AEAD_TAG_SIZE
"""Bytes a ratchet message adds to its plaintext (1 + 12 + 57 + 16 = 86)."""


class Header(NamedTuple):
    """A message header (``ratchet_key`` is the raw X25519 public key)."""

    flags: int
    ratchet_key: bytes
    previous_count: int
    number: int


class ParsedMessage(NamedTuple):
    """A message split into its parts; nothing here is authenticated yet."""

    nonce: bytes
    header_ct: bytes
    prefix: bytes
    body: bytes


class HeaderCiphers:
    """A small cache of header-key AEAD objects.

    A header key serves a whole chain, so keying ChaCha20-Poly1305 once per
    chain instead of once per message saves time; the cache holds nothing the
    session does not hold already, and forgets everything past a few keys.
    """

    __slots__ = ("_ciphers",)
    _LIMIT: Final = 4

    def __init__(self) -> None:
        self._ciphers: dict[bytes, ChaCha20Poly1305] = {}

    def get(self, header_key: bytes) -> ChaCha20Poly1305:
        """Return the AEAD keyed with ``header_key``."""
        cipher = self._ciphers.get(header_key)
        if cipher is None:
            if len(self._ciphers) >= self._LIMIT:
                self._ciphers.clear()
            cipher = self._ciphers[header_key] = ChaCha20Poly1305(header_key)
        return cipher


def ad_prefix(associated_data: bytes) -> bytes:
    """Return ``AD'``: the length-prefixed associated data."""
    return len(associated_data).to_bytes(4, "big") + associated_data


def kdf_rk(root_key: bytes, dh_output: bytes) -> tuple[bytes, bytes, bytes]:
    """Return ``(root_key, chain_key, next_header_key)`` for one DH ratchet step."""
    out = hkdf_sha256(dh_output, salt=root_key, info=_ROOT_INFO, length=96)
    return out[:32], out[32:64], out[64:]


def kdf_ck(chain_key: bytes) -> tuple[bytes, bytes]:
    """Return ``(next_chain_key, message_key)`` for one symmetric ratchet step."""
    chain = HMAC(chain_key, _SHA256)
    message = chain.copy()  # keyed once, then two independent MACs
    chain.update(_CK_CHAIN)
    message.update(_CK_MESSAGE)
    return chain.finalize(), message.finalize()


def _message_cipher(message_key: bytes) -> tuple[ChaCha20Poly1305, bytes]:
    material = hkdf_sha256(
        message_key, salt=_ZERO_SALT, info=_MESSAGE_INFO, length=AEAD_KEY_SIZE + AEAD_NONCE_SIZE
    )
    return ChaCha20Poly1305(material[:AEAD_KEY_SIZE]), material[AEAD_KEY_SIZE:]


def seal_header(cipher: ChaCha20Poly1305, header: Header, ad_prime: bytes) -> bytes:
    """Encrypt ``header`` under a header-key AEAD with a fresh random nonce.

    Returns:
        ``version || nonce || enc_header``, the message prefix.
    """
    nonce = os.urandom(AEAD_NONCE_SIZE)
    sealed = cipher.encrypt(nonce, _HEADER.pack(*header), _VERSION_BYTE + ad_prime)
    return _VERSION_BYTE + nonce + sealed


def seal_body(message_key: bytes, plaintext: bytes, ad_prime: bytes, prefix: bytes) -> bytes:
    """Encrypt the message body, bound to ``AD'`` and the encrypted header."""
    cipher, nonce = _message_cipher(message_key)
    return cipher.encrypt(nonce, plaintext, ad_prime + prefix)


def parse_message(message: bytes) -> ParsedMessage:
    """Split ``message`` into its parts.

    Raises:
        DecryptionError: If it is too short or of an unknown version.
    """
    if len(message) < MESSAGE_OVERHEAD or message[0] != VERSION:
        raise DecryptionError
    return ParsedMessage(
        nonce=message[1 : 1 + AEAD_NONCE_SIZE],
        header_ct=message[1 + AEAD_NONCE_SIZE : _PREFIX_SIZE],
        prefix=message[:_PREFIX_SIZE],
        body=message[_PREFIX_SIZE:],
    )


def open_header(cipher: ChaCha20Poly1305, parsed: ParsedMessage, ad_prime: bytes) -> Header | None:
    """Decrypt the header under a header-key AEAD; ``None`` if it does not authenticate.

    Raises:
        DecryptionError: If it authenticates but is not a valid header.
    """
    try:
        plain = cipher.decrypt(parsed.nonce, parsed.header_ct, _VERSION_BYTE + ad_prime)
    except InvalidTag:
        return None
    header = Header._make(_HEADER.unpack(plain))
    if header.flags & ~_KNOWN_FLAGS:
        raise DecryptionError
    return header


def open_body(message_key: bytes, parsed: ParsedMessage, ad_prime: bytes) -> bytes:
    """Decrypt the message body.

    Raises:
        DecryptionError: If it does not authenticate.
    """
    cipher, nonce = _message_cipher(message_key)
    try:
        return cipher.decrypt(nonce, parsed.body, ad_prime + parsed.prefix)
    except InvalidTag:
        raise DecryptionError from None
