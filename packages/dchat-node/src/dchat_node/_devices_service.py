"""This node as one device of an identity: its device keys, the device list, revocation.

A node is either the identity's **primary** device (it holds the identity key
and signs documents) or a **linked** device (paired through
:mod:`._pairing_service`: it holds only its own device keys, a certificate in
the identity document, the identity's card and the sync secret). The primary
certifies itself lazily, the first time a device feature needs it, and
publishes that certificate in a new document version.

Revoking a device publishes a document without its certificate and with a
signed :class:`dchat_identity.DeviceRevocation`, then moves sync to a new
epoch with a fresh random secret (not ``SyncKey.next_epoch()``, which the
revoked device could compute from the secret it already knows); the secret
is handed to each remaining device sealed to its own X25519 key.

Everything is kept sealed at rest under ``device.self`` (canonical CBOR).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode
from dchat_crypto import PrivateKey, SigningKey, VerifyKey
from dchat_identity import (
    ContactCard,
    DeviceCertificate,
    DeviceRevocation,
    DocumentChain,
    IdentityArgumentError,
    IdentityDocument,
    MalformedRecordError,
)
from dchat_identity.lowlevel import SyncKey

from ._errors import NodeStateError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._documents import DocumentService
    from ._user_service import UserService

__all__ = ("DeviceService", "LocalDevice")

_STATE = "device.self"
_LIMITS = DecodeLimits(max_size=256 * 1024, max_depth=4, max_items=4096)
_FIELDS = frozenset({"v", "role", "dev", "dh", "name", "keys", "card", "facts"})
_log = logging.getLogger("dchat.devices")


@dataclass(frozen=True, slots=True, repr=False)
class LocalDevice:
    """This device's private state (never logged: ``repr`` shows no secret)."""

    role: str  # "primary" or "linked"
    device_key: SigningKey
    exchange_key: PrivateKey
    name: str
    keys: tuple[SyncKey, ...]  # oldest first; the last is the current epoch
    card: bytes = b""  # a linked device's copy of the identity's card
    facts: dict[str, dict[str, str]] = field(default_factory=dict)  # attested, by device hex

    def __repr__(self) -> str:
        return f"LocalDevice({self.role}, {self.name!r})"

    @property
    def sync_key(self) -> SyncKey:
        """The sync key of the current epoch."""
        return self.keys[-1]

    def to_bytes(self) -> bytes:
        return canonical_encode(
            {
                "v": 1,
                "role": self.role,
                "dev": self.device_key.to_bytes(),
                "dh": self.exchange_key.to_bytes(),
                "name": self.name,
                "keys": [[k.epoch, k.secret] for k in self.keys],
                "card": self.card,
                "facts": self.facts,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalDevice:
        try:
            f = Fields(canonical_decode(data, _LIMITS), "device state", _FIELDS)
            keys = tuple(SyncKey(secret, epoch) for epoch, secret in f.get_list("keys"))
            facts = f.raw("facts")
            if not keys or not isinstance(facts, dict) or f.get_int("v") != 1:
                raise MalformedRecordError("malformed device state")
            return cls(
                f.get_str("role", max_len=16),
                SigningKey.from_bytes(f.get_bytes("dev", size=32)),
                PrivateKey.from_bytes(f.get_bytes("dh", size=32)),
                f.get_str("name", max_len=64),
                keys,
                f.get_bytes("card", max_size=2048),
                facts,
            )
        except (DecodeError, ValueError, TypeError, IdentityArgumentError):
            raise MalformedRecordError("malformed device state") from None


class DeviceService:
    """Own device keys, the identity's device list, linking and revoking devices."""

    def __init__(self, user: UserService, documents: DocumentService) -> None:
        self._user, self._documents = user, documents
        self._local: LocalDevice | None = None
        self._hooks: list[Callable[[IdentityDocument, bool], Awaitable[None]]] = []

    def on_change(self, hook: Callable[[IdentityDocument, bool], Awaitable[None]]) -> None:
        """Call ``hook(new_document, rekeyed)`` after the device list changes."""
        self._hooks.append(hook)

    async def load(self) -> LocalDevice | None:
        """This device's state, if it is a primary that certified itself or a linked device."""
        if self._local is None:
            stored = await self._user.state_get(_STATE)
            self._local = None if stored is None else LocalDevice.from_bytes(stored)
            if self._local is not None and self._local.role == "linked":
                self._attach(self._local)
        return self._local

    def _attach(self, local: LocalDevice) -> None:
        """Send and receive chat as a linked device of the identity."""
        card = ContactCard.from_bytes(local.card)
        self._user.use_linked_device(local.device_key, local.exchange_key, card)

    async def _save(self, local: LocalDevice) -> None:
        await self._user.state_put(_STATE, local.to_bytes())
        self._local = local

    async def local(self) -> LocalDevice:
        """This device's state, certifying the primary on first use."""
        local = await self.load()
        if local is not None:
            return local
        if not self._user.has_identity:
            raise NodeStateError("no_identity", "this node is neither an identity nor a device")
        return await self._certify_primary()

    async def _certify_primary(self) -> LocalDevice:
        # The primary device is the identity's own keys: its contact card already
        # says how to reach it, so peers address it the same way with or without
        # our document (see dchat_messaging.DeviceAddress).
        identity = self._user.identity
        device, exchange = identity.signing_key, identity.encryption_key
        chain = await self._documents.own_chain()
        cert = DeviceCertificate.issue(
            identity.signing_key,
            identity.identity_id,
            device.public_key,
            exchange.public_key,
            name="primary",
            now=self._user.now(),
        )
        local = LocalDevice("primary", device, exchange, "primary", (SyncKey(os.urandom(32)),))
        await self._save(local)
        await self._documents.publish(devices=(*chain.head.devices, cert))
        _log.info("primary device certified")
        return local

    @property
    def is_linked(self) -> bool:
        """Whether this node is a linked (non-primary) device."""
        return self._local is not None and self._local.role == "linked"

    async def chain(self) -> DocumentChain:
        """The identity's document chain as this device knows it."""
        if not self._user.has_identity and await self.load() is None:
            raise NodeStateError("no_identity", "this node is neither an identity nor a device")
        return await self._documents.own_chain()

    async def card(self) -> ContactCard:
        """The identity's contact card (a linked device keeps its own copy)."""
        local = await self.load()
        if local is not None and local.role == "linked":
            return ContactCard.from_bytes(local.card)
        return self._user.card

    def _identity_key(self) -> SigningKey:
        if not self._user.has_identity:
            raise NodeStateError(
                "not_primary", "only the primary device (holding the identity key) can do that"
            )
        return self._user.identity.signing_key

    # -- primary: certify and revoke ---------------------------------------------

    async def add_device(self, cert: DeviceCertificate, facts: dict[str, str]) -> IdentityDocument:
        """Publish a document listing ``cert`` and remember its attested facts."""
        self._identity_key()
        local = await self.local()
        chain = await self._documents.own_chain()
        doc = await self._documents.publish(devices=(*chain.head.devices, cert))
        hexkey = cert.device_key.to_bytes().hex()
        await self._save(replace(local, facts={**local.facts, hexkey: dict(facts)}))
        for hook in self._hooks:
            await hook(doc, False)
        await self._documents.share_with_own_devices()
        return doc

    async def revoke(self, which: str) -> DeviceCertificate:
        """Revoke the device named ``which`` (its name, or a prefix of its key in hex)."""
        key = self._identity_key()
        local = await self.local()
        chain = await self._documents.own_chain()
        cert = _find(chain.head.devices, which)
        if cert.device_key == local.device_key.public_key:
            raise NodeStateError("invalid_device", "the primary device cannot revoke itself")
        revocation = DeviceRevocation.issue(
            key, chain.subject, cert.device_key, seq=chain.head.seq + 1, now=self._user.now()
        )
        devices = tuple(c for c in chain.head.devices if c.device_key != cert.device_key)
        new_key = SyncKey(os.urandom(32), local.sync_key.epoch + 1)
        await self._save(replace(local, keys=(*local.keys[-1:], new_key)))
        doc = await self._documents.publish(
            devices=devices, revoked=(*chain.head.revoked, revocation)
        )
        for hook in self._hooks:
            await hook(doc, True)
        await self._user.forget_device(cert.device_key.to_bytes())
        _log.info("device revoked")
        return cert

    # -- linked device -----------------------------------------------------------

    async def adopt(
        self,
        *,
        cert: DeviceCertificate,
        device_key: SigningKey,
        exchange_key: PrivateKey,
        secret: bytes,
        epoch: int,
        card: ContactCard,
        document: IdentityDocument,
    ) -> None:
        """Become a linked device of ``document``'s identity (pairing succeeded)."""
        if self._user.has_identity or await self.load() is not None:
            raise NodeStateError("identity_exists", "this node already belongs to an identity")
        chain = DocumentChain(document, now=self._user.now())
        chain.check_device(cert.device_key)
        await self._documents.replace_own(chain)
        local = LocalDevice(
            "linked",
            device_key,
            exchange_key,
            cert.name,
            (SyncKey(secret, epoch),),
            card.to_bytes(),
        )
        await self._save(local)
        self._attach(local)
        self._user.set_own_document(chain.head.to_bytes())
        _log.info("linked to an identity")

    async def accept_document(self, data: bytes) -> IdentityDocument | None:
        """A linked device learns the next document version; ``None`` if it knew it."""
        chain = await self._documents.own_chain()
        doc = IdentityDocument.from_bytes(data)
        chain.update(doc, now=self._user.now())  # replayed, stale, forked, forged: raises
        await self._documents.replace_own(chain)
        return doc

    async def accept_rekey(self, key: SyncKey) -> None:
        """Move a linked device to a newer sync epoch."""
        local = await self.local()
        if key.epoch > local.sync_key.epoch:
            await self._save(replace(local, keys=(*local.keys[-1:], key)))

    async def listing(self) -> list[dict[str, Any]]:
        """Every device the document lists or revoked, for display."""
        local = await self.load()
        chain = await self.chain()
        me = None if local is None else local.device_key.public_key
        facts = {} if local is None else local.facts
        rows = [_row(c, "active", me, facts) for c in chain.head.devices]
        for entry in chain.head.revoked:
            rows.append(
                {"key": entry.device_key.to_bytes().hex(), "name": None, "status": "revoked",
                 "revoked_in": entry.seq, "this_device": entry.device_key == me}
            )  # fmt: skip
        return rows


def _row(
    cert: DeviceCertificate, status: str, me: VerifyKey | None, facts: dict[str, Any]
) -> dict[str, Any]:
    hexkey = cert.device_key.to_bytes().hex()
    return {
        "key": hexkey,
        "name": cert.name,
        "status": status,
        "issued_ms": cert.issued_ms,
        "this_device": cert.device_key == me,
        "attested": facts.get(hexkey),
    }


def _find(devices: tuple[DeviceCertificate, ...], which: str) -> DeviceCertificate:
    text = which.strip().lower()
    matches = [
        c for c in devices
        if c.name == which or (len(text) >= 8 and c.device_key.to_bytes().hex().startswith(text))
    ]  # fmt: skip
    if len(matches) != 1:
        problem = "no active device" if not matches else "more than one device"
        raise NodeStateError("unknown_device", f"{problem} matches {which!r}")
    return matches[0]
