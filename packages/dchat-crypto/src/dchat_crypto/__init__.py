"""dchat-crypto: typed keys, signatures, sealed boxes, passphrase keystores and Noise.

Raw building blocks (CipherState, fixed-ephemeral handshakes, AEAD wrappers)
live in the separate :mod:`dchat_crypto.hazmat` module.
"""

from __future__ import annotations

from ._bls import BlsPublicKey as BlsPublicKey
from ._bls import BlsSecretKey as BlsSecretKey
from ._bls import BlsSignature as BlsSignature
from ._bls import bls_aggregate as bls_aggregate
from ._bls import bls_verify as bls_verify
from ._bls_errors import BlsError as BlsError
from ._errors import BadSignatureError as BadSignatureError
from ._errors import DchatCryptoError as DchatCryptoError
from ._errors import DecryptionError as DecryptionError
from ._errors import InvalidKeyError as InvalidKeyError
from ._errors import KeystoreFormatError as KeystoreFormatError
from ._errors import NoiseError as NoiseError
from ._keys import PrivateKey as PrivateKey
from ._keys import PublicKey as PublicKey
from ._keys import SigningKey as SigningKey
from ._keys import VerifyKey as VerifyKey
from ._keystore import KdfParams as KdfParams
from ._keystore import decrypt_with_passphrase as decrypt_with_passphrase
from ._keystore import encrypt_with_passphrase as encrypt_with_passphrase
from ._noise_handshake import HandshakeState as HandshakeState
from ._prekey_secrets import PrekeySecrets as PrekeySecrets
from ._prekeys import PrekeyBundle as PrekeyBundle
from ._primitives import constant_time_equal as constant_time_equal
from ._ratchet import RatchetSession as RatchetSession
from ._ratchet_types import RatchetError as RatchetError
from ._ratchet_types import RatchetPolicy as RatchetPolicy
from ._ratchet_types import SessionSecrets as SessionSecrets
from ._sealed import open_sealed as open_sealed
from ._sealed import seal as seal
from ._session_errors import SessionSetupError as SessionSetupError
from ._session_init import SessionInit as SessionInit
from ._session_setup import accept_session as accept_session
from ._session_setup import initiate_session as initiate_session
from ._xwing import XWingPrivateKey as XWingPrivateKey
from ._xwing import XWingPublicKey as XWingPublicKey

__all__ = (
    "BadSignatureError",
    "BlsError",
    "BlsPublicKey",
    "BlsSecretKey",
    "BlsSignature",
    "DchatCryptoError",
    "DecryptionError",
    "HandshakeState",
    "InvalidKeyError",
    "KdfParams",
    "KeystoreFormatError",
    "NoiseError",
    "PrekeyBundle",
    "PrekeySecrets",
    "PrivateKey",
    "PublicKey",
    "RatchetError",
    "RatchetPolicy",
    "RatchetSession",
    "SessionInit",
    "SessionSecrets",
    "SessionSetupError",
    "SigningKey",
    "VerifyKey",
    "XWingPrivateKey",
    "XWingPublicKey",
    "accept_session",
    "bls_aggregate",
    "bls_verify",
    "constant_time_equal",
    "decrypt_with_passphrase",
    "encrypt_with_passphrase",
    "initiate_session",
    "open_sealed",
    "seal",
)
