"""The node's guardian shells run one agent step at a time.

A step loads the agent's stored maps, changes them and stores them back,
with awaits in between. Control messages from two guardians reach a node
through two mailbox links at once; without the services' shared lock both
steps would start from the same stored state. These tests run two steps
concurrently over a store that yields at every read and write (as the
database worker does), with the real agents.
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any

import trio
import trio.lowlevel

from dchat_core import IdentityId
from dchat_identity import ContactCard, DocumentChain, Identity, IdentityDocument
from dchat_identity.lowlevel import (
    KIND_APPROVAL,
    KIND_LOOKUP,
    KIND_REQUEST,
    GuardianAgent,
    LookupMessage,
    RecoveryAgent,
    RequestMessage,
    ShareMessage,
    follow,
)
from dchat_node.user._guardians import GuardianService

NOW = 1_800_000_000.0


@dataclasses.dataclass
class Peer:
    identity: Identity
    card: ContactCard
    blobs: dict[str, bytes] = dataclasses.field(default_factory=dict)

    @classmethod
    def make(cls, name: str) -> Peer:
        identity = Identity.generate()
        return cls(identity, ContactCard.issue(identity, name=name, relay="127.0.0.1:1"))

    @property
    def id(self) -> IdentityId:
        return self.identity.identity_id


class YieldingUser:
    """The parts of ``UserService`` the guardian shells use; every store call yields."""

    def __init__(self, peer: Peer) -> None:
        self._peer = peer
        self.identity, self.card, self.has_identity = peer.identity, peer.card, True
        self.agent = types.SimpleNamespace(on_control=lambda kind, handler: None)
        self.sent: list[tuple[IdentityId, str, bytes]] = []

    def now(self) -> float:
        return NOW + 10

    async def state_get(self, key: str) -> bytes | None:
        await trio.lowlevel.checkpoint()
        return self._peer.blobs.get(key)

    async def state_put(self, key: str, value: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self._peer.blobs[key] = value

    async def send_control(self, card: ContactCard, kind: str, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self.sent.append((card.identity_id, kind, data))


class NoDocuments:
    def on_rotation(self, hook: Any) -> None:
        pass


def _message(sender: IdentityId, data: bytes) -> Any:
    return types.SimpleNamespace(sender=sender, data=data)


def _world() -> tuple[Peer, list[Peer], Peer]:
    """Alice with 2-of-3 guardians (who follow her document) and her new node, started."""
    alice, new = Peer.make("alice"), Peer.make("alice-new")
    guardians = [Peer.make(f"g{i}") for i in range(3)]
    agent = GuardianAgent(alice.blobs, min_lock=0.0)
    named = [(f"g{i}", g.card) for i, g in enumerate(guardians)]
    gset, shares = agent.setup(alice.card, alice.id, named, 2)
    alice.blobs.update(agent.changes())
    key = alice.identity.signing_key
    v1 = IdentityDocument.genesis(key, alice.identity.encryption_key.public_key, now=NOW)
    v2 = v1.successor(key, now=NOW + 1, guardians=gset.set_hash)
    for g, share in zip(guardians, shares, strict=True):
        chain = follow(None, v1, card=None, now=NOW).chain
        chain.update(v2)
        agent = GuardianAgent(g.blobs, min_lock=0.0)
        agent.believe(chain)
        agent.share_received(g.identity, alice.id, ShareMessage.from_bytes(share.data))
        g.blobs.update(agent.changes())
        g.blobs["chain"] = chain.to_bytes()
    recovery = RecoveryAgent(None)
    recovery.start(alice.id, [g.card for g in guardians], new.card, lock=1.0)
    new.blobs.update(recovery.changes())
    return alice, guardians, new


def _guardian_agent(g: Peer) -> GuardianAgent:
    agent = GuardianAgent(g.blobs, min_lock=0.0)
    agent.believe(DocumentChain.from_bytes(g.blobs["chain"]))
    return agent


def test_two_guardians_answering_at_once_make_one_recovery_request() -> None:
    alice, guardians, new = _world()
    lookup = LookupMessage(alice.id, new.card)
    infos = [_guardian_agent(g).lookup_received(new.id, lookup) for g in guardians[:2]]
    user = YieldingUser(new)
    service = GuardianService(user, NoDocuments(), min_lock=0.0)  # type: ignore[arg-type]

    async def both() -> None:
        async with trio.open_nursery() as nursery:
            for g, info in zip(guardians[:2], infos, strict=True):
                message = _message(g.id, info.data)
                nursery.start_soon(service.recovery._info_received, message, new.identity)

    trio.run(both)
    requests = [data for _, kind, data in user.sent if kind == KIND_REQUEST]
    assert len(requests) == len(guardians)  # one request, sent to each guardian once
    assert len({RequestMessage.from_bytes(data).request.request_hash for data in requests}) == 1
    assert KIND_LOOKUP not in {kind for _, kind, _ in user.sent}


def test_two_approvals_arriving_at_once_both_count() -> None:
    alice, guardians, new = _world()
    lookup = LookupMessage(alice.id, new.card)
    info = _guardian_agent(guardians[0]).lookup_received(new.id, lookup)
    recovery = RecoveryAgent(new.blobs.get("recovery.state"))
    requests = recovery.info_received(new.identity, guardians[0].id, info.data, new.card, now=NOW)
    new.blobs.update(recovery.changes())
    approvals = []
    for g in guardians[:2]:
        agent = _guardian_agent(g)
        request = next(o for o in requests if o.card.identity_id == g.id)
        agent.request_received(new.id, RequestMessage.from_bytes(request.data), now=NOW)
        request_id = RequestMessage.from_bytes(request.data).request.request_hash.hex()
        _, answer = agent.approve(g.identity, request_id, now=NOW + 5)
        assert answer.kind == KIND_APPROVAL
        approvals.append((g, answer.data))
    user = YieldingUser(new)
    service = GuardianService(user, NoDocuments(), min_lock=0.0)  # type: ignore[arg-type]

    async def both() -> None:
        async with trio.open_nursery() as nursery:
            for g, data in approvals:
                message = _message(g.id, data)
                nursery.start_soon(service.recovery._approval_received, message, new.identity)

    trio.run(both)
    assert RecoveryAgent(new.blobs["recovery.state"]).status(now=NOW + 10)["approvals"] == 2
