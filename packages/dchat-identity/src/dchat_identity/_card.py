"""Contact cards: what one person hands another so they can write to them.

A card carries the identity public key, the encryption key, the mailbox id and
the home relays that hold the mailbox (one or more, each ``HOST:PORT`` or
``NODEID@HOST:PORT``, see :class:`dchat_core.RelayAddress`), all signed by the
identity key. Its id is derived from the key inside it, so a card cannot claim
someone else's id, and the signature stops anyone from swapping the encryption
key or a relay.

Encodings: a card with one relay is version 1 (``relay`` and the optional
``relay_node``, byte for byte what cards were before several relays); a card
with two or more is version 2 (``relays``, a list of address texts, at most
:data:`MAX_RELAYS`). Each card has exactly one encoding: a version 2 card with
fewer than two relays is refused.

A card may also carry ``stealth``: the owner's stealth meta-address (64 bytes,
scan key || spend key, two valid Ed25519 points; docs/protocol.md §43), so a
contact can pay it unlinkably without being handed the text form. The field
is optional and only written when present: a card without it is byte for byte
what it was, so readers older than the field read such cards unchanged (they
refuse a card that carries it, as they refuse any unknown field).

Text form: ``dchat-card:`` followed by unpadded base64url of the canonical
encoding. The signed message is ``b"dchat-card-v1\\x00" || canonical(fields)``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    IdentityId,
    MailboxId,
    NodeId,
    RelayAddress,
    canonical_decode,
    canonical_encode,
)
from dchat_crypto import BadSignatureError, InvalidKeyError, PublicKey, VerifyKey
from dchat_crypto.hazmat import ed25519_point_ok

from ._errors import ExpiredError, InvalidCardError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._identity import Identity

__all__ = ("ContactCard",)

_PREFIX = "dchat-card:"
_DOMAIN = b"dchat-card-v1\x00"
_FIELDS = frozenset(
    {
        "v",
        "name",
        "identity",
        "encryption",
        "mailbox",
        "relay",
        "relay_node",
        "relays",
        "exp",
        "stealth",
        "sig",
    }
)
MAX_CARD = 2048
"""Bytes of an encoded card (a session's first messages carry it)."""
_LIMITS = DecodeLimits(max_size=MAX_CARD, max_depth=2, max_items=32)
MAX_NAME = 64
MAX_RELAY = 255
MAX_RELAYS = 8
"""Home relays one card may list."""
STEALTH_SIZE = 64
"""Bytes of a stealth meta-address (scan key || spend key)."""


# Cards verified lately, by their exact encoding (canonical: one encoding per card).
# A node reads the same few cards for every message; decoding and checking the
# signature each time cost more than the rest of a send. Only cards that verified
# are kept, and a card is immutable, so a hit is exactly what a fresh check gives.
_VERIFIED: dict[bytes, ContactCard] = {}
_VERIFIED_KEPT = 1024


@dataclass(frozen=True, slots=True)
class ContactCard:
    """A signed, self-certifying description of how to reach an identity."""

    name: str
    identity_key: VerifyKey
    encryption_key: PublicKey
    mailbox: MailboxId
    relays: tuple[str, ...]
    """The home relays, first the preferred one: ``[NODEID@]ADDRESS`` texts."""
    signature: bytes
    expires_ms: int | None = None
    stealth: bytes | None = None
    """The owner's stealth meta-address (scan key || spend key), if published."""

    @property
    def relay(self) -> str:
        """The first home relay's address, without its node id."""
        return RelayAddress.split(self.relays[0])[1]

    @property
    def relay_node(self) -> NodeId | None:
        """The first home relay's pinned node id, if any."""
        return RelayAddress.split(self.relays[0])[0]

    @property
    def identity_id(self) -> IdentityId:
        """The id this card speaks for."""
        return IdentityId.derive(self.identity_key.to_bytes())

    @classmethod
    def issue(
        cls,
        identity: Identity,
        *,
        name: str,
        relay: str | None = None,
        relay_node: NodeId | None = None,
        relays: Sequence[str] = (),
        expires: float | None = None,
        stealth: bytes | None = None,
    ) -> ContactCard:
        """Create and sign a card for ``identity`` whose mail waits at its home relays.

        The relays are ``relays`` (address texts, ``[NODEID@]HOST:PORT``) or
        the one ``relay`` (pinned to ``relay_node`` if given). ``expires``
        (seconds since the epoch) limits the card's life (burners); recipients
        check it with :meth:`check_not_expired`. ``stealth`` publishes a stealth
        meta-address (64 bytes: scan key || spend key).

        Raises:
            InvalidCardError: no relay, both forms, too many, bad text, or a
                stealth meta-address that is not two valid points.
        """
        if (relay is None) == (not relays):
            raise InvalidCardError("give either one relay or a list of relays")
        listed = tuple(relays) if relays else (RelayAddress.join(relay_node, relay or ""),)
        _check_text(name, listed)
        _check_stealth(stealth)
        unsigned = cls(
            name=name,
            identity_key=identity.signing_key.public_key,
            encryption_key=identity.encryption_key.public_key,
            mailbox=identity.mailbox_id,
            relays=listed,
            signature=b"",
            expires_ms=None if expires is None else int(expires * 1000),
            stealth=stealth,
        )
        signature = identity.signing_key.sign(_DOMAIN + canonical_encode(unsigned._fields()))
        card = replace(unsigned, signature=signature)
        if len(card.to_bytes()) > MAX_CARD:
            raise InvalidCardError(f"a card is at most {MAX_CARD} bytes: fewer or shorter relays")
        return card

    def with_stealth(self, identity: Identity, stealth: bytes) -> ContactCard:
        """This card re-issued by its owner with the stealth meta-address ``stealth``.

        Name, relays and expiry stay; a card that already publishes
        ``stealth`` is returned as it is. For cards issued before stealth
        payments existed (their owners re-issue them on the next export).

        Raises:
            InvalidCardError: ``identity`` is not the card's owner, or ``stealth``
                is not a meta-address.
        """
        if identity.signing_key.public_key.to_bytes() != self.identity_key.to_bytes():
            raise InvalidCardError("only the card's owner can re-issue it")
        if self.stealth == stealth:
            return self
        expires = None if self.expires_ms is None else self.expires_ms / 1000
        return ContactCard.issue(
            identity, name=self.name, relays=self.relays, expires=expires, stealth=stealth
        )

    def _fields(self) -> dict[str, object]:
        fields: dict[str, object] = {
            "v": 1 if len(self.relays) == 1 else 2,
            "name": self.name,
            "identity": self.identity_key.to_bytes(),
            "encryption": self.encryption_key.to_bytes(),
            "mailbox": bytes(self.mailbox),
        }
        if len(self.relays) > 1:
            fields["relays"] = list(self.relays)
        else:
            fields["relay"] = self.relay
            if self.relay_node is not None:
                fields["relay_node"] = bytes(self.relay_node)
        if self.expires_ms is not None:
            fields["exp"] = self.expires_ms
        if self.stealth is not None:
            fields["stealth"] = self.stealth
        return fields

    def check_not_expired(self, now: float) -> None:
        """Raise :class:`ExpiredError` if the card carries an expiry at or before ``now``."""
        if self.expires_ms is not None and int(now * 1000) >= self.expires_ms:
            raise ExpiredError("the contact card has expired")

    def to_bytes(self) -> bytes:
        """Canonical encoding including the signature."""
        return canonical_encode({**self._fields(), "sig": self.signature})

    def to_text(self) -> str:
        """The shareable text form."""
        return _PREFIX + base64.urlsafe_b64encode(self.to_bytes()).decode("ascii").rstrip("=")

    @classmethod
    def from_bytes(cls, data: bytes) -> ContactCard:
        """Decode and verify a card.

        Raises:
            InvalidCardError: malformed, or the signature does not verify.
        """
        data = bytes(data)
        known = _VERIFIED.get(data)
        if known is not None and type(known) is cls:
            return known
        try:
            fields = Fields(canonical_decode(data, _LIMITS), "card", _FIELDS)
            card = cls(
                name=fields.get_str("name", max_len=MAX_NAME),
                identity_key=VerifyKey.from_bytes(fields.get_bytes("identity", size=32)),
                encryption_key=PublicKey.from_bytes(fields.get_bytes("encryption", size=32)),
                mailbox=MailboxId(fields.get_bytes("mailbox", size=32)),
                relays=_decode_relays(fields),
                signature=fields.get_bytes("sig", size=64),
                expires_ms=fields.get_int("exp") if fields.has("exp") else None,
                stealth=fields.get_bytes("stealth", size=STEALTH_SIZE)
                if fields.has("stealth")
                else None,
            )
            _check_text(card.name, card.relays)
            _check_stealth(card.stealth)
            card.identity_key.verify(card.signature, _DOMAIN + canonical_encode(card._fields()))
        except (DecodeError, InvalidKeyError, ValueError) as exc:
            raise InvalidCardError(f"malformed contact card: {exc}") from None
        except BadSignatureError:
            raise InvalidCardError("contact card signature does not verify") from None
        if len(_VERIFIED) >= _VERIFIED_KEPT:
            _VERIFIED.clear()
        _VERIFIED[data] = card
        return card

    @classmethod
    def from_text(cls, text: str) -> ContactCard:
        """Parse the text form made by :meth:`to_text`."""
        if not isinstance(text, str) or not text.startswith(_PREFIX) or len(text) > 4096:
            raise InvalidCardError("not a dchat contact card")
        body = text[len(_PREFIX) :].strip()
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise InvalidCardError("contact card is not valid base64url") from None
        return cls.from_bytes(raw)


def _decode_relays(fields: Fields) -> tuple[str, ...]:
    """The relays of a version 1 (one ``relay``) or version 2 (a ``relays`` list) card."""
    version = fields.get_int("v")
    if version == 1 and not fields.has("relays"):
        relay = fields.get_str("relay", max_len=MAX_RELAY)
        if not fields.has("relay_node"):
            if RelayAddress.split(relay)[0] is not None:
                raise InvalidCardError("a version 1 relay carries its node id apart")
            return (relay,)
        return (RelayAddress.join(NodeId(fields.get_bytes("relay_node", size=32)), relay),)
    if version == 2 and not fields.has("relay") and not fields.has("relay_node"):
        listed = fields.get_list("relays")
        if not 2 <= len(listed) <= MAX_RELAYS or not all(isinstance(r, str) for r in listed):
            raise InvalidCardError("a version 2 card lists 2-8 relay texts")
        return tuple(str(r) for r in listed)
    raise InvalidCardError("unsupported card version")


def _check_text(name: str, relays: tuple[str, ...]) -> None:
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidCardError("card name must be 1-64 printable characters")
    if not relays or len(relays) > MAX_RELAYS or len(set(relays)) != len(relays):
        raise InvalidCardError("a card lists 1-8 distinct relays")
    for relay in relays:
        address = RelayAddress.split(relay)[1]
        if not address or len(address) > MAX_RELAY or not address.isprintable():
            raise InvalidCardError("relay address must be 1-255 printable characters")
        if len(relays) > 1:  # version 2 lists strict addresses
            try:
                RelayAddress.parse(relay)
            except ValueError as exc:
                raise InvalidCardError(str(exc)) from None


def _check_stealth(stealth: bytes | None) -> None:
    if stealth is None:
        return
    if not isinstance(stealth, bytes) or len(stealth) != STEALTH_SIZE:
        raise InvalidCardError(f"a stealth meta-address is {STEALTH_SIZE} bytes")
    if not (ed25519_point_ok(stealth[:32]) and ed25519_point_ok(stealth[32:])):
        raise InvalidCardError("a stealth meta-address is two valid Ed25519 points")
