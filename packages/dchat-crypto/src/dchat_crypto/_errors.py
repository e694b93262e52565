"""Errors raised by :mod:`dchat_crypto`.

Every error derives from :class:`DchatCryptoError` and from one *kind* root of
:mod:`dchat_core` saying whose fault it is::

    DchatError
    └── DchatCryptoError
        ├── DecryptionError(PeerError)              any failed authentication/decryption (opaque)
        ├── BadSignatureError(PeerError)            a signature did not verify (opaque)
        ├── ChannelRecordError(PeerError, ValueError)  a channel record malformed or forged
        ├── InvalidKeyError(CallerError, ValueError)  bad key length/format, low-order X25519 point
        ├── KeystoreFormatError(PeerError, ValueError)  passphrase blob structurally malformed
        ├── FileSizeError(CallerError, ValueError)  a file to seal: more/fewer bytes than declared
        └── NoiseError
            ├── NoiseHandshakeError(PeerError)      malformed, short or unauthentic message
            ├── NoiseStateError(CallerError)        API misuse: wrong turn, split too early, ...
            ├── NoiseProtocolNameError(CallerError, ValueError)  unsupported Noise protocol name
            ├── MessageTooLargeError(CallerError, ValueError)    over the 65535-byte Noise limit
            └── NonceExhaustedError                 the 2**64-1 nonce was reached; rekey impossible

Authentication failures never say which check failed: the message of
:class:`DecryptionError` is always ``"decryption failed"``, so an attacker
learns nothing from it (cf. ``cryptography.fernet.InvalidToken``).
"""

from __future__ import annotations

from dchat_core import CallerError, DchatError, PeerError

__all__ = (
    "BadSignatureError",
    "ChannelRecordError",
    "DchatCryptoError",
    "DecryptionError",
    "FileSizeError",
    "InvalidKeyError",
    "KeystoreFormatError",
    "MessageTooLargeError",
    "NoiseError",
    "NoiseHandshakeError",
    "NoiseProtocolNameError",
    "NoiseStateError",
    "NonceExhaustedError",
)


class DchatCryptoError(DchatError):
    """Root of the errors raised by :mod:`dchat_crypto`."""


class DecryptionError(DchatCryptoError, PeerError):
    """Authentication or decryption failed; deliberately says nothing more."""

    def __init__(self) -> None:
        super().__init__("decryption failed")


class BadSignatureError(DchatCryptoError, PeerError):
    """A signature did not verify; deliberately says nothing more."""

    def __init__(self) -> None:
        super().__init__("bad signature")


class ChannelRecordError(DchatCryptoError, PeerError, ValueError):
    """A broadcast channel's descriptor or post is malformed, out of range or badly signed."""


class InvalidKeyError(DchatCryptoError, CallerError, ValueError):
    """A key has the wrong length or format, or an X25519 exchange gave all zeros."""


class KeystoreFormatError(DchatCryptoError, PeerError, ValueError):
    """A passphrase-encrypted blob is structurally malformed (not an auth failure)."""


class NoiseError(DchatCryptoError):
    """Root of the Noise protocol errors."""


class NoiseHandshakeError(NoiseError, PeerError):
    """A handshake message was malformed, too short or failed authentication."""


class NoiseStateError(NoiseError, CallerError):
    """A Noise object was used in the wrong state (wrong turn, split too early, ...)."""


class NoiseProtocolNameError(NoiseError, CallerError, ValueError):
    """The Noise protocol name is malformed or names an unsupported algorithm/pattern."""


class MessageTooLargeError(NoiseError, CallerError, ValueError):
    """A message or payload exceeds the 65535-byte Noise message limit."""


class NonceExhaustedError(NoiseError):
    """The cipher state's nonce reached 2**64-1 (reserved); the session must end."""


class FileSizeError(DchatCryptoError, CallerError, ValueError):
    """A file to seal is out of range, or got more or fewer bytes than declared."""
