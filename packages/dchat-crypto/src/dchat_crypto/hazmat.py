"""Raw building blocks, for protocol implementers and test vectors.

Nothing here is needed for ordinary use, and everything here is easy to
misuse: fixed ephemeral keys destroy forward secrecy and, if reused, security
altogether; setting nonces by hand can repeat them. Prefer the top-level API
(:class:`dchat_crypto.HandshakeState`, :func:`dchat_crypto.seal`, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._noise_crypto import CIPHERS as CIPHERS
from ._noise_crypto import HASHES as HASHES
from ._noise_crypto import MAX_NONCE as MAX_NONCE
from ._noise_crypto import CipherFunctions as CipherFunctions
from ._noise_crypto import CipherState as CipherState
from ._noise_crypto import HashFunctions as HashFunctions
from ._noise_crypto import SymmetricState as SymmetricState
from ._noise_handshake import HandshakeState
from ._noise_patterns import NoiseProtocol as NoiseProtocol
from ._noise_patterns import parse_protocol_name as parse_protocol_name
from ._primitives import aesgcm_decrypt as aesgcm_decrypt
from ._primitives import aesgcm_encrypt as aesgcm_encrypt
from ._primitives import chacha20poly1305_decrypt as chacha20poly1305_decrypt
from ._primitives import chacha20poly1305_encrypt as chacha20poly1305_encrypt
from ._primitives import hkdf_sha256 as hkdf_sha256

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._keys import PrivateKey, PublicKey

__all__ = (
    "CIPHERS",
    "HASHES",
    "MAX_NONCE",
    "CipherFunctions",
    "CipherState",
    "HashFunctions",
    "NoiseProtocol",
    "SymmetricState",
    "aesgcm_decrypt",
    "aesgcm_encrypt",
    "chacha20poly1305_decrypt",
    "chacha20poly1305_encrypt",
    "handshake_with_ephemeral",
    "hkdf_sha256",
    "parse_protocol_name",
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
) -> HandshakeState:
    """Build a :class:`HandshakeState` whose ephemeral key is ``ephemeral``.

    Only for known-answer tests: a fixed ephemeral key must never be used twice.
    Arguments are as for :class:`HandshakeState`.
    """
    state = HandshakeState(
        protocol,
        initiator=initiator,
        prologue=prologue,
        static=static,
        remote_static=remote_static,
        psks=psks,
    )
    state._fixed_ephemeral = ephemeral  # hazmat is the sanctioned back door
    return state
