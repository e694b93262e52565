"""Noise ``HandshakeState`` (spec section 5.3), sans-IO.

Theory of operation: the state walks through the pattern's message list; it
is our turn to write when the message index has our parity (initiator: even),
and for one-way patterns the initiator writes the single message. Each
``write_message``/``read_message`` processes one message's tokens on a *copy*
of the symmetric state and key slots, and commits the copy only when the whole
message succeeded. A malformed or forged message therefore raises
:class:`NoiseHandshakeError` and leaves the handshake exactly as it was, so
a later genuine message still completes it. After the last message,
``split()`` yields the :class:`NoiseTransport` (once).

Speed: the X25519 operations are the floor of a handshake's cost, so nothing
else may do one needlessly. A fresh ephemeral key is generated once and kept as
the ``cryptography`` object that computed its public key (wrapping it in
:class:`PrivateKey` would import the private bytes again, a second scalar
multiplication); our static public key is computed once per handshake; the
per-pattern bookkeeping is parsed once per protocol name.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ._errors import (
    DecryptionError,
    InvalidKeyError,
    MessageTooLargeError,
    NoiseHandshakeError,
    NoiseStateError,
)
from ._keys import PrivateKey, PublicKey
from ._noise_crypto import SymmetricState
from ._noise_patterns import parse_protocol_name
from ._noise_transport import NoiseTransport
from ._primitives import constant_time_equal

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("HandshakeState",)

_MAX_MESSAGE = 65535
_DHLEN = 32
_PSK_SIZE = 32
_TAG_SIZE = 16


class _Ephemeral:
    """A freshly generated X25519 key: computed once, public half kept alongside."""

    __slots__ = ("_key", "public")

    def __init__(self) -> None:
        self._key = X25519PrivateKey.generate()
        self.public = self._key.public_key().public_bytes_raw()

    def exchange(self, peer: PublicKey) -> bytes:
        """X25519 with ``peer``, with the checks of :meth:`PrivateKey.exchange`."""
        try:
            shared = self._key.exchange(X25519PublicKey.from_public_bytes(peer.to_bytes()))
        except ValueError:
            raise InvalidKeyError("X25519 with a low-order point") from None
        if constant_time_equal(shared, _ZERO_DH):
            raise InvalidKeyError("X25519 with a low-order point")
        return shared


class _Fixed:
    """A caller-supplied ephemeral (hazmat, known-answer tests, session setup)."""

    __slots__ = ("exchange", "public")

    def __init__(self, key: PrivateKey) -> None:
        self.public = key.public_key.to_bytes()
        self.exchange = key.exchange


_Local = PrivateKey | _Ephemeral | _Fixed
_ZERO_DH = bytes(_DHLEN)


class _Slots:
    """The key variables ``s, e, rs, re`` plus the next PSK index.

    Mutable, but only ever changed on a copy that is committed whole (see the
    module docstring), exactly like the SymmetricState beside it.
    """

    __slots__ = ("e", "psk_index", "re", "rs", "s")

    def __init__(
        self,
        s: PrivateKey | None,
        e: _Ephemeral | _Fixed | None,
        rs: PublicKey | None,
        re: PublicKey | None,
        psk_index: int = 0,
    ) -> None:
        self.s, self.e, self.rs, self.re, self.psk_index = s, e, rs, re, psk_index

    def copy(self) -> _Slots:
        return _Slots(self.s, self.e, self.rs, self.re, self.psk_index)


class HandshakeState:
    """One side of a Noise handshake.

    Args:
        protocol: Full Noise protocol name, e.g. ``"Noise_XX_25519_ChaChaPoly_BLAKE2s"``.
        initiator: Whether this side sends the first message.
        prologue: Data both sides must agree on; mixed into the handshake hash.
        static: Our static X25519 key, if the pattern uses one.
        remote_static: The peer's static key, if known in advance (``K``/``I``
            patterns' pre-messages, e.g. the responder key in ``NK``/``IK``).
        psks: 32-byte pre-shared keys, in the order the pattern's psk tokens use them.

    Raises:
        NoiseProtocolNameError: If the protocol name is unsupported.
        NoiseStateError: If a key or PSK the pattern needs is missing or extra.
        InvalidKeyError: If a PSK is not 32 bytes.
    """

    def __init__(
        self,
        protocol: str,
        *,
        initiator: bool,
        prologue: bytes = b"",
        static: PrivateKey | None = None,
        remote_static: PublicKey | None = None,
        psks: Sequence[bytes] = (),
    ) -> None:
        self._protocol = parse_protocol_name(protocol)
        self._initiator = initiator
        self._psks = tuple(bytes(psk) for psk in psks)
        self._check_psks()
        self._slots = _Slots(s=static, e=None, rs=remote_static, re=None)
        self._check_keys()
        self._fixed_ephemeral: PrivateKey | None = None
        # Computed once: the pre-message and the "s" token both need it.
        self._s_public = None if static is None else static.public_key.to_bytes()
        self._ss = SymmetricState(
            protocol.encode("ascii"), self._protocol.cipher, self._protocol.hash
        )
        self._ss.mix_hash(bytes(prologue))
        self._mix_pre_messages()
        self._index = 0
        self._split_done = False

    # -- construction helpers ---------------------------------------------------

    def _check_psks(self) -> None:
        if len(self._psks) != self._protocol.psk_count:
            raise NoiseStateError(
                f"{self._protocol.pattern} needs {self._protocol.psk_count} PSKs, "
                f"got {len(self._psks)}"
            )
        if any(len(psk) != _PSK_SIZE for psk in self._psks):
            raise InvalidKeyError(f"Noise PSKs must be {_PSK_SIZE} bytes")

    def _check_keys(self) -> None:
        proto = self._protocol
        if ("s" in _our_tokens(proto.name, self._initiator)) != (self._slots.s is not None):
            raise NoiseStateError(f"{proto.pattern} {self._role} static key presence is wrong")
        their_pre = proto.pre_responder if self._initiator else proto.pre_initiator
        if "s" in their_pre and self._slots.rs is None:
            raise NoiseStateError(f"{proto.pattern} {self._role} needs the remote static key")
        if "s" not in their_pre and self._slots.rs is not None:
            raise NoiseStateError(f"{proto.pattern} does not take a pre-known remote key")

    @property
    def _role(self) -> str:
        return "initiator" if self._initiator else "responder"

    def _mix_pre_messages(self) -> None:
        # Initiator's pre-message keys first, then the responder's (spec 7.1).
        for owner_is_initiator, tokens in (
            (True, self._protocol.pre_initiator),
            (False, self._protocol.pre_responder),
        ):
            for _op in tokens:  # only "s" occurs in supported patterns
                if owner_is_initiator == self._initiator:
                    assert self._s_public is not None  # guaranteed by _check_keys
                    self._ss.mix_hash(self._s_public)
                else:
                    assert self._slots.rs is not None
                    self._ss.mix_hash(self._slots.rs.to_bytes())

    # -- public state -------------------------------------------------------------

    @property
    def protocol_name(self) -> str:
        """The full Noise protocol name."""
        return self._protocol.name

    @property
    def is_initiator(self) -> bool:
        """Whether this side is the initiator."""
        return self._initiator

    @property
    def is_complete(self) -> bool:
        """Whether every handshake message has been written or read."""
        return self._index >= len(self._protocol.messages)

    @property
    def is_my_turn(self) -> bool:
        """Whether the next handshake message is ours to write."""
        if self.is_complete:
            return False
        return (self._index % 2 == 0) == self._initiator

    @property
    def handshake_hash(self) -> bytes:
        """The handshake hash ``h``; final (channel binding) once complete."""
        return self._ss.h

    @property
    def remote_static(self) -> PublicKey | None:
        """The peer's static key, once known (pre-shared or received)."""
        return self._slots.rs

    # -- messages -------------------------------------------------------------------

    def write_message(self, payload: bytes = b"") -> bytes:
        """Write the next handshake message carrying ``payload``.

        Raises:
            NoiseStateError: If it is not our turn or the handshake is complete.
            MessageTooLargeError: If the message would exceed 65535 bytes.
        """
        if not self.is_my_turn:
            raise NoiseStateError("not our turn to write a handshake message")
        ss, slots = self._ss.copy(), self._slots.copy()
        out = bytearray()
        for op in self._protocol.messages[self._index]:
            self._write_token(op, ss, slots, out)
        out += ss.encrypt_and_hash(bytes(payload))
        if len(out) > _MAX_MESSAGE:
            raise MessageTooLargeError(f"handshake message exceeds {_MAX_MESSAGE} bytes")
        self._commit(ss, slots)
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        """Read the peer's next handshake message and return its payload.

        On any failure the state is unchanged.

        Raises:
            NoiseStateError: If it is our turn to write or the handshake is complete.
            NoiseHandshakeError: If the message is malformed, oversized or unauthentic.
        """
        if self.is_complete or self.is_my_turn:
            raise NoiseStateError("not expecting a handshake message now")
        message = bytes(message)
        if len(message) > _MAX_MESSAGE:
            raise NoiseHandshakeError("handshake message too large")
        ss, slots = self._ss.copy(), self._slots.copy()
        try:
            rest = message
            for op in self._protocol.messages[self._index]:
                rest = self._read_token(op, ss, slots, rest)
            payload = ss.decrypt_and_hash(rest)
        except (DecryptionError, InvalidKeyError):
            raise NoiseHandshakeError("handshake message rejected") from None
        self._commit(ss, slots)
        return payload

    def _commit(self, ss: SymmetricState, slots: _Slots) -> None:
        self._ss, self._slots = ss, slots
        self._index += 1

    def split(self) -> NoiseTransport:
        """Derive the transport CipherStates; callable once, after completion.

        Raises:
            NoiseStateError: If the handshake is not complete or was already split.
        """
        if not self.is_complete:
            raise NoiseStateError("handshake is not complete")
        if self._split_done:
            raise NoiseStateError("handshake was already split")
        self._split_done = True
        c1, c2 = self._ss.split()
        if self._protocol.one_way:
            send, recv = (c1, None) if self._initiator else (None, c1)
        else:
            send, recv = (c1, c2) if self._initiator else (c2, c1)
        return NoiseTransport(send, recv, self._ss.h)

    # -- tokens -----------------------------------------------------------------------

    def _has_psk(self) -> bool:
        return bool(self._psks)  # _check_psks made their number the pattern's psk count

    def _new_ephemeral(self) -> _Ephemeral | _Fixed:
        if self._fixed_ephemeral is not None:
            return _Fixed(self._fixed_ephemeral)
        return _Ephemeral()

    def _write_token(self, op: str, ss: SymmetricState, slots: _Slots, out: bytearray) -> None:
        if op == "e":
            e = slots.e = self._new_ephemeral()
            out += e.public
            ss.mix_hash(e.public)
            if self._has_psk():
                ss.mix_key(e.public)
        elif op == "s":
            assert self._s_public is not None  # guaranteed by _check_keys
            out += ss.encrypt_and_hash(self._s_public)
        else:
            self._mix_token(op, ss, slots)

    def _read_token(self, op: str, ss: SymmetricState, slots: _Slots, data: bytes) -> bytes:
        if op == "e":
            _need(data, _DHLEN)
            re = data[:_DHLEN]
            ss.mix_hash(re)
            if self._has_psk():
                ss.mix_key(re)
            slots.re = PublicKey(re)
            return data[_DHLEN:]
        if op == "s":
            size = _DHLEN + (_TAG_SIZE if ss.has_key() else 0)
            _need(data, size)
            slots.rs = PublicKey(ss.decrypt_and_hash(data[:size]))
            return data[size:]
        self._mix_token(op, ss, slots)
        return data

    def _mix_token(self, op: str, ss: SymmetricState, slots: _Slots) -> None:
        if op == "psk":
            ss.mix_key_and_hash(self._psks[slots.psk_index])
            slots.psk_index += 1
        else:
            ss.mix_key(_dh(op, slots, initiator=self._initiator))


@lru_cache(maxsize=64)
def _our_tokens(protocol: str, initiator: bool) -> frozenset[str]:
    """Every token this side sends, pre-messages included (fixed per protocol name)."""
    proto, parity = parse_protocol_name(protocol), 0 if initiator else 1
    pre = proto.pre_initiator if initiator else proto.pre_responder
    sent = [t for i, m in enumerate(proto.messages) if i % 2 == parity for t in m]
    return frozenset(pre) | frozenset(sent)


def _need(data: bytes, size: int) -> None:
    if len(data) < size:
        raise NoiseHandshakeError("handshake message too short")


def _dh(op: str, slots: _Slots, *, initiator: bool) -> bytes:
    """Compute ``ee``/``es``/``se``/``ss`` from this side's point of view (spec 5.3)."""
    first, second = op[0], op[1]
    # The initiator's key is the first letter's; the responder swaps the roles.
    ours = first if initiator else second
    theirs = second if initiator else first
    local: _Local | None = slots.e if ours == "e" else slots.s
    remote = slots.re if theirs == "e" else slots.rs
    assert local is not None
    assert remote is not None
    return local.exchange(remote)
