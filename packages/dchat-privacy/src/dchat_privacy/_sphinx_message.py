"""dchat onion messages: a BOLT 4 header and a fixed-size body, and the relay that peels them.

A message is ``header (1366, BOLT 4) || body (4096)`` = 5462 bytes at every hop.
The header routes; the body carries the data. Each hop XORs the body with a
ChaCha20 stream under ``HMAC-SHA256("dchat-body", shared_secret)``, so the body
bytes differ at every hop and two relays cannot match a message by its body.
The sender of a first message applies every hop's layer in advance (the final
hop recovers the padded data); a reply travels the other way: the replier sends
a sealed body, each hop adds a layer and the reply block's owner removes them
all (see :mod:`dchat_privacy._sphinx_surb`). The body is not authenticated
hop by hop (the header MAC cannot cover it: its bytes change at each hop);
its integrity is end to end.

:class:`OnionRelay` is the relay's sans-IO state: its onion key per epoch (the
current and the previous one during a rotation) and its replay cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from ._padding import PaddingError, PaddingTooLargeError, pad, unpad
from ._sphinx import (
    PACKET_SIZE,
    OnionPrivateKey,
    SharedSecret,
    build_onion,
    chacha20_xor,
    peel_onion,
    shared_secret_of,
)
from ._sphinx_errors import (
    InvalidPacketError,
    MalformedPacketError,
    ReplayedPacketError,
    SphinxUsageError,
)
from ._sphinx_replay import DEFAULT_REPLAY_ENTRIES, ReplayCache

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._sphinx import OnionCircuit, OnionPublicKey

__all__ = (
    "BODY_SIZE",
    "MESSAGE_ASSOCIATED_DATA",
    "MESSAGE_SIZE",
    "Deliver",
    "Forward",
    "OnionRelay",
    "build_message",
    "read_body",
)

BODY_SIZE: Final = 4096
MESSAGE_SIZE: Final = PACKET_SIZE + BODY_SIZE
MESSAGE_ASSOCIATED_DATA: Final = b"dchat onion message v1"
MAX_DATA: Final = BODY_SIZE - 4


def body_layer(secret: SharedSecret, body: bytes) -> bytes:
    """Add (or remove: XOR) one hop's layer of the body."""
    return chacha20_xor(secret.key(b"dchat-body"), body)


def reply_id_of(secret: SharedSecret) -> bytes:
    """The 16-byte id the final hop reports with a delivery (a reply block's owner knows it)."""
    return secret.key(b"dchat-reply-id")[:16]


def build_message(
    route: Sequence[tuple[OnionPublicKey, bytes]],
    data: bytes,
    *,
    session_key: OnionPrivateKey,
) -> tuple[bytes, OnionCircuit]:
    """A first message: ``data`` (at most 4092 bytes, padded) routed along ``route``.

    Returns the message for the first hop and the circuit to read failures with.

    Raises:
        SphinxUsageError: the route or payloads do not fit (see :func:`build_onion`),
            or ``data`` is longer than 4092 bytes.
    """
    try:
        body = pad(data, (BODY_SIZE,))
    except PaddingTooLargeError:
        raise SphinxUsageError(f"onion message data is at most {MAX_DATA} bytes") from None
    header, circuit = build_onion(
        route, session_key=session_key, associated_data=MESSAGE_ASSOCIATED_DATA
    )
    for secret in reversed(circuit.shared_secrets):
        body = body_layer(secret, body)
    return header + body, circuit


def read_body(body: bytes) -> bytes:
    """The data of a first message's body, as its final hop received it.

    Raises:
        MalformedPacketError: the body is not a padded first-message body.
    """
    try:
        return unpad(body, (BODY_SIZE,))
    except PaddingError:
        raise MalformedPacketError("onion body is not a padded message") from None


@dataclass(frozen=True, eq=False)
class Forward:
    """Send ``message`` to the next hop that ``payload`` names."""

    payload: bytes
    message: bytes
    shared_secret: SharedSecret = field(repr=False)


@dataclass(frozen=True, eq=False)
class Deliver:
    """This relay is the last hop: ``payload`` says where ``body`` goes; ``reply_id`` goes along."""

    payload: bytes
    body: bytes
    reply_id: bytes
    shared_secret: SharedSecret = field(repr=False)


class OnionRelay:
    """One relay's onion processing: keys by epoch and replay protection (sans-IO)."""

    def __init__(
        self, key: OnionPrivateKey, *, epoch: int, max_entries: int = DEFAULT_REPLAY_ENTRIES
    ) -> None:
        self._keys: dict[int, OnionPrivateKey] = {epoch: key}
        self._replays = ReplayCache(epoch=epoch, max_entries=max_entries, keep_epochs=2)

    @property
    def epoch(self) -> int:
        return max(self._keys)

    def rotate(self, key: OnionPrivateKey, *, epoch: int) -> None:
        """Start ``epoch`` with ``key``; the previous key still peels until the next rotation."""
        self._replays.rotate(epoch)
        self._keys[epoch] = key
        for old in [e for e in self._keys if e not in self._replays.epochs]:
            del self._keys[old]

    def process(self, message: bytes) -> Forward | Deliver:
        """Peel one layer of ``message``.

        Raises:
            MalformedPacketError: wrong size, version or point, or bad framing.
            InvalidPacketError: no current key authenticates it.
            ReplayedPacketError: the packet was already processed in this key epoch.
            ReplayCacheFullError: the epoch's cache is full (rotate the key).
        """
        if len(message) != MESSAGE_SIZE:
            raise MalformedPacketError(f"an onion message is {MESSAGE_SIZE} bytes")
        header, body = message[:PACKET_SIZE], message[PACKET_SIZE:]
        for epoch in sorted(self._keys, reverse=True):
            secret = shared_secret_of(header, self._keys[epoch])
            try:
                peeled = peel_onion(
                    header,
                    self._keys[epoch],
                    associated_data=MESSAGE_ASSOCIATED_DATA,
                    shared_secret=secret,
                )
            except InvalidPacketError:
                continue
            if self._replays.seen(epoch, secret.replay_tag()):
                raise ReplayedPacketError("onion packet already processed")
            body = body_layer(secret, body)
            if peeled.next_packet is None:
                return Deliver(peeled.payload, body, reply_id_of(secret), secret)
            return Forward(peeled.payload, peeled.next_packet + body, secret)
        raise InvalidPacketError("onion packet failed authentication")
