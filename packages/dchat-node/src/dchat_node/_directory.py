"""Which devices speak for whom, as this node knows it: cards plus identity documents.

The messaging engines ask it (synchronously, in their worker thread) whether
a sender device is genuine and where a device's mailbox is; the user service
asks it for the devices a message fans out to. It is kept in memory and fed
by the document service, which persists the chains:

* an identity's **primary device** is its identity key (the contact card's
  keys and mailbox), always genuine for that identity;
* its **linked devices** are the certificates of the newest document this node
  follows for it (revoked devices are gone from that list, so their messages
  are refused and nothing is sent to them);
* a first message from a device this node has not seen carries the sender's
  document: :meth:`NodeDirectory.vouch` accepts it only if it is signed by the
  identity key that sends it, lists the device, and extends (or is) the chain
  this node follows for that identity; the document is then queued for the
  document service to store (:meth:`NodeDirectory.take_learned`).
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from dchat_core import DchatError, IdentityId
from dchat_crypto import VerifyKey
from dchat_identity import DocumentChain, IdentityDocument
from dchat_identity.lowlevel import ReplayedDocumentError
from dchat_messaging import DeviceAddress

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_identity import ContactCard

__all__ = ("NodeDirectory",)


class NodeDirectory:
    """Cards and followed document chains, by identity id (the id of the current key)."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._lock = threading.Lock()  # engines call from worker threads
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

    # -- questions ---------------------------------------------------------------------

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

    def vouch(self, identity: IdentityId, device_key: bytes, document: bytes) -> bool:
        try:
            doc = IdentityDocument.from_bytes(document)
            if IdentityId.derive(doc.identity_key.to_bytes()) != identity:
                return False
            if doc.device(VerifyKey.from_bytes(device_key)) is None:
                return False
            with self._lock:
                followed = self._chains.get(identity)
            if followed is None:
                if doc.recovery is not None:
                    return False  # a recovered identity must extend a chain we follow
                chain = DocumentChain(doc, now=self._now())
            else:
                chain = DocumentChain.from_bytes(followed.to_bytes())
                with contextlib.suppress(ReplayedDocumentError):  # the head we follow
                    chain.update(doc, now=self._now())
                if chain.head.device(VerifyKey.from_bytes(device_key)) is None:
                    return False
        except DchatError:
            return False
        with self._lock:
            self._chains[identity] = chain
            self._learned.append((identity, document))
        return True
