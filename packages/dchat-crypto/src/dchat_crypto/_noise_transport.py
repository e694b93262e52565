"""Noise transport: the pair of CipherStates produced by ``Split``.

After a handshake, each side holds one CipherState for sending and one for
receiving. Nonces count messages; the 2**64-1 nonce is reserved, so reaching it
raises :class:`NonceExhaustedError` and the session must be replaced. Failed
decryptions leave the receive nonce where it was, so a forged or corrupted
message cannot desynchronise the session.

For the one-way patterns (``N``, ``K``, ``X``) only the initiator sends: its
transport has no receiving state and the responder's none for sending; using
the missing direction raises :class:`NoiseStateError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ._errors import DecryptionError, MessageTooLargeError, NoiseStateError

if TYPE_CHECKING:
    from ._noise_crypto import CipherState

__all__ = ("NoiseTransport",)

_TAG_SIZE = 16


class NoiseTransport:
    """Encrypts and decrypts transport messages of a completed Noise session."""

    MAX_MESSAGE: ClassVar[int] = 65535
    """Largest Noise message, ciphertext and tag included."""
    MAX_PLAINTEXT: ClassVar[int] = 65535 - _TAG_SIZE
    """Largest plaintext that fits in one message."""

    __slots__ = ("_handshake_hash", "_recv", "_send")

    def __init__(
        self, send: CipherState | None, recv: CipherState | None, handshake_hash: bytes
    ) -> None:
        """Wrap split CipherStates; normally obtained from ``HandshakeState.split()``."""
        self._send = send
        self._recv = recv
        self._handshake_hash = handshake_hash

    @property
    def handshake_hash(self) -> bytes:
        """The final handshake hash, usable for channel binding."""
        return self._handshake_hash

    @property
    def send_cipher(self) -> CipherState | None:
        """The sending CipherState (hazmat-level access, e.g. to inspect the nonce)."""
        return self._send

    @property
    def recv_cipher(self) -> CipherState | None:
        """The receiving CipherState (hazmat-level access)."""
        return self._recv

    def _sender(self) -> CipherState:
        if self._send is None:
            raise NoiseStateError("this side of a one-way Noise pattern cannot send")
        return self._send

    def _receiver(self) -> CipherState:
        if self._recv is None:
            raise NoiseStateError("this side of a one-way Noise pattern cannot receive")
        return self._recv

    def encrypt(self, plaintext: bytes, ad: bytes = b"") -> bytes:
        """Encrypt one transport message.

        Args:
            plaintext: At most :attr:`MAX_PLAINTEXT` bytes.
            ad: Associated data, authenticated but not sent.

        Returns:
            The ciphertext (plaintext length + 16).

        Raises:
            MessageTooLargeError: If the plaintext is too large.
            NonceExhaustedError: If the send nonce space is used up.
            NoiseStateError: If this side cannot send (one-way responder).
        """
        if len(plaintext) > self.MAX_PLAINTEXT:
            raise MessageTooLargeError(f"plaintext exceeds {self.MAX_PLAINTEXT} bytes")
        return self._sender().encrypt_with_ad(ad, plaintext)

    def decrypt(self, ciphertext: bytes, ad: bytes = b"") -> bytes:
        """Decrypt the next transport message; the nonce advances only on success.

        Raises:
            DecryptionError: If the message is oversized, truncated or unauthentic.
            NonceExhaustedError: If the receive nonce space is used up.
            NoiseStateError: If this side cannot receive (one-way initiator).
        """
        receiver = self._receiver()
        if not _TAG_SIZE <= len(ciphertext) <= self.MAX_MESSAGE:
            raise DecryptionError
        return receiver.decrypt_with_ad(ad, bytes(ciphertext))

    def rekey_send(self) -> None:
        """Apply ``REKEY`` to the sending key (both sides must agree when)."""
        self._sender().rekey()

    def rekey_recv(self) -> None:
        """Apply ``REKEY`` to the receiving key."""
        self._receiver().rekey()
