"""Identity documents on a user node: our own chain, and the chains of our contacts.

Our own document (:class:`dchat_identity.IdentityDocument`) is created lazily
(version 1 the first time anything needs it) and every change (a device
linked or revoked, a new guardian set, a profile commitment, a recovery) is a
successor signed by the identity key. The whole chain is kept sealed at rest
in the settings table under ``identity.doc.own``.

Contacts learn documents from ``identity.document`` control messages: the
head is sent to a contact when they are added and to every contact when it
changes. A receiving node keeps a :class:`dchat_identity.DocumentChain` per
subject (``identity.doc.peer.<id>``). The first document it accepts for a
subject must be signed by the very key that sent the message (trust on first
use, like the card exchange); every later one must extend the chain
(replayed, stale, forked or forged versions are refused with the typed errors
of :mod:`dchat_identity`). A version whose key differs from the previous one
is a recovery: :meth:`DocumentService.on_rotation` callbacks hear of it,
with the card the new key sent along (its new mailbox and relay).

Quiet contacts (those a burner writes to) never receive our document.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from dchat_core import IdentityId
from dchat_identity import (
    BrokenChainError,
    ContactCard,
    DocumentChain,
    ForgedRecordError,
    Identity,
    IdentityDocument,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from dchat_messaging import OpenedMessage

    from ._user_service import UserService

__all__ = ("DOCUMENT_KIND", "DocumentService")

DOCUMENT_KIND = "identity.document"
_OWN = "identity.doc.own"
_PEER = "identity.doc.peer."

_log = logging.getLogger("dchat.documents")

if TYPE_CHECKING:
    _RotationCallback = Callable[
        [DocumentChain, IdentityDocument, ContactCard | None], Awaitable[None]
    ]


class DocumentService:
    """Publishes this identity's document and follows the documents of contacts."""

    def __init__(self, user: UserService) -> None:
        self._user = user
        self._rotation: list[_RotationCallback] = []
        user.on_control(DOCUMENT_KIND, self._received)
        user.on_contact_added(self._contact_added)

    def on_rotation(self, callback: _RotationCallback) -> None:
        """Call ``callback(chain, previous_head, sender_card)`` when a contact's key rotates.

        ``sender_card`` is the card that came with the rotated document, if any.
        A callback that raises refuses the new version (it is not stored).
        """
        self._rotation.append(callback)

    # -- our own document -------------------------------------------------------

    async def own_chain(self) -> DocumentChain:
        """Our document chain, creating version 1 if there is none yet."""
        stored = await self._user.state_get(_OWN)
        if stored is not None:
            return DocumentChain.from_bytes(stored)
        identity = self._user.identity
        genesis = IdentityDocument.genesis(
            identity.signing_key, identity.encryption_key.public_key, now=self._user.now()
        )
        chain = DocumentChain(genesis)
        await self._user.state_put(_OWN, chain.to_bytes())
        return chain

    async def head(self) -> IdentityDocument:
        """Our current document."""
        return (await self.own_chain()).head

    async def publish(self, *, signer: Identity | None = None, **changes: Any) -> IdentityDocument:
        """Sign the next version with ``changes``, store it, and send it to every contact.

        ``signer`` is the identity signing it (default ours); it differs only
        for a recovery, whose ``changes`` then carry the certificate.
        """
        chain = await self.own_chain()
        identity = signer if signer is not None else self._user.identity
        doc = chain.head.successor(identity.signing_key, now=self._user.now(), **changes)
        chain.update(doc)
        await self._user.state_put(_OWN, chain.to_bytes())
        for contact in await self._user.contacts():
            if self._user.is_quiet(contact.identity_id):
                continue
            card = ContactCard.from_bytes(contact.card)
            await self._user.send_control(card, DOCUMENT_KIND, doc.to_bytes(), sender=identity)
        return doc

    async def replace_own(self, chain: DocumentChain) -> None:
        """Adopt ``chain`` as ours (a recovered identity continues the old chain)."""
        await self._user.state_put(_OWN, chain.to_bytes())

    async def _contact_added(self, card: ContactCard) -> None:
        if self._user.has_identity:
            doc = await self.head()
            # Our card rides along: a contact that follows an older key learns
            # our new mailbox from it when this document is a recovery.
            await self._user.send_control(
                card, DOCUMENT_KIND, doc.to_bytes(), sender_card=self._user.card
            )

    # -- contacts' documents ----------------------------------------------------

    async def peer_chain(self, subject: IdentityId) -> DocumentChain | None:
        """The chain we follow for ``subject``, if we have received any version."""
        stored = await self._user.state_get(_PEER + str(subject))
        return None if stored is None else DocumentChain.from_bytes(stored)

    async def _received(self, message: OpenedMessage, _identity: Identity) -> None:
        doc = IdentityDocument.from_bytes(message.data)
        if IdentityId.derive(doc.identity_key.to_bytes()) != message.sender:
            raise ForgedRecordError  # a document must come from the key it names
        chain = await self.peer_chain(doc.subject)
        now = self._user.now()
        if chain is None:
            if doc.recovery is not None:
                raise BrokenChainError("a recovered identity must extend a chain we follow")
            chain = DocumentChain(doc, now=now)
        else:
            previous = chain.head
            chain.update(doc, now=now)
            if doc.identity_key != previous.identity_key:
                for callback in self._rotation:
                    await callback(chain, previous, message.sender_card)
        await self._user.state_put(_PEER + str(doc.subject), chain.to_bytes())
        _log.info("accepted an identity document", extra={"seq": doc.seq})
