"""Raw building blocks, for protocol implementers and test vectors.

Nothing here is needed for ordinary use, and everything here is easy to
misuse: fixed ephemeral keys destroy forward secrecy and, if reused, security
altogether; setting nonces by hand can repeat them. Prefer the top-level API
(:class:`dchat_crypto.HandshakeState`, :func:`dchat_crypto.seal`, ...).

It also holds what only protocol implementers and their tests need from the
higher layers: the Noise transport and the specific errors beneath the
everyday ones (each a subclass of an error :mod:`dchat_crypto` exports, so
catching the everyday class still works), HKDF, and the BLS aggregate and
proof-of-possession checks, a ChaCha20-Poly1305 key set up once for many
values (:class:`ChaCha20Poly1305Key`; the storage sealer's subkeys), and the
chunked file cipher that attachments are sealed with (``dchat_messaging``
wraps it; a file key must seal one file only),
the Ed25519 scalar keys and group steps of stealth addresses
(:class:`ScalarSigningKey`, ``ed25519_*``; ``dchat_chain`` builds them),
and broadcast channels' signed records (:class:`ChannelDescriptor`,
:class:`ChannelPost`, :func:`topic_of`), which relays check and
``dchat_messaging`` builds.
"""

from __future__ import annotations

import typing

from ._channel_posts import MAX_POST_BODY as MAX_POST_BODY
from ._channel_posts import ChannelDescriptor as ChannelDescriptor
from ._channel_posts import ChannelPost as ChannelPost
from ._channel_posts import topic_of as topic_of
from ._errors import ChannelRecordError as ChannelRecordError
from ._noise_crypto import CIPHERS as CIPHERS
from ._noise_crypto import HASHES as HASHES
from ._noise_crypto import MAX_NONCE as MAX_NONCE
from ._noise_crypto import CipherFunctions as CipherFunctions
from ._noise_crypto import CipherState as CipherState
from ._noise_crypto import HashFunctions as HashFunctions
from ._noise_crypto import SymmetricState as SymmetricState
from ._noise_handshake import HandshakeState as _HandshakeState
from ._noise_patterns import NoiseProtocol as NoiseProtocol
from ._noise_patterns import parse_protocol_name as parse_protocol_name
from ._primitives import ChaCha20Poly1305Key as ChaCha20Poly1305Key
from ._primitives import aesgcm_decrypt as aesgcm_decrypt
from ._primitives import aesgcm_encrypt as aesgcm_encrypt
from ._primitives import chacha20poly1305_decrypt as chacha20poly1305_decrypt
from ._primitives import chacha20poly1305_encrypt as chacha20poly1305_encrypt
from ._primitives import hkdf_sha256 as hkdf_sha256

if typing.TYPE_CHECKING:
    from collections.abc import Sequence

    from ._keys import PrivateKey, PublicKey

from ._bls import bls_aggregate_verify as bls_aggregate_verify
from ._bls import bls_fast_aggregate_verify as bls_fast_aggregate_verify
from ._bls import bls_verify_possession as bls_verify_possession
from ._bls_errors import BlsEncodingError as BlsEncodingError
from ._bls_errors import BlsSecretKeyError as BlsSecretKeyError
from ._bls_errors import BlsUsageError as BlsUsageError
from ._errors import FileSizeError as FileSizeError
from ._errors import MessageTooLargeError as MessageTooLargeError
from ._errors import NoiseHandshakeError as NoiseHandshakeError
from ._errors import NoiseProtocolNameError as NoiseProtocolNameError
from ._errors import NoiseStateError as NoiseStateError
from ._errors import NonceExhaustedError as NonceExhaustedError
from ._file_cipher import FILE_CHUNK as FILE_CHUNK
from ._file_cipher import SEALED_CHUNK as SEALED_CHUNK
from ._file_cipher import FileDecryptor as FileDecryptor
from ._file_cipher import FileEncryptor as FileEncryptor
from ._file_cipher import FileKey as FileKey
from ._file_cipher import open_file_chunks as open_file_chunks
from ._file_cipher import padded_size as padded_size
from ._file_cipher import seal_file_chunks as seal_file_chunks
from ._file_cipher import sealed_size as sealed_size
from ._noise_transport import NoiseTransport as NoiseTransport
from ._ratchet_types import RatchetArgumentError as RatchetArgumentError
from ._ratchet_types import RatchetFormatError as RatchetFormatError
from ._ratchet_types import RatchetStateError as RatchetStateError
from ._scalar_keys import ScalarSigningKey as ScalarSigningKey
from ._scalar_keys import ed25519_add as ed25519_add
from ._scalar_keys import ed25519_base_mul as ed25519_base_mul
from ._scalar_keys import ed25519_mul as ed25519_mul
from ._scalar_keys import ed25519_point_ok as ed25519_point_ok
from ._scalar_keys import ed25519_scalar_from_hash as ed25519_scalar_from_hash
from ._session_errors import InvalidBundleError as InvalidBundleError
from ._session_errors import InvalidPrekeyStateError as InvalidPrekeyStateError
from ._session_errors import InvalidSessionInitError as InvalidSessionInitError
from ._session_errors import PrekeyArgumentError as PrekeyArgumentError
from ._session_errors import PrekeyReusedError as PrekeyReusedError
from ._xwing import InvalidCiphertextError as InvalidCiphertextError

__all__ = (
    "BlsEncodingError",
    "BlsSecretKeyError",
    "BlsUsageError",
    "CIPHERS",
    "ChaCha20Poly1305Key",
    "ChannelDescriptor",
    "ChannelPost",
    "ChannelRecordError",
    "CipherFunctions",
    "CipherState",
    "FILE_CHUNK",
    "FileDecryptor",
    "FileEncryptor",
    "FileKey",
    "FileSizeError",
    "HASHES",
    "HashFunctions",
    "InvalidBundleError",
    "InvalidCiphertextError",
    "InvalidPrekeyStateError",
    "InvalidSessionInitError",
    "MAX_NONCE",
    "MAX_POST_BODY",
    "MessageTooLargeError",
    "NoiseHandshakeError",
    "NoiseProtocol",
    "NoiseProtocolNameError",
    "NoiseStateError",
    "NoiseTransport",
    "NonceExhaustedError",
    "PrekeyArgumentError",
    "PrekeyReusedError",
    "RatchetArgumentError",
    "RatchetFormatError",
    "RatchetStateError",
    "SEALED_CHUNK",
    "ScalarSigningKey",
    "SymmetricState",
    "aesgcm_decrypt",
    "aesgcm_encrypt",
    "bls_aggregate_verify",
    "bls_fast_aggregate_verify",
    "bls_verify_possession",
    "chacha20poly1305_decrypt",
    "chacha20poly1305_encrypt",
    "ed25519_add",
    "ed25519_base_mul",
    "ed25519_mul",
    "ed25519_point_ok",
    "ed25519_scalar_from_hash",
    "handshake_with_ephemeral",
    "hkdf_sha256",
    "open_file_chunks",
    "padded_size",
    "parse_protocol_name",
    "seal_file_chunks",
    "sealed_size",
    "topic_of",
)


def handshake_with_ephemeral(
    protocol: str,
    *,
    initiator: bool,
    ephemeral: PrivateKey,
    prologue: bytes = b"",
    static: PrivateKey | None = None,
    remote_static: PublicKey | None = None,
    psks: Sequence[bytes] = (),
) -> _HandshakeState:
    """Build a :class:`HandshakeState` whose ephemeral key is ``ephemeral``.

    Only for known-answer tests: a fixed ephemeral key must never be used twice.
    Arguments are as for :class:`HandshakeState`.
    """
    state = _HandshakeState(
        protocol,
        initiator=initiator,
        prologue=prologue,
        static=static,
        remote_static=remote_static,
        psks=psks,
    )
    state._fixed_ephemeral = ephemeral  # hazmat is the sanctioned back door
    return state
