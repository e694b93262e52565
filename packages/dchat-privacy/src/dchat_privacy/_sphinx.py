"""Sphinx onion packets as Lightning's BOLT 4 builds them (secp256k1, ChaCha20, HMAC-SHA256).

Theory of operation. The sender picks a session key and, for each hop in turn,
derives a shared secret ``ss_i = SHA256(compressed(e_i * P_i))`` and the next
ephemeral key ``e_{i+1} = e_i * SHA256(E_i || ss_i)``, so each hop sees a
different ephemeral point and can blind it forward itself. The packet is
``version (0x00) || E_0 (33) || hop_payloads (1300) || hmac (32)`` = 1366
bytes whatever the route. The header is built from the last hop back: shift
right, put ``bigsize(len) || payload || next_hmac`` in front, XOR with the hop's
``rho`` ChaCha20 stream, and MAC it (with the associated data) under ``mu``.
A hop checks the MAC, XORs ``hop_payloads || 1300 zeros`` with its stream,
reads its payload and passes on the remaining 1300 bytes: the tail it shifted
in is the "filler" the sender precomputed, so the next hop's MAC still holds.
An all-zero next HMAC marks the final hop.

All curve arithmetic is libsecp256k1's (through coincurve); the stream and the
MACs are ``cryptography``'s ChaCha20 and the standard library's HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import coincurve
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from ._sphinx_errors import InvalidPacketError, MalformedPacketError, SphinxUsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = (
    "HOP_PAYLOADS_SIZE",
    "MAX_HOPS",
    "PACKET_SIZE",
    "OnionCircuit",
    "OnionPrivateKey",
    "OnionPublicKey",
    "PeeledOnion",
    "SharedSecret",
    "build_onion",
    "peel_onion",
)

HOP_PAYLOADS_SIZE: Final = 1300
HMAC_SIZE: Final = 32
POINT_SIZE: Final = 33
VERSION: Final = 0
PACKET_SIZE: Final = 1 + POINT_SIZE + HOP_PAYLOADS_SIZE + HMAC_SIZE  # 1366
MAX_HOPS: Final = 20
_ZERO_HMAC: Final = bytes(HMAC_SIZE)


def derive_key(name: bytes, secret: bytes) -> bytes:
    """BOLT 4's key generation: ``HMAC-SHA256(key=name, msg=secret)``."""
    return hmac.new(name, secret, hashlib.sha256).digest()


def chacha20_xor(key: bytes, data: bytes) -> bytes:
    """XOR ``data`` with the ChaCha20 stream of ``key``, 96-bit zero nonce, counter 0."""
    encryptor = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
    return encryptor.update(data)


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")


class SharedSecret:
    """A hop's 32-byte shared secret (never shown by ``repr``)."""

    __slots__ = ("_secret",)
    SIZE: Final = 32

    def __init__(self, secret: bytes) -> None:
        if len(secret) != self.SIZE:
            raise SphinxUsageError("a shared secret is 32 bytes")
        self._secret = bytes(secret)

    def key(self, name: bytes) -> bytes:
        """The BOLT 4 key ``name`` (``rho``, ``mu``, ``um``, ``ammag``, ...) of this secret."""
        return derive_key(name, self._secret)

    def to_bytes(self) -> bytes:
        """The secret itself (to persist a reply block's keys; keep it as secret as a key)."""
        return self._secret

    def replay_tag(self) -> bytes:
        """16 bytes that identify this packet in a replay cache (not the secret)."""
        return hashlib.sha256(b"dchat sphinx replay tag" + self._secret).digest()[:16]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SharedSecret) and hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.replay_tag())

    def __repr__(self) -> str:
        return "SharedSecret(<hidden>)"


class OnionPublicKey:
    """A hop's secp256k1 public key, 33 bytes compressed."""

    __slots__ = ("_point",)
    SIZE: Final = POINT_SIZE

    def __init__(self, point: coincurve.PublicKey) -> None:
        self._point = point

    @classmethod
    def from_bytes(cls, data: bytes) -> OnionPublicKey:
        """Parse a compressed point. Raises :class:`SphinxUsageError` if it is not one."""
        point = _parse_point(bytes(data))
        if point is None:
            raise SphinxUsageError("not a compressed secp256k1 public key")
        return cls(point)

    def to_bytes(self) -> bytes:
        return bytes(self._point.format(compressed=True))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OnionPublicKey) and self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self.to_bytes())

    def __repr__(self) -> str:
        return f"OnionPublicKey({self.to_bytes().hex()})"


class OnionPrivateKey:
    """A hop's (or a sender's session) secp256k1 private key."""

    __slots__ = ("_key",)
    SIZE: Final = 32

    def __init__(self, key: coincurve.PrivateKey) -> None:
        self._key = key

    @classmethod
    def generate(cls) -> OnionPrivateKey:
        return cls(coincurve.PrivateKey(secrets.token_bytes(32)))

    @classmethod
    def from_bytes(cls, data: bytes) -> OnionPrivateKey:
        """Raises :class:`SphinxUsageError` unless ``data`` is a scalar in ``[1, n)``."""
        if len(data) != cls.SIZE:
            raise SphinxUsageError("a private key is 32 bytes")
        try:
            return cls(coincurve.PrivateKey(bytes(data)))
        except ValueError:
            raise SphinxUsageError("not a valid secp256k1 private key") from None

    def to_bytes(self) -> bytes:
        return bytes(self._key.secret)

    @property
    def public_key(self) -> OnionPublicKey:
        return OnionPublicKey(self._key.public_key)

    def __repr__(self) -> str:
        return "OnionPrivateKey(<hidden>)"


def _parse_point(data: bytes) -> coincurve.PublicKey | None:
    if len(data) != POINT_SIZE or data[0] not in (2, 3):
        return None
    try:
        return coincurve.PublicKey(data)
    except ValueError:
        return None


def _ecdh(point: coincurve.PublicKey, scalar: bytes) -> bytes:
    return hashlib.sha256(point.multiply(scalar).format(compressed=True)).digest()


@dataclass(frozen=True, eq=False)
class OnionCircuit:
    """What the sender keeps of a route: each hop's shared secret, in route order."""

    shared_secrets: tuple[SharedSecret, ...] = field(repr=False)


def route_secrets(
    route: Sequence[OnionPublicKey], session_key: OnionPrivateKey
) -> tuple[bytes, list[SharedSecret]]:
    """The first ephemeral point and each hop's shared secret (the sender's side)."""
    ephemeral = session_key._key
    first = bytes(ephemeral.public_key.format(compressed=True))
    found: list[SharedSecret] = []
    for hop in route:
        point = bytes(ephemeral.public_key.format(compressed=True))
        secret = _ecdh(hop._point, ephemeral.secret)
        found.append(SharedSecret(secret))
        try:
            ephemeral = ephemeral.multiply(hashlib.sha256(point + secret).digest())
        except ValueError:  # a blinding factor >= n: probability ~2**-128
            raise SphinxUsageError("session key gives an invalid blinding; pick another") from None
    return first, found


def encode_bigsize(value: int) -> bytes:
    """BOLT 1's BigSize: one byte below 0xfd, else a marker and 2, 4 or 8 big-endian bytes."""
    if value < 0xFD:
        return bytes([value])
    if value <= 0xFFFF:
        return b"\xfd" + value.to_bytes(2, "big")
    if value <= 0xFFFF_FFFF:
        return b"\xfe" + value.to_bytes(4, "big")
    return b"\xff" + value.to_bytes(8, "big")


def decode_bigsize(data: bytes, offset: int) -> tuple[int, int]:
    """Read a minimally encoded BigSize at ``offset``: ``(value, next offset)``."""
    if offset >= len(data):
        raise MalformedPacketError("truncated length prefix")
    marker = data[offset]
    if marker < 0xFD:
        return marker, offset + 1
    width = {0xFD: 2, 0xFE: 4, 0xFF: 8}[marker]
    if offset + 1 + width > len(data):
        raise MalformedPacketError("truncated length prefix")
    value = int.from_bytes(data[offset + 1 : offset + 1 + width], "big")
    if value < {2: 0xFD, 4: 0x1_0000, 8: 0x1_0000_0000}[width]:
        raise MalformedPacketError("length prefix is not minimally encoded")
    return value, offset + 1 + width


def _framed_payloads(route_length: int, payloads: Sequence[bytes]) -> list[bytes]:
    if not 1 <= route_length <= MAX_HOPS or len(payloads) != route_length:
        raise SphinxUsageError(f"a route has 1 to {MAX_HOPS} hops, one payload each")
    if any(not payload for payload in payloads):
        raise SphinxUsageError("a hop payload may not be empty")
    framed = [encode_bigsize(len(p)) + bytes(p) for p in payloads]
    if sum(len(f) + HMAC_SIZE for f in framed) > HOP_PAYLOADS_SIZE:
        raise SphinxUsageError("the hop payloads do not fit the 1300-byte onion")
    return framed


def _filler(framed: list[bytes], shared: list[SharedSecret]) -> bytes:
    """The bytes the last hop's header must end with so that every hop's MAC holds."""
    filler = b""
    for payload, secret in zip(framed[:-1], shared[:-1], strict=True):
        shift = len(payload) + HMAC_SIZE
        stream = chacha20_xor(secret.key(b"rho"), bytes(HOP_PAYLOADS_SIZE + shift))
        filler += bytes(shift)
        filler = _xor(filler, stream[HOP_PAYLOADS_SIZE + shift - len(filler) :])
    return filler


def build_onion(
    route: Sequence[tuple[OnionPublicKey, bytes]],
    *,
    session_key: OnionPrivateKey,
    associated_data: bytes = b"",
) -> tuple[bytes, OnionCircuit]:
    """Build the 1366-byte onion for ``route`` (each hop's key and payload, in order).

    ``session_key`` must be fresh and random for every packet. Returns the packet,
    to hand to the first hop, and the circuit (shared secrets) the sender keeps to
    read failures and replies.

    Raises:
        SphinxUsageError: an empty or too long route, an empty payload, or payloads
            that do not fit 1300 bytes (each costs its length, a length prefix and 32).
    """
    framed = _framed_payloads(len(route), [payload for _, payload in route])
    first, shared = route_secrets([key for key, _ in route], session_key)
    filler = _filler(framed, shared)
    header = chacha20_xor(derive_key(b"pad", session_key.to_bytes()), bytes(HOP_PAYLOADS_SIZE))
    next_hmac = _ZERO_HMAC
    for index in reversed(range(len(route))):
        shift = len(framed[index]) + HMAC_SIZE
        header = framed[index] + next_hmac + header[: HOP_PAYLOADS_SIZE - shift]
        header = chacha20_xor(shared[index].key(b"rho"), header)
        if index == len(route) - 1 and filler:
            header = header[: HOP_PAYLOADS_SIZE - len(filler)] + filler
        next_hmac = hmac.digest(shared[index].key(b"mu"), header + associated_data, "sha256")
    packet = bytes([VERSION]) + first + header + next_hmac
    return packet, OnionCircuit(tuple(shared))


@dataclass(frozen=True, eq=False)
class PeeledOnion:
    """One hop's view of a packet: its payload and, unless it is the last hop, the next packet."""

    payload: bytes
    next_packet: bytes | None
    shared_secret: SharedSecret = field(repr=False)

    @property
    def is_final(self) -> bool:
        return self.next_packet is None


def _ephemeral_point(packet: bytes) -> coincurve.PublicKey:
    if len(packet) != PACKET_SIZE:
        raise MalformedPacketError(f"an onion packet is {PACKET_SIZE} bytes")
    if packet[0] != VERSION:
        raise MalformedPacketError("unknown onion version")
    point = _parse_point(packet[1 : 1 + POINT_SIZE])
    if point is None:
        raise MalformedPacketError("onion ephemeral key is not a curve point")
    return point


def shared_secret_of(packet: bytes, private_key: OnionPrivateKey) -> SharedSecret:
    """Check the packet's size, version and point; derive the hop's shared secret.

    Raises:
        MalformedPacketError: wrong size or version, or the point is not on the curve.
    """
    return SharedSecret(_ecdh(_ephemeral_point(packet), private_key.to_bytes()))


def peel_onion(
    packet: bytes,
    private_key: OnionPrivateKey,
    *,
    associated_data: bytes = b"",
    shared_secret: SharedSecret | None = None,
) -> PeeledOnion:
    """Process ``packet`` as the hop holding ``private_key``.

    ``shared_secret`` may be passed if :func:`shared_secret_of` was already called
    (a relay computes it first to consult its replay cache).

    Raises:
        MalformedPacketError: wrong size or version, a bad point, or (after the MAC
            held) a payload whose length prefix runs past the onion.
        InvalidPacketError: the MAC does not hold (wrong key, tampering, wrong
            associated data); deliberately without detail.
    """
    point = _ephemeral_point(packet)
    if shared_secret is None:
        shared_secret = SharedSecret(_ecdh(point, private_key.to_bytes()))
    secret = shared_secret
    header = packet[1 + POINT_SIZE : 1 + POINT_SIZE + HOP_PAYLOADS_SIZE]
    expected = hmac.digest(secret.key(b"mu"), header + associated_data, "sha256")
    if not hmac.compare_digest(expected, packet[-HMAC_SIZE:]):
        raise InvalidPacketError("onion packet failed authentication")
    plain = chacha20_xor(secret.key(b"rho"), header + bytes(HOP_PAYLOADS_SIZE))
    length, start = decode_bigsize(plain, 0)
    end = start + length
    if length == 0 or end + HMAC_SIZE > HOP_PAYLOADS_SIZE:
        raise MalformedPacketError("hop payload length is out of range")
    next_hmac = plain[end : end + HMAC_SIZE]
    if hmac.compare_digest(next_hmac, _ZERO_HMAC):
        return PeeledOnion(plain[start:end], None, secret)
    ephemeral = packet[1 : 1 + POINT_SIZE]
    blinding = hashlib.sha256(ephemeral + secret._secret).digest()
    try:
        next_point = bytes(point.multiply(blinding).format(compressed=True))
    except ValueError:  # blinding factor >= n: probability ~2**-128
        raise MalformedPacketError("onion ephemeral key cannot be blinded") from None
    rest = plain[end + HMAC_SIZE : end + HMAC_SIZE + HOP_PAYLOADS_SIZE]
    return PeeledOnion(plain[start:end], bytes([VERSION]) + next_point + rest + next_hmac, secret)
