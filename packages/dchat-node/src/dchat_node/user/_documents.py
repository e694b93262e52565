"""Identity documents on a user node: the trio shell around the document-trust rules.

Which documents to believe, and whom to forward them to, is decided by
:class:`dchat_identity.lowlevel.DocumentTrust` (trust on first use from the
key that sent it, hash-chained updates, refused forks and replays, rotations
only with the new card); lookups and restores by its companion functions.
This shell stores the chains, sends and routes the ``identity.*`` control
messages, and tells the messaging directory every chain it believes.

Our own document is created lazily (version 1 the first time anything
needs it) and every change (a device linked or revoked, a new guardian set,
a profile commitment, a recovery) is a successor signed by the identity key.
The whole chain is kept sealed at rest in the settings table under
``identity.doc.own``; a contact's chain under ``identity.doc.peer.<id>``.
A version whose key differs from the previous one is a recovery:
:meth:`DocumentService.on_rotation` callbacks hear of it, with the card the
new key sent along (its new mailbox and relay). Quiet contacts (those a
burner writes to) never receive our document.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from dchat_core import IdentityId
from dchat_identity import ContactCard, DocumentChain, Identity, IdentityDocument
from dchat_identity.lowlevel import (
    DOCUMENT_KIND,
    HEAD_KIND,
    LEARNED,
    LOOKUP_KIND,
    LOOKUP_MESSAGE,
    PEER_KIND,
    DocumentTrust,
    IdentityStateError,
    answer_lookup,
    first_chain,
    restored_chain,
)

from ._guardian_state import load

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from dchat_messaging import MessageReceived as OpenedMessage

    from ._service import UserService

__all__ = ("DOCUMENT_KIND", "HEAD_KIND", "LOOKUP_KIND", "PEER_KIND", "DocumentService")

_OWN = "identity.doc.own"
_RESTORING = "identity.doc.restoring"
_PEER = "identity.doc.peer."

_log = logging.getLogger("dchat.documents")

if TYPE_CHECKING:
    _RotationCallback = Callable[[DocumentChain, IdentityDocument, ContactCard], Awaitable[None]]


class DocumentService:
    """Publishes this identity's document and follows the documents of contacts."""

    def __init__(self, user: UserService) -> None:
        self._user = user
        self._rotation: list[_RotationCallback] = []
        # One contact document at a time: versions arriving through two links at once
        # would each extend the chain both found, and the later would be refused.
        self._following = trio.Lock()
        # Our own chain likewise (two publishes at once would sign two different next versions).
        self.own_steps = trio.Lock()
        user.agent.on_control(LOOKUP_KIND, self._lookup_received)
        user.agent.on_control(HEAD_KIND, self._head_received)
        for kind in (DOCUMENT_KIND, PEER_KIND):
            user.agent.on_control(kind, lambda message, _identity: self._received(message))
            user.agent.on_device_control(kind, self._received)
        user.on_document_learned(
            lambda sender, data: self._follow_peer(LEARNED, data, sender, None)
        )
        user.on_contact_added(self._contact_added)

    async def load(self) -> None:
        """Tell the messaging directory every chain we follow (at start-up)."""
        own = await self._stored_own()
        if own is not None:
            self._follow_own(own)
        async for chain in self._contact_chains():
            self._user.directory.set_chain(chain)

    def _follow_own(self, chain: DocumentChain) -> None:
        self._user.directory.set_chain(chain, own=True)
        self._user.engines.set_document(chain.head.to_bytes())

    def on_rotation(self, callback: _RotationCallback) -> None:
        """Call ``callback(chain, previous_head, sender_card)`` when a contact's key rotates.

        ``sender_card`` is the card that came with the rotated document (a
        rotation without one is refused before any callback). A callback that
        raises refuses the new version (it is not stored).
        """
        self._rotation.append(callback)

    # -- our own document -------------------------------------------------------

    async def own_chain(self) -> DocumentChain:
        """Our document chain, creating version 1 if there is none yet."""
        stored = await self._stored_own()
        if stored is not None:
            return stored
        restoring = await self._user.state_get(_RESTORING) is not None
        chain = first_chain(self._user.identity, restoring=restoring, now=self._user.now())
        await self._user.state_put(_OWN, chain.to_bytes())
        self._follow_own(chain)
        return chain

    async def _stored_own(self) -> DocumentChain | None:
        return await load(self._user, _OWN, DocumentChain.from_bytes)

    async def head(self) -> IdentityDocument:
        """Our current document."""
        return (await self.own_chain()).head

    async def publish(self, *, signer: Identity | None = None, **changes: Any) -> IdentityDocument:
        """Sign the next version with ``changes``, store it, and send it to every contact.

        ``signer`` is the identity signing it (default ours); it differs only
        for a recovery, whose ``changes`` then carry the certificate.
        """
        async with self.own_steps:
            chain = await self.own_chain()
            identity = signer if signer is not None else self._user.identity
            doc = DocumentTrust.next_version(
                chain, identity.signing_key, now=self._user.now(), **changes
            )
            await self._user.state_put(_OWN, chain.to_bytes())
            self._follow_own(chain)
        await self.announce(doc, sender=identity)
        return doc

    async def announce(
        self,
        doc: IdentityDocument,
        *,
        sender: Identity | None = None,
        sender_card: ContactCard | None = None,
    ) -> None:
        """Send ``doc`` to every contact that is not a burner's."""
        for card in await self._user.run(self._user.book.announced):
            await self._user.send_control(
                card, DOCUMENT_KIND, doc.to_bytes(), sender=sender, sender_card=sender_card
            )

    async def replace_own(self, chain: DocumentChain) -> None:
        """Adopt ``chain`` as ours (a recovered identity continues the old chain)."""
        await self._user.state_put(_OWN, chain.to_bytes())
        self._follow_own(chain)

    async def mark_restoring(self) -> None:
        """Our keys were restored: our chain must come from contacts (:meth:`resync`)."""
        await self._user.state_put(_RESTORING, b"\x01")

    async def restoring(self) -> bool:
        """Whether we still wait for a contact to give us back our document."""
        return await self._user.state_get(_RESTORING) is not None

    async def _contact_added(self, card: ContactCard) -> None:
        if await self.restoring():
            return
        if self._user.has_identity:
            doc = await self.head()
            # Our card rides along: a contact that follows an older key learns
            # our new mailbox from it when this document is a recovery.
            await self._user.send_control(
                card, DOCUMENT_KIND, doc.to_bytes(), sender_card=self._user.card
            )

    # -- restoring our chain from contacts -------------------------------------

    async def resync(self, names: list[str]) -> int:
        """Ask the contacts ``names`` for the newest version of our document they hold.

        After restoring the keys from a recovery phrase the node has lost its
        document chain; contacts that follow it answer with its head, which
        only our key can have signed. The newest answer becomes our head.
        """
        cards = [await self._user.run(self._user.book.find, name) for name in names]
        for card in cards:
            await self._user.send_control(card, LOOKUP_KIND, LOOKUP_MESSAGE)
        return len(cards)

    async def _lookup_received(self, message: OpenedMessage, _identity: Identity) -> None:
        chain = await self.peer_chain(message.sender)
        head = answer_lookup(chain, message.data, message.sender)
        card = await self._user.run(self._user.book.card_of, message.sender)
        if card is None:
            raise IdentityStateError("identity lookups are answered for contacts only")
        await self._user.send_control(card, HEAD_KIND, head.to_bytes())

    async def _head_received(self, message: OpenedMessage, identity: Identity) -> None:
        main = identity is self._user.identity
        chain = restored_chain(identity, await self._stored_own(), message.data, main=main)
        if chain is None:
            return
        await self.replace_own(chain)
        await self._user.state_delete(_RESTORING)
        _log.info("restored our identity document", extra={"seq": chain.head.seq})

    # -- contacts' documents ----------------------------------------------------

    async def peer_chain(self, subject: IdentityId) -> DocumentChain | None:
        """The chain we follow for ``subject``, if we have received any version."""
        return await load(self._user, _PEER + str(subject), DocumentChain.from_bytes)

    async def _received(self, message: OpenedMessage) -> None:
        route = DOCUMENT_KIND if message.kind == DOCUMENT_KIND else PEER_KIND
        await self._follow_peer(route, message.data, message.sender, message.sender_card)

    async def share_with_own_devices(self) -> None:
        """Forward every contact's document we follow to our other devices."""
        async for chain in self._contact_chains():
            await self._user.send_to_own_devices(PEER_KIND, chain.head.to_bytes())

    async def _contact_chains(self) -> AsyncIterator[DocumentChain]:
        for contact in await self._user.run(self._user.book.entries):
            chain = await self.peer_chain(IdentityId.parse(contact.identity_id))
            if chain is not None:
                yield chain

    async def _follow_peer(
        self, route: str, data: bytes, sender: IdentityId, card: ContactCard | None
    ) -> None:
        async with self._following:
            doc = IdentityDocument.from_bytes(data)
            trust = DocumentTrust(
                self._user.directory.own_identity, linked=self._user.engines.linked is not None
            )
            step = trust.accept(
                route, await self.peer_chain(doc.subject), doc, sender=sender, card=card,
                now=self._user.now(),
            )  # fmt: skip
            if step is None:
                return
            if step.rotated_from is not None and card is not None:
                for callback in self._rotation:
                    await callback(step.chain, step.rotated_from, card)
            await self._user.state_put(_PEER + str(doc.subject), step.chain.to_bytes())
            self._user.directory.set_chain(step.chain)
            _log.info("accepted an identity document", extra={"seq": doc.seq})
            if step.forward:
                await self._user.send_to_own_devices(PEER_KIND, data)
