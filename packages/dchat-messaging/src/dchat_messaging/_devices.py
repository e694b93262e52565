"""Who a message goes to: device addresses, and this device's own keys.

An identity speaks through one or more *devices*. Each device has an Ed25519
device key (it signs the device's prekey bundles and its side of session
setup), an X25519 key (the outer sealed box and session setup's static key)
and a mailbox at the identity's relay. The primary device is the identity's
own keys: its device key is the identity key and its mailbox the one on the
contact card, so a contact card alone is enough to reach it. A linked device
is certified in the identity document and reads the mailbox of its device key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

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
from dchat_crypto import InvalidKeyError, PrivateKey, PublicKey, SigningKey, VerifyKey

from ._errors import EngineStateError

if TYPE_CHECKING:
    from dchat_identity import ContactCard, DeviceCertificate

__all__ = ("DeviceAddress", "DeviceKeys")

_FIELDS: Final = frozenset({"v", "id", "dev", "dh", "mb", "relay", "node"})
_LIMITS: Final = DecodeLimits(max_size=1024, max_depth=1, max_items=32)


@dataclass(frozen=True, slots=True)
class DeviceAddress:
    """Where and how to reach one device of an identity.

    Attributes:
        identity: The identity the device speaks for.
        device_key: The device's Ed25519 key (the identity key for a primary device).
        exchange_key: The device's X25519 key.
        mailbox: The device's mailbox.
        relay: ``HOST:PORT`` of the relay holding the mailbox.
        relay_node: That relay's node id, when pinned.
    """

    identity: IdentityId
    device_key: VerifyKey
    exchange_key: PublicKey
    mailbox: MailboxId
    relay: str
    relay_node: NodeId | None = None

    @property
    def device_id(self) -> bytes:
        """The raw device key: the device's stable handle."""
        return self.device_key.to_bytes()

    @property
    def is_primary(self) -> bool:
        """Whether this is the identity's own key (the contact card's device)."""
        return IdentityId.derive(self.device_key.to_bytes()) == self.identity

    @classmethod
    def primary(cls, card: ContactCard) -> DeviceAddress:
        """The primary device of the identity ``card`` describes."""
        return cls(
            card.identity_id,
            card.identity_key,
            card.encryption_key,
            card.mailbox,
            card.relay,
            card.relay_node,
        )

    @classmethod
    def linked(cls, card: ContactCard, cert: DeviceCertificate) -> DeviceAddress:
        """A device certified for ``card``'s identity; its mailbox is its device key's."""
        if cert.device_key == card.identity_key:
            return cls.primary(card)
        return cls(
            card.identity_id,
            cert.device_key,
            cert.exchange_key,
            MailboxId.derive(cert.device_key.to_bytes()),
            card.relay,
            card.relay_node,
        )

    def to_bytes(self) -> bytes:
        """Canonical encoding (stored with queued messages)."""
        value: dict[str, object] = {
            "v": 1,
            "id": bytes(self.identity),
            "dev": self.device_id,
            "dh": self.exchange_key.to_bytes(),
            "mb": bytes(self.mailbox),
            "relay": self.relay,
        }
        if self.relay_node is not None:
            value["node"] = bytes(self.relay_node)
        return canonical_encode(value)

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceAddress:
        """Decode :meth:`to_bytes` output.

        Raises:
            EngineStateError: malformed.
        """
        try:
            f = Fields(canonical_decode(data, _LIMITS), "device address", _FIELDS)
            node = NodeId(f.get_bytes("node", size=32)) if f.has("node") else None
            return cls(
                IdentityId(f.get_bytes("id", size=32)),
                VerifyKey.from_bytes(f.get_bytes("dev", size=32)),
                PublicKey.from_bytes(f.get_bytes("dh", size=32)),
                MailboxId(f.get_bytes("mb", size=32)),
                f.get_str("relay", max_len=255),
                node,
            )
        except (DecodeError, InvalidKeyError, ValueError):
            raise EngineStateError("a stored device address is malformed") from None


@dataclass(frozen=True, slots=True, repr=False)
class DeviceKeys:
    """This device's private keys and the identity it speaks for.

    Attributes:
        identity: The identity's id.
        device_key: Signs this device's prekey bundles and session setups
            (the identity key itself on the primary device).
        exchange_key: This device's X25519 key (the identity's encryption key
            on the primary device).
        mailbox: Where this device's mail waits.
        card: The identity's contact card, sent in each session's first message.
        document: The identity's current document (signed, listing this
            device), sent with the card so that peers can check this device.
    """

    identity: IdentityId
    device_key: SigningKey
    exchange_key: PrivateKey
    mailbox: MailboxId
    card: ContactCard | None = None
    document: bytes | None = None

    def __repr__(self) -> str:
        return f"DeviceKeys({self.identity})"

    @property
    def device_id(self) -> bytes:
        """The raw public device key."""
        return self.device_key.public_key.to_bytes()
