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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeLimits, IdentityId, canonical_decode, canonical_encode

from ._chain import DocumentChain, verify_update
from ._document import IdentityDocument
from ._errors import (
    BrokenChainError,
    ForgedRecordError,
    IdentityStateError,
    InvalidCardError,
    MalformedRecordError,
)

if TYPE_CHECKING:
    from ._card import ContactCard
    from ._identity import Identity

__all__ = (
    "DOCUMENT_KIND",
    "HEAD_KIND",
    "LOOKUP_KIND",
    "LOOKUP_MESSAGE",
    "PEER_KIND",
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
