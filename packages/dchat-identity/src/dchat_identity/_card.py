"""Contact cards: what one person hands another so they can write to them.

A card carries the identity public key, the encryption key, the mailbox id and
the relay that holds the mailbox, all signed by the identity key. Its id is
derived from the key inside it, so a card cannot claim someone else's id, and
the signature stops anyone from swapping the encryption key or the relay.

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
    canonical_decode,
    canonical_encode,
)
from dchat_crypto import BadSignatureError, InvalidKeyError, PublicKey, VerifyKey

from ._errors import ExpiredError, InvalidCardError

if TYPE_CHECKING:
    from ._identity import Identity

__all__ = ("ContactCard",)

_PREFIX = "dchat-card:"
_DOMAIN = b"dchat-card-v1\x00"
_FIELDS = frozenset(
    {"v", "name", "identity", "encryption", "mailbox", "relay", "relay_node", "exp", "sig"}
)
_LIMITS = DecodeLimits(max_size=2048, max_depth=2, max_items=32)
MAX_NAME = 64
MAX_RELAY = 255


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
    relay: str
    relay_node: NodeId | None
    signature: bytes
    expires_ms: int | None = None

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
        relay: str,
        relay_node: NodeId | None = None,
        expires: float | None = None,
    ) -> ContactCard:
        """Create and sign a card for ``identity`` whose mail waits at ``relay``.

        ``expires`` (seconds since the epoch) limits the card's life (burners);
        recipients check it with :meth:`check_not_expired`.
        """
        _check_text(name, relay)
        unsigned = cls(
            name=name,
            identity_key=identity.signing_key.public_key,
            encryption_key=identity.encryption_key.public_key,
            mailbox=identity.mailbox_id,
            relay=relay,
            relay_node=relay_node,
            signature=b"",
            expires_ms=None if expires is None else int(expires * 1000),
        )
        signature = identity.signing_key.sign(_DOMAIN + canonical_encode(unsigned._fields()))
        return replace(unsigned, signature=signature)

    def _fields(self) -> dict[str, object]:
        fields: dict[str, object] = {
            "v": 1,
            "name": self.name,
            "identity": self.identity_key.to_bytes(),
            "encryption": self.encryption_key.to_bytes(),
            "mailbox": bytes(self.mailbox),
            "relay": self.relay,
        }
        if self.relay_node is not None:
            fields["relay_node"] = bytes(self.relay_node)
        if self.expires_ms is not None:
            fields["exp"] = self.expires_ms
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
            if fields.get_int("v") != 1:
                raise InvalidCardError("unsupported card version")
            card = cls(
                name=fields.get_str("name", max_len=MAX_NAME),
                identity_key=VerifyKey.from_bytes(fields.get_bytes("identity", size=32)),
                encryption_key=PublicKey.from_bytes(fields.get_bytes("encryption", size=32)),
                mailbox=MailboxId(fields.get_bytes("mailbox", size=32)),
                relay=fields.get_str("relay", max_len=MAX_RELAY),
                relay_node=NodeId(fields.get_bytes("relay_node", size=32))
                if fields.has("relay_node")
                else None,
                signature=fields.get_bytes("sig", size=64),
                expires_ms=fields.get_int("exp") if fields.has("exp") else None,
            )
            _check_text(card.name, card.relay)
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


def _check_text(name: str, relay: str) -> None:
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidCardError("card name must be 1-64 printable characters")
    if not relay or len(relay) > MAX_RELAY or not relay.isprintable():
        raise InvalidCardError("relay address must be 1-255 printable characters")
