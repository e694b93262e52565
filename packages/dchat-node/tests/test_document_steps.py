"""The node follows a contact's documents one at a time.

Following a document loads the stored chain, extends it and stores it back,
with awaits in between. A contact's versions 2 and 3 can arrive through two
mailbox links (two home relays) at once; the later must extend the chain the
earlier stored, not the one both found.
"""

from __future__ import annotations

import types
from typing import Any

import trio
import trio.testing

from dchat_core import DchatError
from dchat_identity import ContactCard, DocumentChain, Identity, IdentityDocument
from dchat_identity.lowlevel import DOCUMENT_KIND
from dchat_node.user._documents import _OWN, _PEER, DocumentService

NOW = 1_800_000_000.0


class GatedUser:
    """The parts of ``UserService`` the document shell uses; the first read waits for a gate."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.gate, self._reads = trio.Event(), 0
        self.agent = types.SimpleNamespace(
            on_control=lambda kind, handler: None, on_device_control=lambda kind, handler: None
        )
        self.directory = types.SimpleNamespace(own_identity=None, set_chain=lambda chain: None)
        self.engines = types.SimpleNamespace(linked=None)

    def on_document_learned(self, hook: Any) -> None:
        pass

    def on_contact_added(self, hook: Any) -> None:
        pass

    def now(self) -> float:
        return NOW + 10

    async def state_get(self, key: str) -> bytes | None:
        self._reads += 1
        if self._reads == 1:
            await self.gate.wait()
        await trio.lowlevel.checkpoint()
        return self.blobs.get(key)

    async def state_put(self, key: str, value: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self.blobs[key] = value

    async def send_to_own_devices(self, kind: str, data: bytes) -> None:
        await trio.lowlevel.checkpoint()


def test_two_versions_arriving_at_once_both_extend_the_chain() -> None:
    bob = Identity.generate()
    card = ContactCard.issue(bob, name="bob", relays=["127.0.0.1:1"])
    key = bob.signing_key
    v1 = IdentityDocument.genesis(key, bob.encryption_key.public_key, now=NOW)
    v2 = v1.successor(key, now=NOW + 1)
    v3 = v2.successor(key, now=NOW + 2)
    user = GatedUser()
    user.blobs[_PEER + str(bob.identity_id)] = DocumentChain(v1, now=NOW).to_bytes()
    service = DocumentService(user)  # type: ignore[arg-type]
    refused: list[str] = []

    async def follow(doc: IdentityDocument) -> None:
        try:
            await service._follow_peer(DOCUMENT_KIND, doc.to_bytes(), bob.identity_id, card)
        except DchatError as exc:
            refused.append(type(exc).__name__)

    async def both() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow, v2)
            await trio.testing.wait_all_tasks_blocked()  # v2 is reading the stored chain
            nursery.start_soon(follow, v3)
            await trio.testing.wait_all_tasks_blocked()
            user.gate.set()

    trio.run(both)
    assert refused == []
    stored = DocumentChain.from_bytes(user.blobs[_PEER + str(bob.identity_id)])
    assert stored.head.seq == v3.seq


class PublishingUser(GatedUser):
    """A user with an identity and no contacts, for our own document's steps."""

    def __init__(self, identity: Identity) -> None:
        super().__init__()
        self.identity = identity
        self.book = types.SimpleNamespace(announced=lambda: [])
        self.directory = types.SimpleNamespace(set_chain=lambda chain, own: None)
        self.engines = types.SimpleNamespace(set_document=lambda doc: None)

    async def state_get(self, key: str) -> bytes | None:
        found = self.blobs.get(key)  # read before waiting: the second step reads the same
        self._reads += 1
        if self._reads == 1:
            await self.gate.wait()
        return found

    async def run(self, step: Any, *args: Any) -> Any:
        await trio.lowlevel.checkpoint()
        return step(*args)


def test_two_publishes_at_once_make_two_versions_keeping_both_changes() -> None:
    """Without the lock both signed a version 2 (a fork sent to contacts), one change lost."""
    alice = Identity.generate()
    user = PublishingUser(alice)
    first = DocumentChain(
        IdentityDocument.genesis(alice.signing_key, alice.encryption_key.public_key, now=NOW),
        now=NOW,
    )
    user.blobs[_OWN] = first.to_bytes()
    service = DocumentService(user)  # type: ignore[arg-type]
    published: list[IdentityDocument] = []

    async def both() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: publish(profile=b"\x01" * 32))
            await trio.testing.wait_all_tasks_blocked()  # the first is reading our chain
            nursery.start_soon(lambda: publish(guardians=b"\x02" * 32))
            await trio.testing.wait_all_tasks_blocked()
            user.gate.set()

    async def publish(**changes: Any) -> None:
        published.append(await service.publish(**changes))

    trio.run(both)
    assert sorted(doc.seq for doc in published) == [2, 3]
    head = DocumentChain.from_bytes(user.blobs[_OWN]).head
    assert head.seq == 3
    assert (head.profile, head.guardians) == (b"\x01" * 32, b"\x02" * 32)
