"""Failure messages returned along an onion route, as BOLT 4 returns errors.

The hop that fails builds ``hmac (32) || u16 len || failure || u16 pad_len || pad``
with the MAC under its ``um`` key, and XORs it with its ``ammag`` ChaCha20
stream; every hop on the way back XORs in its own ``ammag`` stream. The sender,
who holds every shared secret, strips the layers in route order and stops at the
first hop whose ``um`` MAC holds: that hop wrote the message. The fixed size
(``failure + pad`` = 256 bytes by default, a 292-byte packet) hides which
failure it is from the hops that relay it.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Final

from ._sphinx import HMAC_SIZE, chacha20_xor
from ._sphinx_errors import InvalidPacketError, MalformedPacketError, SphinxUsageError

if TYPE_CHECKING:
    from ._sphinx import OnionCircuit, SharedSecret

__all__ = (
    "FAILURE_BODY_SIZE",
    "MAX_FAILURE_PACKET_SIZE",
    "build_failure",
    "read_failure",
    "wrap_failure",
)

FAILURE_BODY_SIZE: Final = 256
MAX_FAILURE_PACKET_SIZE: Final = 4096
_MIN_PACKET: Final = HMAC_SIZE + 4


def build_failure(
    shared_secret: SharedSecret, failure: bytes, *, body_size: int = FAILURE_BODY_SIZE
) -> bytes:
    """The failing hop's packet: ``failure`` padded to ``body_size``, MACed and obfuscated.

    Raises:
        SphinxUsageError: ``failure`` does not fit ``body_size``.
    """
    if len(failure) > body_size or HMAC_SIZE + 4 + body_size > MAX_FAILURE_PACKET_SIZE:
        raise SphinxUsageError("failure message does not fit the failure packet")
    pad_length = body_size - len(failure)
    body = (
        len(failure).to_bytes(2, "big")
        + failure
        + pad_length.to_bytes(2, "big")
        + bytes(pad_length)
    )
    mac = hmac.digest(shared_secret.key(b"um"), body, "sha256")
    return wrap_failure(shared_secret, mac + body)


def wrap_failure(shared_secret: SharedSecret, packet: bytes) -> bytes:
    """A hop on the way back adds its layer (XOR with its ``ammag`` stream).

    Raises:
        MalformedPacketError: the packet's size is out of range.
    """
    if not _MIN_PACKET <= len(packet) <= MAX_FAILURE_PACKET_SIZE:
        raise MalformedPacketError("failure packet size is out of range")
    return chacha20_xor(shared_secret.key(b"ammag"), packet)


def read_failure(circuit: OnionCircuit, packet: bytes) -> tuple[int, bytes]:
    """The sender's side: which hop (index in the route) failed, and its message.

    Raises:
        MalformedPacketError: the packet's size is out of range.
        InvalidPacketError: no hop's MAC holds (tampered, or not from this route).
        MalformedPacketError: the size is out of range, or the authenticated body's
            lengths are inconsistent.
    """
    for index, secret in enumerate(circuit.shared_secrets):
        packet = wrap_failure(secret, packet)
        body = packet[HMAC_SIZE:]
        expected = hmac.digest(secret.key(b"um"), body, "sha256")
        if hmac.compare_digest(expected, packet[:HMAC_SIZE]):
            return index, _failure_of(body)
    raise InvalidPacketError("failure message failed authentication")


def _failure_of(body: bytes) -> bytes:
    length = int.from_bytes(body[:2], "big")
    if 2 + length + 2 > len(body):
        raise MalformedPacketError("failure message length is out of range")
    pad_length = int.from_bytes(body[2 + length : 4 + length], "big")
    if 4 + length + pad_length != len(body):
        raise MalformedPacketError("failure message padding length is wrong")
    return body[2 : 2 + length]
