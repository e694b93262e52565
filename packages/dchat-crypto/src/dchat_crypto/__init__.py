"""dchat-crypto: typed keys, signatures, sealed boxes, passphrase keystores and Noise.

Raw building blocks (CipherState, fixed-ephemeral handshakes, AEAD wrappers)
live in the separate :mod:`dchat_crypto.hazmat` module.
"""

from __future__ import annotations

from ._errors import BadSignatureError as BadSignatureError
from ._errors import DchatCryptoError as DchatCryptoError
from ._errors import DecryptionError as DecryptionError
from ._errors import InvalidKeyError as InvalidKeyError
from ._errors import KeystoreFormatError as KeystoreFormatError
from ._errors import MessageTooLargeError as MessageTooLargeError
from ._errors import NoiseError as NoiseError
from ._errors import NoiseHandshakeError as NoiseHandshakeError
from ._errors import NoiseProtocolNameError as NoiseProtocolNameError
from ._errors import NoiseStateError as NoiseStateError
from ._errors import NonceExhaustedError as NonceExhaustedError
from ._keys import PrivateKey as PrivateKey
from ._keys import PublicKey as PublicKey
from ._keys import SigningKey as SigningKey
from ._keys import VerifyKey as VerifyKey
from ._keystore import KdfParams as KdfParams
from ._keystore import decrypt_with_passphrase as decrypt_with_passphrase
from ._keystore import encrypt_with_passphrase as encrypt_with_passphrase
from ._noise_handshake import HandshakeState as HandshakeState
from ._noise_transport import NoiseTransport as NoiseTransport
from ._primitives import constant_time_equal as constant_time_equal
from ._primitives import hkdf_sha256 as hkdf_sha256
from ._sealed import open_sealed as open_sealed
from ._sealed import seal as seal

__all__ = (
    "BadSignatureError",
    "DchatCryptoError",
    "DecryptionError",
    "HandshakeState",
    "InvalidKeyError",
    "KdfParams",
    "KeystoreFormatError",
    "MessageTooLargeError",
    "NoiseError",
    "NoiseHandshakeError",
    "NoiseProtocolNameError",
    "NoiseStateError",
    "NoiseTransport",
    "NonceExhaustedError",
    "PrivateKey",
    "PublicKey",
    "SigningKey",
    "VerifyKey",
    "constant_time_equal",
    "decrypt_with_passphrase",
    "encrypt_with_passphrase",
    "hkdf_sha256",
    "open_sealed",
    "seal",
)
