"""The link protocol between two nodes, as a sans-IO state machine.

Theory of operation
-------------------
A link is ``Noise_XX_25519_ChaChaPoly_BLAKE2s`` with prologue ``b"dchat-link-v1"``
over a byte stream. Every Noise message travels as a 2-byte big-endian length
followed by the message, as the Noise specification suggests.

Identity binding: each side's Noise static key is fresh or long-lived, but it is
*bound* to the side's Ed25519 node key by a signature in its handshake payload::

    payload = canonical({"v": 1, "key": ed25519_public(32),
                         "sig": Ed25519(b"dchat-link-static-v1\\x00" || noise_static_public)})

The responder sends its proof in message 2, the initiator in message 3; message 1
carries an empty payload. A proof that does not verify, or a key other than the
one the dialer expected, ends the link with :class:`HandshakeFailedError`.

A listener over a connection cap may *refuse* a connection instead of
answering message 1: it sends one frame shorter than any message 2 could be
(:data:`_REFUSAL_MAX` < 96 bytes: an ephemeral key, an encrypted static key and
an authentication tag) holding ``canonical({"busy": reason, "retry": ms})``,
and closes. The dialer raises :class:`RelayBusyError` with that reason and
wait; the listener has done no public-key work for it. The frame is not
authenticated (no keys are agreed yet): someone on the path could forge one,
as they could cut the connection; a dialer only waits and tries again.

After the handshake the plaintext of the transport messages is one byte stream
that carries application messages, each a 4-byte big-endian length and that many
bytes, at most ``max_message`` bytes. Messages larger than a Noise message are
split over several.

States::

    HANDSHAKE --(3rd message done)--> OPEN --(EOF or close())--> CLOSED
        \\--------------(any protocol error)------------------> ERROR

Any error is terminal: the object refuses further input and output.

Both framing layers (u16 Noise frames in the byte stream, u32 messages in the
plaintext stream) are cut by :class:`_Records`, which slices whole records
straight out of the bytes it is given and buffers only an incomplete tail, so a
read holding many small messages costs one slice per message, while input
dribbled in byte by byte is still copied only a bounded number of times.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from dataclasses import dataclass
from typing import Final

from dchat_core import (
    DchatError,
    DecodeError,
    DecodeLimits,
    Fields,
    NodeId,
    canonical_decode,
    canonical_encode,
)
from dchat_crypto import (
    BadSignatureError,
    DecryptionError,
    HandshakeState,
    InvalidKeyError,
    NoiseError,
    PrivateKey,
    SigningKey,
    VerifyKey,
)
from dchat_crypto.hazmat import NoiseTransport

from ._errors import (
    FrameTooLargeError,
    HandshakeFailedError,
    LinkProtocolError,
    LinkStateError,
    RelayBusyError,
)

__all__ = (
    "DEFAULT_MAX_MESSAGE",
    "HandshakeComplete",
    "LinkClosed",
    "LinkConnection",
    "LinkEvent",
    "LinkState",
    "MessageReceived",
    "link_proof",
    "refusal_frame",
)

PROTOCOL_NAME: Final = "Noise_XX_25519_ChaChaPoly_BLAKE2s"
PROLOGUE: Final = b"dchat-link-v1"
DEFAULT_MAX_MESSAGE: Final = 1024 * 1024
_BIND_DOMAIN: Final = b"dchat-link-static-v1\x00"
_NOISE_MAX: Final = 65535
_CHUNK: Final = NoiseTransport.MAX_PLAINTEXT
_PROOF_FIELDS: Final = frozenset({"v", "key", "sig"})
_PROOF_LIMITS: Final = DecodeLimits(max_size=256, max_depth=1, max_items=8)
_REFUSAL_MAX: Final = 64  # bytes; a message 2 is at least 96
_REFUSAL_FIELDS: Final = frozenset({"busy", "retry"})
_REFUSAL_LIMITS: Final = DecodeLimits(max_size=_REFUSAL_MAX, max_depth=1, max_items=4)
_REFUSAL_REASON: Final = re.compile(r"[a-z][a-z_]{0,31}")
_MAX_REFUSAL_MS: Final = 3_600_000


def link_proof(node_key: SigningKey, static_public: bytes) -> bytes:
    """The identity proof binding a Noise static public key to ``node_key`` (module docstring)."""
    signature = node_key.sign(_BIND_DOMAIN + static_public)
    return canonical_encode({"v": 1, "key": node_key.public_key.to_bytes(), "sig": signature})


def refusal_frame(reason: str, retry_ms: int) -> bytes:
    """The bytes a listener sends instead of handshake message 2 to refuse a connection.

    Raises:
        ValueError: ``reason`` is not a short lowercase name, or ``retry_ms`` is
            outside 1 ms to one hour.
    """
    if not isinstance(reason, str) or _REFUSAL_REASON.fullmatch(reason) is None:
        raise ValueError(f"not a refusal reason: {reason!r}")
    if not 1 <= retry_ms <= _MAX_REFUSAL_MS:
        raise ValueError(f"retry must be 1 to {_MAX_REFUSAL_MS} ms, got {retry_ms}")
    body = canonical_encode({"busy": reason, "retry": retry_ms})
    return len(body).to_bytes(2, "big") + body


def _refused(message: bytes) -> DchatError:
    """What a dialer raises for a refusal frame (or a malformed one)."""
    try:
        fields = Fields(canonical_decode(message, _REFUSAL_LIMITS), "refusal", _REFUSAL_FIELDS)
        reason = fields.get_str("busy", max_len=32)
        retry = fields.get_int("retry")
    except DecodeError:
        return HandshakeFailedError("handshake failed")
    if _REFUSAL_REASON.fullmatch(reason) is None or not 1 <= retry <= _MAX_REFUSAL_MS:
        return HandshakeFailedError("handshake failed")
    return RelayBusyError(reason, retry / 1000)


class LinkState(enum.Enum):
    """Where a link is in its life."""

    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class HandshakeComplete:
    """The peer proved its node key; the link is open."""

    peer_key: VerifyKey
    peer_id: NodeId


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """One whole application message arrived."""

    data: bytes


@dataclass(frozen=True, slots=True)
class LinkClosed:
    """The peer closed the stream cleanly between messages."""


LinkEvent = HandshakeComplete | MessageReceived | LinkClosed


class LinkConnection:
    """One end of a link. Feed it bytes, collect events and bytes to send.

    Args:
        initiator: True for the dialing side.
        node_key: This node's Ed25519 key, proven to the peer.
        expected_peer: If set, the peer must prove exactly this node id.
        max_message: Largest application message accepted or sent, in bytes.
        static: This side's Noise static key; a fresh one by default.
        proof: :func:`link_proof` of ``node_key`` over ``static``, if the caller
            keeps one (a listener uses one static key for all its links).
    """

    def __init__(
        self,
        *,
        initiator: bool,
        node_key: SigningKey,
        expected_peer: NodeId | None = None,
        max_message: int = DEFAULT_MAX_MESSAGE,
        static: PrivateKey | None = None,
        proof: bytes | None = None,
    ) -> None:
        static_key = static if static is not None else PrivateKey.generate()
        self._proof_bytes = proof
        self._initiator = initiator
        self._node_key = node_key
        self._expected = expected_peer
        self._max_message = max_message
        self._static_public = static_key.public_key.to_bytes()
        self._handshake = HandshakeState(
            PROTOCOL_NAME, initiator=initiator, prologue=PROLOGUE, static=static_key
        )
        self._transport: NoiseTransport | None = None
        self._state = LinkState.HANDSHAKE
        self._frames = _Records(2)
        self._plain = _Records(4)
        self._out: list[bytes] = []
        self._events: deque[LinkEvent] = deque()
        self._eof = False
        self._step = 0
        if initiator:
            self._write_noise(self._handshake.write_message(b""))

    @property
    def state(self) -> LinkState:
        """The current state."""
        return self._state

    @property
    def max_message(self) -> int:
        """The largest application message this link carries."""
        return self._max_message

    def data_to_send(self) -> bytes:
        """Bytes that must be written to the stream, in order. Empties the buffer."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the stream; ``b""`` means the peer closed it.

        Raises:
            LinkProtocolError: the bytes break the protocol (the link is now dead).
        """
        if self._state in (LinkState.ERROR, LinkState.CLOSED):
            raise LinkStateError("link is no longer usable")
        if not data:
            self._eof = True
        try:
            self._process(bytes(data))
        except LinkProtocolError:
            self._state = LinkState.ERROR
            raise

    def next_event(self) -> LinkEvent | None:
        """The next event, or ``None`` if more data is needed."""
        return self._events.popleft() if self._events else None

    def send_message(self, data: bytes) -> None:
        """Queue one application message for sending.

        Raises:
            LinkStateError: the link is not open.
            FrameTooLargeError: ``data`` exceeds ``max_message``.
        """
        if self._state is not LinkState.OPEN or self._transport is None:
            raise LinkStateError("link is not open")
        if len(data) > self._max_message:
            raise FrameTooLargeError("message exceeds the link's maximum size")
        stream = len(data).to_bytes(4, "big") + data
        if len(stream) <= _CHUNK:  # the common case: one Noise message, no slicing
            self._write_noise(self._transport.encrypt(stream))
            return
        for start in range(0, len(stream), _CHUNK):
            self._write_noise(self._transport.encrypt(stream[start : start + _CHUNK]))

    def close(self) -> None:
        """Mark the link closed locally; no further messages may be sent."""
        if self._state is not LinkState.ERROR:
            self._state = LinkState.CLOSED

    # -- internals -------------------------------------------------------------

    def _write_noise(self, message: bytes) -> None:
        self._out += (len(message).to_bytes(2, "big"), message)

    def _process(self, data: bytes) -> None:
        for message in self._frames.split(data, _NOISE_MAX):
            if self._state is LinkState.CLOSED:
                break
            if self._state is LinkState.HANDSHAKE:
                self._handshake_step(message)
            else:
                self._transport_step(message)
        if self._eof:
            self._on_eof()

    def _on_eof(self) -> None:
        if self._state is LinkState.HANDSHAKE:
            raise HandshakeFailedError("peer closed the connection during the handshake")
        if self._frames.pending or self._plain.pending:
            raise LinkProtocolError("peer closed the connection in the middle of a message")
        if self._state is LinkState.OPEN:
            self._state = LinkState.CLOSED
            self._events.append(LinkClosed())

    def _handshake_step(self, message: bytes) -> None:
        if self._initiator and self._step == 0 and len(message) <= _REFUSAL_MAX:
            self._state = LinkState.ERROR  # terminal, whatever the frame says
            raise _refused(message)
        try:
            payload = self._handshake.read_message(message)
        except NoiseError:
            raise HandshakeFailedError("handshake failed") from None
        self._step += 1
        if not self._initiator and self._step == 1:
            if payload:
                raise HandshakeFailedError("first handshake message must have no payload")
            self._write_handshake()
            return
        peer_key = self._check_proof(payload)
        if self._initiator:
            self._write_handshake()
        self._open(peer_key)

    def _write_handshake(self) -> None:
        # Writing DHs with the peer's ephemeral key, which was only parsed so far:
        # a low-order point makes X25519 fail here, and that is the peer's fault.
        try:
            self._write_noise(self._handshake.write_message(self._proof()))
        except (NoiseError, InvalidKeyError):
            raise HandshakeFailedError("handshake failed") from None

    def _proof(self) -> bytes:
        if self._proof_bytes is None:
            self._proof_bytes = link_proof(self._node_key, self._static_public)
        return self._proof_bytes

    def _check_proof(self, payload: bytes) -> VerifyKey:
        remote = self._handshake.remote_static
        if remote is None:
            raise HandshakeFailedError("handshake failed")
        try:
            fields = Fields(canonical_decode(payload, _PROOF_LIMITS), "proof", _PROOF_FIELDS)
            if fields.get_int("v") != 1:
                raise HandshakeFailedError("unsupported link version")
            key = VerifyKey.from_bytes(fields.get_bytes("key", size=32))
            key.verify(fields.get_bytes("sig", size=64), _BIND_DOMAIN + remote.to_bytes())
        except (DecodeError, InvalidKeyError, BadSignatureError):
            raise HandshakeFailedError("peer identity proof failed") from None
        if self._expected is not None and NodeId.derive(key.to_bytes()) != self._expected:
            raise HandshakeFailedError("peer is not the expected node")
        return key

    def _open(self, peer_key: VerifyKey) -> None:
        if not self._handshake.is_complete:
            raise HandshakeFailedError("handshake failed")
        self._transport = self._handshake.split()
        self._state = LinkState.OPEN
        self._events.append(HandshakeComplete(peer_key, NodeId.derive(peer_key.to_bytes())))

    def _transport_step(self, message: bytes) -> None:
        assert self._transport is not None
        try:
            plaintext = self._transport.decrypt(message)
        except (DecryptionError, NoiseError):
            raise LinkProtocolError("transport message failed authentication") from None
        try:
            messages = self._plain.split(plaintext, self._max_message)
        except _RecordTooLargeError:
            raise FrameTooLargeError("peer announced a message above the maximum size") from None
        self._events.extend(map(MessageReceived, messages))


class _RecordTooLargeError(Exception):
    """A record header announced more than the limit (mapped to a link error)."""


class _Records:
    """Cuts a byte stream into records of a big-endian length header and a body.

    Whole records are sliced straight out of the data handed to :meth:`split`;
    only an incomplete tail is buffered. ``_need`` is how many buffered bytes the
    tail must reach before it can hold a whole record (its header, then its
    header and body), so input that arrives a few bytes at a time is appended
    without being re-scanned or re-copied until that record is complete.
    """

    __slots__ = ("_buf", "_header", "_need")

    def __init__(self, header: int) -> None:
        self._header = header
        self._buf = bytearray()
        self._need = header

    @property
    def pending(self) -> bool:
        """Whether part of a record is buffered."""
        return bool(self._buf)

    def split(self, data: bytes, limit: int) -> list[bytes]:
        """The whole records of the buffered tail plus ``data``, in order.

        Raises:
            _RecordTooLargeError: A header announced more than ``limit`` bytes.
        """
        if self._buf:
            self._buf += data
            if len(self._buf) < self._need:
                return []
            data = bytes(self._buf)
            self._buf.clear()
        records: list[bytes] = []
        header, pos, end = self._header, 0, len(data)
        while end - pos >= header:
            size = int.from_bytes(data[pos : pos + header], "big")
            if size > limit:
                raise _RecordTooLargeError
            if end - pos - header < size:
                self._need = header + size
                break
            pos += header
            records.append(data[pos : pos + size])
            pos += size
        else:
            self._need = header
        if pos < end:
            self._buf += memoryview(data)[pos:]
        return records
