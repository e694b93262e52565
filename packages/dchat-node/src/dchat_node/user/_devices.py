"""This node as one device of an identity: a trio shell around the device rules.

A node is either the identity's **primary** device or a **linked** device
(paired through :mod:`._pairing_service`); the rules for both, the device's
private state (:class:`dchat_identity.lowlevel.LocalDevice`) and revocation
(:func:`dchat_identity.lowlevel.plan_revocation`: a signed revocation and a
fresh sync epoch) live in dchat-identity. This shell keeps that state sealed
at rest under ``device.self``, publishes documents through
:class:`._documents.DocumentService`, attaches a linked device to the user
service and maps refusals to :class:`NodeStateError` codes. The primary
certifies itself lazily, the first time a device feature needs it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from dchat_identity import ContactCard, DocumentChain, IdentityDocument
from dchat_identity.lowlevel import (
    DocumentTrust,
    IdentityStateError,
    LocalDevice,
    device_rows,
    find_devices,
    plan_revocation,
)

from .._errors import NodeStateError
from ._guardian_state import load, one_step_at_a_time

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from dchat_crypto import SigningKey
    from dchat_identity import DeviceCertificate
    from dchat_identity.lowlevel import JoinedDevice

    from ._documents import DocumentService
    from ._service import UserService

__all__ = ("DeviceService",)

_STATE = "device.self"
_log = logging.getLogger("dchat.devices")


class DeviceService:
    """Own device keys, the identity's device list, linking and revoking devices."""

    def __init__(self, user: UserService, documents: DocumentService) -> None:
        self._user, self._documents = user, documents
        self._local: LocalDevice | None = None
        self._hooks: list[Callable[[IdentityDocument, bool], Awaitable[None]]] = []
        self._steps = trio.Lock()  # device-list edits read the list, then publish: one at a time

    def on_change(self, hook: Callable[[IdentityDocument, bool], Awaitable[None]]) -> None:
        """Call ``hook(new_document, rekeyed)`` after the device list changes."""
        self._hooks.append(hook)

    async def load(self) -> LocalDevice | None:
        """This device's state, if it is a primary that certified itself or a linked device."""
        if self._local is None:
            self._local = await load(self._user, _STATE, LocalDevice.from_bytes)
            if self._local is not None and self._local.linked:
                self._attach(self._local)
        return self._local

    def _attach(self, local: LocalDevice) -> None:
        """Send and receive chat as a linked device of the identity."""
        card = ContactCard.from_bytes(local.card)
        self._user.engines.link_device(local.device_key, local.exchange_key, card)
        self._user.mailboxes_changed()

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
        chain = await self._documents.own_chain()
        local, cert = LocalDevice.certify_primary(self._user.identity, now=self._user.now())
        await self._save(local)
        await self._documents.publish(devices=(*chain.head.devices, cert))
        _log.info("primary device certified")
        return local

    async def chain(self) -> DocumentChain:
        """The identity's document chain as this device knows it."""
        if not self._user.has_identity and await self.load() is None:
            raise NodeStateError("no_identity", "this node is neither an identity nor a device")
        return await self._documents.own_chain()

    async def check_fresh(self) -> None:
        """Refuse if this node already is an identity or one of its devices."""
        if self._user.has_identity or await self.load() is not None:
            raise NodeStateError("identity_exists", "this node already belongs to an identity")

    async def card(self) -> ContactCard:
        """The identity's contact card (a linked device keeps its own copy)."""
        local = await self.load()
        if local is not None and local.linked:
            return ContactCard.from_bytes(local.card)
        return await self._user.exported_card()

    def _identity_key(self) -> SigningKey:
        if not self._user.has_identity:
            raise NodeStateError(
                "not_primary", "only the primary device (holding the identity key) can do that"
            )
        return self._user.identity.signing_key

    async def _changed(self, doc: IdentityDocument, rekeyed: bool) -> None:
        for hook in self._hooks:
            await hook(doc, rekeyed)

    # -- primary: certify and revoke ---------------------------------------------

    @one_step_at_a_time
    async def add_device(self, cert: DeviceCertificate, facts: dict[str, str]) -> IdentityDocument:
        """Publish a document listing ``cert`` and remember its attested facts."""
        self._identity_key()
        local = await self.local()
        chain = await self._documents.own_chain()
        doc = await self._documents.publish(devices=(*chain.head.devices, cert))
        await self._save(local.with_facts(cert.device_key, facts))
        await self._changed(doc, False)
        await self._documents.share_with_own_devices()
        return doc

    @one_step_at_a_time
    async def revoke(self, which: str) -> DeviceCertificate:
        """Revoke the device named ``which`` (its name, or a prefix of its key in hex)."""
        key = self._identity_key()
        local = await self.local()
        chain = await self._documents.own_chain()
        matches = find_devices(chain.head.devices, which)
        if len(matches) != 1:
            problem = "no active device" if not matches else "more than one device"
            raise NodeStateError("unknown_device", f"{problem} matches {which!r}")
        cert = matches[0]
        try:
            plan = plan_revocation(key, chain, local, cert, now=self._user.now())
        except IdentityStateError as exc:
            raise NodeStateError("invalid_device", str(exc)) from None
        await self._save(plan.local)
        doc = await self._documents.publish(devices=plan.devices, revoked=plan.revoked)
        await self._changed(doc, True)
        await self._user.run(self._user.engines.forget_device, cert.device_key.to_bytes())
        _log.info("device revoked")
        return cert

    # -- linked device -----------------------------------------------------------

    async def adopt(self, joined: JoinedDevice) -> None:
        """Become a linked device of the joined identity (pairing succeeded)."""
        await self.check_fresh()
        local, chain = LocalDevice.adopt(joined, now=self._user.now())
        await self._documents.replace_own(chain)
        await self._save(local)
        self._attach(local)
        self._user.engines.set_document(chain.head.to_bytes())
        _log.info("linked to an identity")

    async def accept_document(self, data: bytes) -> None:
        """A linked device learns the next document version (a known one changes nothing)."""
        async with self._documents.own_steps:  # versions may arrive through two links at once
            chain = await self._documents.own_chain()
            if DocumentTrust.follow_own(chain, data, now=self._user.now()) is not None:
                await self._documents.replace_own(chain)

    async def accept_rekey(self, moved: LocalDevice | None) -> None:
        """Move a linked device to a newer sync epoch (``None``: it was not newer)."""
        if moved is not None:
            await self._save(moved)

    async def listing(self) -> list[dict[str, Any]]:
        """Every device the document lists or revoked, for display."""
        local = await self.load()
        return device_rows(await self.chain(), local)
