"""Which devices speak for whom: contact cards plus followed identity documents.

The engine asks a :class:`DeviceDirectory` whether a sender device is genuine,
where a device's mailbox is, and whether a document sent along a first
message vouches for an unknown device. :class:`DocumentDirectory` is the
directory every user node uses; it holds what it was given and never reads
storage, the network or a clock:

* an identity's **primary device** is its identity key (the contact card's
  keys and mailbox), always genuine for that identity;
* its **linked devices** are the certificates of the newest document this
  directory follows for it (:meth:`DocumentDirectory.set_chain`); a revoked
  device is gone from that list, so its messages are refused and nothing is
  sent to it;
* a first message from a device the directory has not seen carries the
  sender's document: :meth:`DocumentDirectory.vouch` accepts it only if it is
  signed by the identity key that sends it, lists the device, and extends (or
  is) the chain followed for that identity; the document is then queued for
  the caller to store (:meth:`DocumentDirectory.take_learned`).

Engines run in worker threads while the shell feeds the directory, so its
maps are guarded by a lock (a lock is not I/O: the directory stays sans-IO).
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Protocol

from dchat_core import DchatError, IdentityId
from dchat_crypto import VerifyKey
from dchat_identity import DocumentChain, IdentityDocument
from dchat_identity.lowlevel import ReplayedDocumentError

from ._devices import DeviceAddress

if TYPE_CHECKING:
    from dchat_identity import ContactCard

__all__ = ("DeviceDirectory", "DocumentDirectory", "PrimaryOnly")


class DeviceDirectory(Protocol):
    """Which devices speak for an identity (from contact cards and identity documents)."""

    def is_device(self, identity: IdentityId, device_key: bytes) -> bool:
        """Whether ``device_key`` is a current device of ``identity``."""
        ...

    def address(self, identity: IdentityId, device_key: bytes) -> DeviceAddress | None:
        """How to reach that device, if known."""
        ...

    def vouch(
        self, identity: IdentityId, device_key: bytes, document: bytes, *, now: float
    ) -> bool:
        """Whether ``document`` (sent by that device) proves it speaks for ``identity``.

        Called for the first message of a session from a device
        :meth:`is_device` does not know; the directory checks the document
        (signatures, that it lists the device, that it is not older than the
        version it follows, at time ``now``) and may learn from it.
        """
        ...


class PrimaryOnly:
    """The directory of an engine that knows no documents: only primary devices."""

    def is_device(self, identity: IdentityId, device_key: bytes) -> bool:
        return IdentityId.derive(device_key) == identity

    def address(self, identity: IdentityId, device_key: bytes) -> DeviceAddress | None:
        return None

    def vouch(
        self, identity: IdentityId, device_key: bytes, document: bytes, *, now: float
    ) -> bool:
        return False


class DocumentDirectory:
    """Cards and followed document chains, by identity id (the id of the current key)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cards: dict[IdentityId, ContactCard] = {}
        self._chains: dict[IdentityId, DocumentChain] = {}
        self._own: IdentityId | None = None
        self._learned: list[tuple[IdentityId, bytes]] = []

    # -- feeding -------------------------------------------------------------------

    def add_card(self, card: ContactCard) -> None:
        """Remember how to reach ``card``'s identity."""
        with self._lock:
            self._cards[card.identity_id] = card

    def set_chain(self, chain: DocumentChain, *, own: bool = False) -> None:
        """Follow ``chain`` (its head lists the identity's devices)."""
        identity = IdentityId.derive(chain.identity_key.to_bytes())
        with self._lock:
            self._chains[identity] = chain
            if own:
                self._own = identity

    def take_learned(self) -> list[tuple[IdentityId, bytes]]:
        """Documents accepted by :meth:`vouch` since the last call, for storing."""
        with self._lock:
            learned, self._learned = self._learned, []
        return learned

    # -- questions -------------------------------------------------------------------

    @property
    def own_identity(self) -> IdentityId | None:
        """Our identity's id (the id of its current key), once its chain is known."""
        return self._own

    def devices_of(self, card: ContactCard) -> list[DeviceAddress]:
        """Every current device of ``card``'s identity: the primary first."""
        result = [DeviceAddress.primary(card)]
        with self._lock:
            chain = self._chains.get(card.identity_id)
        if chain is not None:
            for cert in chain.head.devices:
                address = DeviceAddress.linked(card, cert)
                if address.device_id != result[0].device_id:
                    result.append(address)
        return result

    def own_devices(self, card: ContactCard, *, besides: bytes) -> list[DeviceAddress]:
        """This identity's devices other than ``besides`` (for sent copies)."""
        return [d for d in self.devices_of(card) if d.device_id != besides]

    def is_device(self, identity: IdentityId, device_key: bytes) -> bool:
        if IdentityId.derive(device_key) == identity:
            return True
        with self._lock:
            chain = self._chains.get(identity)
        if chain is None:
            return False
        try:
            return chain.head.device(VerifyKey.from_bytes(device_key)) is not None
        except DchatError:
            return False

    def address(self, identity: IdentityId, device_key: bytes) -> DeviceAddress | None:
        with self._lock:
            card = self._cards.get(identity)
        if card is None:
            return None
        return next((d for d in self.devices_of(card) if d.device_id == device_key), None)

    def vouch(
        self, identity: IdentityId, device_key: bytes, document: bytes, *, now: float
    ) -> bool:
        try:
            chain = self._vouched_chain(identity, VerifyKey.from_bytes(device_key), document, now)
        except DchatError:
            return False  # malformed, forged, stale or forked: the device stays unknown
        if chain is None:
            return False
        with self._lock:
            self._chains[identity] = chain
            self._learned.append((identity, document))
        return True

    def _vouched_chain(
        self, identity: IdentityId, device: VerifyKey, document: bytes, now: float
    ) -> DocumentChain | None:
        """The chain to follow if ``document`` vouches for ``device``, else None."""
        doc = IdentityDocument.from_bytes(document)
        if IdentityId.derive(doc.identity_key.to_bytes()) != identity:
            return None
        if doc.device(device) is None:
            return None
        with self._lock:
            followed = self._chains.get(identity)
        if followed is None:
            if doc.recovery is not None:
                return None  # a recovered identity must extend a chain we follow
            return DocumentChain(doc, now=now)
        chain = DocumentChain.from_bytes(followed.to_bytes())
        with contextlib.suppress(ReplayedDocumentError):  # the head we follow
            chain.update(doc, now=now)
        return chain if chain.head.device(device) is not None else None
