"""Route blinding as BOLT 4 specifies it: a recipient publishes a path without naming its nodes.

The recipient picks a session (path) key ``e_0`` and, for each node ``N_i`` of
the path, derives ``ss_i`` exactly as for an onion (``SHA-256(e_i * N_i)``,
``e_{i+1} = e_i * SHA-256(E_i || ss_i)``). It publishes, per node, the blinded
id ``HMAC-SHA256("blinded_node_id", ss_i) * N_i`` and the node's data sealed
with ChaCha20-Poly1305 under ``rho`` (zero nonce, no associated data), plus the
first node and the first path key ``E_0``. A node given ``E_i`` recomputes
``ss_i`` with its own key, opens its data, derives the private key of its
blinded id and the next path key ``SHA-256(E_i || ss_i) * E_i``. Payload
formats (BOLT 4's TLVs, a path key override) are the caller's business.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import coincurve
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from ._sphinx import OnionPrivateKey, OnionPublicKey, derive_key, route_secrets
from ._sphinx_errors import InvalidPacketError, MalformedPacketError, SphinxUsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ("BlindedHop", "BlindedPath", "UnblindedHop", "blind_path", "unblind_hop")

_NONCE: Final = bytes(12)
MAX_ENCRYPTED_DATA: Final = 1300


@dataclass(frozen=True)
class BlindedHop:
    """One published hop: its blinded id and its sealed data."""

    blinded_node_id: OnionPublicKey
    encrypted_data: bytes


@dataclass(frozen=True)
class BlindedPath:
    """What the recipient publishes: the first node (in clear), the first path key, the hops."""

    first_node_id: OnionPublicKey
    first_path_key: OnionPublicKey
    hops: tuple[BlindedHop, ...]


@dataclass(frozen=True, eq=False)
class UnblindedHop:
    """A node's reading of its hop: its data, the next path key, its blinded private key."""

    data: bytes
    next_path_key: OnionPublicKey
    blinded_key: OnionPrivateKey = field(repr=False)


def _tweak_point(key: OnionPublicKey, scalar: bytes) -> OnionPublicKey:
    return OnionPublicKey.from_bytes(
        bytes(coincurve.PublicKey(key.to_bytes()).multiply(scalar).format(compressed=True))
    )


def blind_path(
    route: Sequence[tuple[OnionPublicKey, bytes]], *, session_key: OnionPrivateKey
) -> BlindedPath:
    """Blind ``route`` (each node's public key and the data only it may read).

    Raises:
        SphinxUsageError: an empty route, data over 1300 bytes, or an unusable key.
    """
    if not route or any(len(data) > MAX_ENCRYPTED_DATA for _, data in route):
        raise SphinxUsageError("a blinded path has at least one hop, data <= 1300 bytes")
    first, shared = route_secrets([node for node, _ in route], session_key)
    hops = []
    for (node, data), secret in zip(route, shared, strict=True):
        try:
            blinded = _tweak_point(node, secret.key(b"blinded_node_id"))
        except ValueError:  # tweak >= n: probability ~2**-128
            raise SphinxUsageError("unusable blinding; pick another session key") from None
        sealed = ChaCha20Poly1305(secret.key(b"rho")).encrypt(_NONCE, bytes(data), b"")
        hops.append(BlindedHop(blinded, sealed))
    return BlindedPath(route[0][0], OnionPublicKey.from_bytes(first), tuple(hops))


def unblind_hop(
    node_key: OnionPrivateKey, path_key: OnionPublicKey, encrypted_data: bytes
) -> UnblindedHop:
    """Open this node's hop of a blinded path.

    Raises:
        MalformedPacketError: the sealed data is too short or too long.
        InvalidPacketError: it does not open under this node's key and ``path_key``.
    """
    if not 16 <= len(encrypted_data) <= MAX_ENCRYPTED_DATA + 16:
        raise MalformedPacketError("blinded hop data size is out of range")
    point = coincurve.PublicKey(path_key.to_bytes())
    secret = hashlib.sha256(point.multiply(node_key.to_bytes()).format(compressed=True)).digest()
    try:
        data = ChaCha20Poly1305(derive_key(b"rho", secret)).decrypt(
            _NONCE, bytes(encrypted_data), b""
        )
    except InvalidTag:
        raise InvalidPacketError("blinded hop failed authentication") from None
    blinding = hashlib.sha256(path_key.to_bytes() + secret).digest()
    try:
        next_key = _tweak_point(path_key, blinding)
        blinded = coincurve.PrivateKey(node_key.to_bytes()).multiply(
            hmac.digest(b"blinded_node_id", secret, "sha256")
        )
    except ValueError:  # tweak >= n: probability ~2**-128
        raise MalformedPacketError("path key cannot be blinded") from None
    return UnblindedHop(data, next_key, OnionPrivateKey.from_bytes(bytes(blinded.secret)))
