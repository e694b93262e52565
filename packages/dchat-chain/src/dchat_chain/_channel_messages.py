"""What two wallets hand each other to run a payment channel, as pasteable text.

Each message is ``dchat-chan:`` followed by the unpadded base64url of one
canonical map (``docs/protocol.md``, section 16)::

    offer    {"t": "offer", "chain", "a", "b", "da", "db", "n"}   the opener's terms
    consent  {"t": "consent", "chan", "sig"}                      the peer's signature on them
    update   {"t": "update", "chan", "seq", "ba", "bb", "final",
              "sig_a": 64 | null, "sig_b": 64 | null}             a signed balance split

The text comes from the other party and is untrusted: decoding is bounded
(:data:`MAX_TEXT` characters, small CBOR limits) and every malformed text raises
:class:`ChannelError`. Signatures are checked by the channel book
(:mod:`._channel_book`), which knows the parties' keys.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Final

from dchat_core import DchatError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._channels import ChannelState, channel_open_terms, payment_channel_id
from ._errors import ChannelError

__all__ = (
    "MAX_TEXT",
    "PREFIX",
    "ChannelConsent",
    "ChannelMessage",
    "ChannelOffer",
    "ChannelUpdate",
    "decode_channel_obj",
    "decode_channel_text",
    "encode_channel_text",
)

PREFIX: Final = "dchat-chan:"
MAX_TEXT: Final = 2048
_LIMITS: Final = DecodeLimits(max_size=1024, max_depth=2, max_items=16)


@dataclass(frozen=True, slots=True)
class ChannelOffer:
    """Channel terms proposed by ``a`` (the opener) at its transaction nonce ``n``."""

    chain: str
    a: bytes
    b: bytes
    da: int
    db: int
    n: int

    def terms(self) -> bytes:
        """The bytes the peer signs to consent (as the chain checks them)."""
        return channel_open_terms(self.chain, self.a, self.b, self.da, self.db, self.n)

    @property
    def chan(self) -> bytes:
        """The channel id these terms give."""
        return payment_channel_id(self.terms())

    def to_obj(self) -> dict[str, Any]:
        """The canonical map."""
        body = {"chain": self.chain, "a": self.a, "b": self.b, "da": self.da, "db": self.db}
        return {"t": "offer", **body, "n": self.n}


@dataclass(frozen=True, slots=True)
class ChannelConsent:
    """The peer's Ed25519 signature over an offer's terms."""

    chan: bytes
    sig: bytes

    def to_obj(self) -> dict[str, Any]:
        """The canonical map."""
        return {"t": "consent", "chan": self.chan, "sig": self.sig}


@dataclass(frozen=True, slots=True)
class ChannelUpdate:
    """A channel state with the signatures collected so far."""

    state: ChannelState
    sig_a: bytes | None = None
    sig_b: bytes | None = None

    @property
    def complete(self) -> bool:
        """Both parties signed."""
        return self.sig_a is not None and self.sig_b is not None

    def to_obj(self) -> dict[str, Any]:
        """The canonical map."""
        s = self.state
        return {
            "t": "update",
            "chan": s.channel,
            "seq": s.seq,
            "ba": s.balance_a,
            "bb": s.balance_b,
            "final": s.final,
            "sig_a": self.sig_a,
            "sig_b": self.sig_b,
        }

    def tx_state(self) -> dict[str, Any]:
        """The state as a channel transaction body carries it (both signatures)."""
        if self.sig_a is None or self.sig_b is None:
            raise ChannelError("this state lacks a signature")
        return self.state.to_body(self.sig_a, self.sig_b)


ChannelMessage = ChannelOffer | ChannelConsent | ChannelUpdate


def encode_channel_text(message: ChannelMessage) -> str:
    """The pasteable text of ``message``."""
    raw = canonical_encode(message.to_obj())
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_channel_text(text: str) -> ChannelMessage:
    """Decode a message text received from the other party.

    Raises:
        ChannelError: Too long, not a channel message, or malformed.
    """
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise ChannelError(f"channel message longer than {MAX_TEXT} characters")
    if not text.startswith(PREFIX):
        raise ChannelError(f"not a channel message (it must start with {PREFIX!r})")
    body = text[len(PREFIX) :]
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise ChannelError("channel message is not valid base64url") from None
    try:
        return decode_channel_obj(canonical_decode(raw, _LIMITS))
    except ChannelError:
        raise
    except DchatError as exc:
        raise ChannelError(f"malformed channel message: {exc}") from None


def _opt_sig(fields: Fields, key: str) -> bytes | None:
    return None if fields.raw(key) is None else fields.get_bytes(key, size=64)


def decode_channel_obj(obj: Any) -> ChannelMessage:
    """A message from its decoded map (also used for the wallet's own file).

    Raises:
        ChannelError: Unknown type or inconsistent fields.
        DecodeError: A missing, extra or mistyped field.
    """
    kind = obj.get("t") if isinstance(obj, dict) else None
    if kind == "offer":
        f = Fields(obj, "offer", frozenset({"t", "chain", "a", "b", "da", "db", "n"}))
        offer = ChannelOffer(
            f.get_str("chain", max_len=64),
            f.get_bytes("a", size=32),
            f.get_bytes("b", size=32),
            f.get_int("da"),
            f.get_int("db"),
            f.get_int("n"),
        )
        if offer.a == offer.b or offer.da + offer.db == 0:
            raise ChannelError("an offer needs two parties and a deposit")
        return offer
    if kind == "consent":
        f = Fields(obj, "consent", frozenset({"t", "chan", "sig"}))
        return ChannelConsent(f.get_bytes("chan", size=32), f.get_bytes("sig", size=64))
    if kind == "update":
        keys = frozenset({"t", "chan", "seq", "ba", "bb", "final", "sig_a", "sig_b"})
        f = Fields(obj, "update", keys)
        final = f.raw("final")
        if not isinstance(final, bool):
            raise ChannelError("update: final must be a boolean")
        state = ChannelState(
            f.get_bytes("chan", size=32),
            f.get_int("seq"),
            f.get_int("ba"),
            f.get_int("bb"),
            final,
        )
        return ChannelUpdate(state, _opt_sig(f, "sig_a"), _opt_sig(f, "sig_b"))
    raise ChannelError("unknown channel message type")
