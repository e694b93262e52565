"""Which identity documents a node believes: the rules, sans-IO.

Contacts learn documents from ``identity.document`` control messages (the
head is sent to a contact when they are added and to every contact when it
changes); a node's own devices forward the documents they follow as
``identity.peer``. A receiving node keeps one :class:`DocumentChain` per
subject, and these functions decide what goes into it:

* the first document accepted for a subject is pinned (trust on first use,
  like the card exchange), but a contact's document must be signed by the
  very key that sent it (:func:`check_origin`), and a recovery document
  never starts a chain (it must extend one we follow);
* every later document must extend the chain (:meth:`DocumentChain.update`:
  hash-chained, revocations never withdrawn; replayed, stale, forked or
  forged versions are refused with typed errors);
* a version whose key differs from the previous one is a recovery: it must
  come with the card of the new key (:class:`InvalidCardError` otherwise),
  and :class:`Followed` reports the previous head so the caller can retire
  the old key.

A node that restored its keys from a phrase has lost its own chain: it asks
contacts (``identity.lookup``, :data:`LOOKUP_MESSAGE`) and they answer with
the head they follow (``identity.head``, :func:`answer_lookup`), which only
its key can have signed; the newest answer wins (:func:`restored_chain`).
Until then it must not start a new chain, which would fork the history its
contacts hold (:func:`first_chain`).

:class:`DocumentTrust` is the agent a node's document shell calls for every
contact document it hears of, whatever the route: from the contact itself
(:data:`DOCUMENT_KIND`: signed by the key that sent it), from one of our own
devices (:data:`PEER_KIND`: only our identity may forward), or riding on a
device's first message (:data:`LEARNED`: already checked by messaging). It
decodes, checks and follows the document, and answers with an
:class:`Accepted` step: the chain to store, the rotation to report, and
whether to forward the document to our other devices (a document that came
from them is not sent back, and a linked device leaves that to the
primary). A redelivery by a device or a first message is not news
(``None``); a contact re-sending a document it sent before is refused, as
before, so its sender learns of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DecodeLimits, IdentityId, canonical_decode, canonical_encode

from ._chain import DocumentChain, verify_update
from ._document import IdentityDocument
from ._errors import (
    BrokenChainError,
    ForgedRecordError,
    IdentityArgumentError,
    IdentityStateError,
    InvalidCardError,
    MalformedRecordError,
    ReplayedDocumentError,
)

if TYPE_CHECKING:
    from dchat_crypto import SigningKey

    from ._card import ContactCard
    from ._identity import Identity

__all__ = (
    "DOCUMENT_KIND",
    "HEAD_KIND",
    "LEARNED",
    "LOOKUP_KIND",
    "LOOKUP_MESSAGE",
    "PEER_KIND",
    "Accepted",
    "DocumentTrust",
    "Followed",
    "answer_lookup",
    "check_forwarder",
    "check_origin",
    "first_chain",
    "follow",
    "restored_chain",
)

DOCUMENT_KIND: Final = "identity.document"
PEER_KIND: Final = "identity.peer"
LOOKUP_KIND: Final = "identity.lookup"
HEAD_KIND: Final = "identity.head"
LEARNED: Final = "identity.learned"  # a route, never a wire kind: see DocumentTrust
LOOKUP_MESSAGE: Final = canonical_encode({"v": 1})
_LOOKUP_LIMITS: Final = DecodeLimits(max_size=64, max_depth=1, max_items=4)


@dataclass(frozen=True, slots=True)
class Followed:
    """A contact's chain after accepting a document.

    Attributes:
        chain: The chain to store (and to believe from now on).
        rotated_from: The previous head, if this document rotated the identity key.
    """

    chain: DocumentChain
    rotated_from: IdentityDocument | None = None


def check_origin(doc: IdentityDocument, sender: IdentityId) -> None:
    """A contact's document must come from the key it names.

    Raises:
        ForgedRecordError: ``sender`` is not that key's identity.
    """
    if IdentityId.derive(doc.identity_key.to_bytes()) != sender:
        raise ForgedRecordError


def check_forwarder(sender: IdentityId, own: IdentityId | None) -> None:
    """Only our own devices forward contacts' documents (``identity.peer``).

    Raises:
        ForgedRecordError: ``sender`` is not our identity.
    """
    if own is None or sender != own:
        raise ForgedRecordError


def follow(
    chain: DocumentChain | None,
    doc: IdentityDocument,
    *,
    card: ContactCard | None,
    now: float,
) -> Followed:
    """Accept ``doc`` into the chain we follow for its subject (``None``: the first one).

    ``card`` is the card that came with the document, if any; a rotation needs it.
    A refused document leaves ``chain`` as it was.

    Raises:
        BrokenChainError: a recovery document for a subject we do not follow.
        DocumentChainError, ForgedRecordError, ExpiredError: as :meth:`DocumentChain.update`.
        InvalidCardError: the key rotated but no card of the new keys came along.
    """
    if chain is None:
        if doc.recovery is not None:
            raise BrokenChainError("a recovered identity must extend a chain we follow")
        return Followed(DocumentChain(doc, now=now))
    previous = chain.head
    rotated = doc.identity_key != previous.identity_key and doc.seq == previous.seq + 1
    if rotated:
        verify_update(previous, doc, now=now)  # a forgery is refused as such, before the card
        if (
            card is None
            or card.identity_key != doc.identity_key
            or card.encryption_key != doc.encryption_key
        ):
            raise InvalidCardError("a recovered identity must send its new card")
    chain.update(doc, now=now)
    return Followed(chain, previous if rotated else None)


def answer_lookup(chain: DocumentChain | None, data: bytes, sender: IdentityId) -> IdentityDocument:
    """The head to send back to ``sender`` asking for its own document.

    Raises:
        DecodeError, MalformedRecordError: ``data`` is not :data:`LOOKUP_MESSAGE`.
        IdentityStateError: we follow no chain signed by the asking key.
    """
    if canonical_decode(data, _LOOKUP_LIMITS) != {"v": 1}:
        raise MalformedRecordError("an identity lookup is {'v': 1}")
    if chain is None or IdentityId.derive(chain.identity_key.to_bytes()) != sender:
        # We answer only the key that signs the chain we follow for it.
        raise IdentityStateError("no document of the asking identity is followed here")
    return chain.head


def first_chain(identity: Identity, *, restoring: bool, now: float) -> DocumentChain:
    """Our chain's version 1, unless our keys were restored (then contacts hold it).

    Raises:
        IdentityStateError: ``restoring``: a new version 1 would fork our history.
    """
    if restoring:
        raise IdentityStateError(
            "this identity was restored from its phrase: ask contacts for its document "
            "first (resync)"
        )
    genesis = IdentityDocument.genesis(
        identity.signing_key, identity.encryption_key.public_key, now=now
    )
    return DocumentChain(genesis)


def restored_chain(
    identity: Identity, own: DocumentChain | None, data: bytes, *, main: bool = True
) -> DocumentChain | None:
    """Our chain from a contact's ``identity.head`` answer; ``None`` if ours is as new.

    ``main`` says whether ``identity`` is the node's main identity (burners have
    no chain to restore).

    Raises:
        MalformedRecordError: not a document.
        ForgedRecordError: not signed by our key.
        BrokenChainError: another identity's document.
    """
    doc = IdentityDocument.from_bytes(data)
    if doc.identity_key != identity.signing_key.public_key:
        raise ForgedRecordError  # only our own key can have signed our document
    if doc.subject != identity.identity_id or not main:
        raise BrokenChainError("that document is not this identity's")
    if own is not None and own.head.seq >= doc.seq:
        return None  # an older or equal version: keep ours (answers race; the newest wins)
    return DocumentChain(doc)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A contact's document the agent accepted: what the shell stores and sends.

    Attributes:
        chain: The chain to store under ``chain.subject`` and believe from now on.
        rotated_from: The previous head, if the identity key rotated (a recovery).
        forward: Send ``chain.head`` to our other devices as :data:`PEER_KIND`.
    """

    chain: DocumentChain
    rotated_from: IdentityDocument | None
    forward: bool


class DocumentTrust:
    """The document shell's decisions, one call per event (sans-IO, see the module).

    Args:
        own: Our identity (``None`` on a node that has none yet).
        linked: Whether this node is a linked device (it forwards nothing).
    """

    def __init__(self, own: IdentityId | None, *, linked: bool) -> None:
        self._own, self._linked = own, linked

    def accept(
        self,
        route: str,
        chain: DocumentChain | None,
        doc: IdentityDocument,
        *,
        sender: IdentityId,
        card: ContactCard | None,
        now: float,
    ) -> Accepted | None:
        """Follow ``doc``, which came by ``route`` (:data:`DOCUMENT_KIND`, :data:`PEER_KIND`
        or :data:`LEARNED`) from ``sender``.

        ``chain`` is the stored chain of ``doc.subject`` (``None`` if none);
        ``card`` the card that came along (only a contact's own message
        carries one that counts).

        Raises:
            IdentityArgumentError: an unknown route, or the chain of another subject.
            ForgedRecordError: a contact's document from another key, or a
                forward from someone who is not our identity.
            DocumentChainError, ExpiredError, InvalidCardError: as :func:`follow`
                (a replay only from a contact).
        """
        if route not in (DOCUMENT_KIND, PEER_KIND, LEARNED):
            raise IdentityArgumentError(f"no document route {route!r}")
        if route == DOCUMENT_KIND:
            check_origin(doc, sender)
        else:
            if route == PEER_KIND:
                check_forwarder(sender, self._own)
            card = None
        if chain is not None and chain.subject != doc.subject:
            raise IdentityArgumentError("that chain is another identity's")
        try:
            followed = follow(chain, doc, card=card, now=now)
        except ReplayedDocumentError:
            if route == DOCUMENT_KIND:
                raise
            return None  # a device's redelivery, or a document we already follow
        forward = route != PEER_KIND and not self._linked
        return Accepted(followed.chain, followed.rotated_from, forward)

    @staticmethod
    def follow_own(chain: DocumentChain, data: bytes, *, now: float) -> IdentityDocument | None:
        """A linked device extends our own chain with ``data`` from the primary.

        Returns the new head, or ``None`` if ``data`` is a version we already
        hold (sync items are redelivered).

        Raises:
            MalformedRecordError: ``data`` is not a document.
            DocumentChainError, ForgedRecordError, ExpiredError: as :meth:`DocumentChain.update`.
        """
        doc = IdentityDocument.from_bytes(data)
        try:
            chain.update(doc, now=now)
        except ReplayedDocumentError:
            return None
        return doc

    @staticmethod
    def next_version(
        chain: DocumentChain, signer: SigningKey, *, now: float, **changes: Any
    ) -> IdentityDocument:
        """Sign our chain's next version with ``changes`` and append it to ``chain``.

        Raises:
            IdentityArgumentError: ``signer`` is not the chain's key (and no
                recovery certificate is among ``changes``), or a change is not allowed.
            DocumentChainError, ForgedRecordError: as :meth:`DocumentChain.update`.
        """
        doc = chain.head.successor(signer, now=now, **changes)
        chain.update(doc)
        return doc
