"""Who a message goes to: device addresses, and this device's own keys.

An identity speaks through one or more *devices*. Each device has an Ed25519
device key (it signs the device's prekey bundles and its side of session
setup), an X25519 key (the outer sealed box and session setup's static key)
and a mailbox at each of the identity's home relays (the card lists them; a
message goes to every one of them, or the first ``k``, see
:class:`~dchat_messaging.MessagingEngine`). The primary device is the identity's
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
    RelayAddress,
    canonical_decode,
    canonical_encode,
)
from dchat_crypto import InvalidKeyError, PrivateKey, PublicKey, SigningKey, VerifyKey

from ._errors import EngineStateError

if TYPE_CHECKING:
    from dchat_identity import ContactCard, DeviceCertificate

__all__ = ("DeviceAddress", "DeviceKeys")

_FIELDS: Final = frozenset({"v", "id", "dev", "dh", "mb", "relay", "node", "relays"})
MAX_RELAYS: Final = 8
_LIMITS: Final = DecodeLimits(max_size=4096, max_depth=2, max_items=32)


@dataclass(frozen=True, slots=True)
class DeviceAddress:
    """Where and how to reach one device of an identity.

    Attributes:
        identity: The identity the device speaks for.
        device_key: The device's Ed25519 key (the identity key for a primary device).
        exchange_key: The device's X25519 key.
        mailbox: The device's mailbox.
        relays: The relays holding the mailbox (the card's, in its order):
            ``[NODEID@]HOST:PORT`` texts.
    """

    identity: IdentityId
    device_key: VerifyKey
    exchange_key: PublicKey
    mailbox: MailboxId
    relays: tuple[str, ...]

    def paths(self, k: int | None = None) -> list[str]:
        """The relay addresses (without node ids) a message to this device goes to.

        The first ``k`` of the relays (``None``: all of them), duplicates dropped.
        """
        chosen = self.relays if k is None else self.relays[: max(1, k)]
        return list(dict.fromkeys(RelayAddress.split(text)[1] for text in chosen))

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
            card.relays,
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
            card.relays,
        )

    def to_bytes(self) -> bytes:
        """Canonical encoding (stored with queued messages)."""
        value: dict[str, object] = {
            "v": 1,
            "id": bytes(self.identity),
            "dev": self.device_id,
            "dh": self.exchange_key.to_bytes(),
            "mb": bytes(self.mailbox),
        }
        if len(self.relays) > 1:
            value["relays"] = list(self.relays)
            return canonical_encode(value)
        node, value["relay"] = RelayAddress.split(self.relays[0])
        if node is not None:
            value["node"] = bytes(node)
        return canonical_encode(value)

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceAddress:
        """Decode :meth:`to_bytes` output.

        Raises:
            EngineStateError: malformed.
        """
        try:
            f = Fields(canonical_decode(data, _LIMITS), "device address", _FIELDS)
            if f.has("relays"):
                listed = f.get_list("relays", max_len=MAX_RELAYS)
                relays = tuple(r for r in listed if isinstance(r, str) and 0 < len(r) <= 511)
                if len(relays) != len(listed) or not relays:
                    raise ValueError("bad relays")
            else:
                node = NodeId(f.get_bytes("node", size=32)) if f.has("node") else None
                relays = (RelayAddress.join(node, f.get_str("relay", max_len=255)),)
            return cls(
                IdentityId(f.get_bytes("id", size=32)),
                VerifyKey.from_bytes(f.get_bytes("dev", size=32)),
                PublicKey.from_bytes(f.get_bytes("dh", size=32)),
                MailboxId(f.get_bytes("mb", size=32)),
                relays,
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
