"""Relay addresses: where a relay listens, and optionally which node key it must prove.

A user names its home relays, and its contact card lists them, as text:
``HOST:PORT`` or ``NODEID@HOST:PORT`` (``NODEID`` is a :class:`NodeId` in
its text form, ``dcnd1...``; an IPv6 host is bracketed, ``[::1]:7400``). With
a node id, a link to the address is refused unless the relay proves that key
in the handshake. :meth:`RelayAddress.parse` checks the text strictly;
:meth:`RelayAddress.split` only separates a node id prefix from the rest,
for texts that came from older cards, whose relay was any printable string.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._errors import CallerError
from ._ids import InvalidIdError, NodeId

__all__ = ("InvalidRelayAddressError", "RelayAddress")

MAX_RELAY_TEXT = 255


class InvalidRelayAddressError(CallerError, ValueError):
    """Text that is not ``[NODEID@]HOST:PORT``."""


@dataclass(frozen=True, slots=True)
class RelayAddress:
    """One relay: ``host``, ``port`` and the pinned ``node`` id (None: any key).

    ``str()`` gives the text form :meth:`parse` reads back.
    """

    host: str
    port: int
    node: NodeId | None = None

    @property
    def hostport(self) -> str:
        """``HOST:PORT`` (an IPv6 host in brackets), without the node id."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return self.hostport if self.node is None else f"{self.node}@{self.hostport}"

    @classmethod
    def parse(cls, text: str) -> RelayAddress:
        """Parse ``[NODEID@]HOST:PORT``.

        Raises:
            InvalidRelayAddressError: anything else (a port outside 1-65535,
                an empty or unprintable host, a malformed node id).
        """
        if not isinstance(text, str) or not 0 < len(text) <= MAX_RELAY_TEXT:
            raise InvalidRelayAddressError("a relay address is 1-255 characters")
        if not text.isprintable() or any(c.isspace() for c in text):
            raise InvalidRelayAddressError(f"not a relay address: {text!r}")
        node_text, at, rest = text.rpartition("@")
        try:
            node = NodeId.parse(node_text) if at else None
        except InvalidIdError as exc:
            raise InvalidRelayAddressError(f"bad relay node id: {exc}") from None
        host, colon, port = rest.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            raise InvalidRelayAddressError(f"an IPv6 host goes in brackets: {text!r}")
        if not colon or not host or "@" in host or "[" in host or "]" in host:
            raise InvalidRelayAddressError(f"not HOST:PORT: {text!r}")
        if not port.isdecimal() or not 0 < int(port) <= 65535:
            raise InvalidRelayAddressError(f"not a port (1-65535): {text!r}")
        return cls(host, int(port), node)

    @staticmethod
    def split(text: str) -> tuple[NodeId | None, str]:
        """``(node, rest)`` of ``NODEID@rest``; ``(None, text)`` if no node id prefixes it."""
        node_text, at, rest = text.partition("@")
        if not at or not node_text.startswith(NodeId.PREFIX):
            return None, text
        try:
            return NodeId.parse(node_text), rest
        except InvalidIdError:
            return None, text

    @staticmethod
    def join(node: NodeId | None, rest: str) -> str:
        """The text ``split`` takes apart: ``NODEID@rest``, or ``rest`` alone."""
        return rest if node is None else f"{node}@{rest}"
