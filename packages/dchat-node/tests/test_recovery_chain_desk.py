"""The node's recovery desk moves an identity on the chat chain after a guardian recovery.

The off-chain recovery is the real agents' (as in test_guardian_steps.py):
Alice sets up 2 of 3 guardians, two approve her new node's request, it
finishes. Each node's desk then derives its chain tasks from that stored
state and drives a chat chain running in this process (:class:`LocalChain`,
answering as :class:`ChainLink` does; the verified reads themselves are
dchat-chain's tests'). Without the desk's steps the chain's identity record
would still hold Alice's lost key.
"""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

import trio

from dchat_chain import ChatChainApp
from dchat_chain.lowlevel import BlockContext, HandleOwner, RecoveryChainBook
from dchat_core import DecodeLimits, canonical_decode, canonical_encode
from dchat_identity import DocumentChain, IdentityDocument
from dchat_identity.lowlevel import LookupMessage, RecoveryAgent, RequestMessage
from dchat_node._errors import NodeStateError
from dchat_node.api._handles import OWN_HANDLE
from dchat_node.api._recovery_chain import BOOK, RecoveryChainDesk

from .test_guardian_steps import NOW, Peer, YieldingUser, _guardian_agent, _world

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_chain import Transaction

# A fee, as on the testnet: users' keys hold no chat-chain tokens.
PARAMS = {"pow_bits": 2, "handle_pow_bits": 2, "recovery_delay_ms": 0, "min_fee": 1}


class LocalChain:
    """A chat chain in this process with the part of ``ChainLink`` the desk uses."""

    def __init__(self) -> None:
        doc = {"v": 1, "kind": "chat", "chain_id": "chat", "params": PARAMS}
        self._genesis = canonical_encode(doc)
        self.app = ChatChainApp.from_genesis(self._genesis)
        self.down = False

    def genesis(self) -> bytes:
        return self._genesis

    def _reachable(self) -> None:
        if self.down:
            raise NodeStateError("chain_unreachable", "the chat chain node: connection refused")

    async def verified(self, start: Callable[[Any], Any]) -> Any:
        self._reachable()
        return start(self)

    def read(self, path: str, key: bytes) -> Any:
        assert path == f"/v1/chain/state/{key.hex()}"
        value, height = self.app.query(key).value, self.app.height
        return types.SimpleNamespace(result=lambda: (None, value, height))

    async def call(self, method: str, path: str) -> dict[str, Any]:
        self._reachable()
        key = bytes.fromhex(path.removeprefix("/v1/chain/accounts/"))
        return {"next_nonce": self.app.account(key).nonce}

    async def submit(self, tx: Transaction) -> int:
        self._reachable()
        height = self.app.height + 1
        result = self.app.apply_block(BlockContext("chat", height, height * 1000, b""), [tx.raw])
        self.app.commit()
        if result.tx_results[0].code:
            raise NodeStateError("recovery_refused", result.tx_results[0].log)
        return height

    def key_of(self, peer: Peer) -> bytes | None:
        value = self.app.query(b"id/" + bytes(peer.id)).value
        if value is None:
            return None
        key: bytes = canonical_decode(value, DecodeLimits(max_depth=3))["key"]
        return key


class Documents:
    def __init__(self, head: IdentityDocument) -> None:
        self._head = head

    async def head(self) -> IdentityDocument:
        return self._head


class Clock(YieldingUser):
    def __init__(self, peer: Peer) -> None:
        super().__init__(peer)
        self.at = NOW + 10

    def now(self) -> float:
        return self.at


def _desk(chain: LocalChain) -> RecoveryChainDesk:
    config = types.SimpleNamespace(chat_node="chain", chat_genesis=None, role="user")
    return RecoveryChainDesk(types.SimpleNamespace(config=config), chain)  # type: ignore[arg-type]


def _step(chain: LocalChain, peer: Peer, user: Clock | None = None) -> list[dict[str, Any]]:
    """One desk round for ``peer``; the chain views of its tasks afterwards."""
    user = user or Clock(peer)
    desk = _desk(chain)
    head = DocumentChain.from_bytes(peer.blobs["chain"]).head if "chain" in peer.blobs else None
    documents = Documents(head or IdentityDocument.genesis(
        peer.identity.signing_key, peer.identity.encryption_key.public_key, now=NOW
    ))  # fmt: skip
    trio.run(desk.step, user, documents)
    book = RecoveryChainBook(peer.blobs.get(BOOK))
    tasks = trio.run(desk.tasks, user)
    return [book.view(task) for task in tasks]


def _recovered() -> tuple[Peer, list[Peer], Peer]:
    """The off-chain recovery, done: two of three guardians approved, the new node finished."""
    alice, guardians, new = _world()
    info = _guardian_agent(guardians[0]).lookup_received(new.id, LookupMessage(alice.id, new.card))
    recovery = RecoveryAgent(new.blobs.get("recovery.state"))
    requests = recovery.info_received(new.identity, guardians[0].id, info.data, new.card, now=NOW)
    new.blobs.update(recovery.changes())
    for g in guardians[:2]:
        agent = _guardian_agent(g)
        sent = next(o for o in requests if o.card.identity_id == g.id)
        agent.request_received(new.id, RequestMessage.from_bytes(sent.data), now=NOW)
        request_id = RequestMessage.from_bytes(sent.data).request.request_hash.hex()
        _, answer = agent.approve(g.identity, request_id, now=NOW + 2)
        g.blobs.update(agent.changes())
        recovery = RecoveryAgent(new.blobs["recovery.state"])
        recovery.approval_received(new.identity, g.id, answer.data, now=NOW + 3)
        new.blobs.update(recovery.changes())
    recovery = RecoveryAgent(new.blobs["recovery.state"])
    recovery.finish(new.identity, now=NOW + 5)
    new.blobs.update(recovery.changes())
    return alice, guardians, new


def test_the_desks_move_the_identity_to_the_new_key_on_the_chain() -> None:
    alice, guardians, new = _recovered()
    chain = LocalChain()
    assert _step(chain, alice)[0]["state"] == "registering"  # the identity, with its set
    assert _step(chain, alice) == [{"state": "done", "done": True}]  # confirmed by a read
    assert chain.key_of(alice) == alice.identity.signing_key.public_key.to_bytes()
    guardian_ids = sorted(bytes(g.id) for g in guardians)
    record = canonical_decode(chain.app.query(b"id/" + bytes(alice.id)).value or b"")
    assert (record["g"], record["th"]) == (guardian_ids, 2)
    owner = HandleOwner(alice.identity.signing_key, chain.genesis())
    nonce = chain.app.account(owner.public_key).nonce
    card = alice.card.to_bytes()
    for tx in owner.register(nonce, "alice", ["127.0.0.1:1"], card, registered=True):
        trio.run(chain.submit, tx)

    waiting = _step(chain, new)
    assert waiting[0]["state"] == "waiting_for_guardians"
    assert _step(chain, guardians[0])[0]["state"] == "requesting"  # registered on the way
    assert _step(chain, guardians[0])[0]["state"] == "done"
    assert _step(chain, guardians[2]) == []  # it did not approve: no chain task
    user = Clock(new)
    user.at += 3  # past the retry time of the waiting step
    approving = _step(chain, new, user)[0]
    assert (approving["state"], approving["detail"]) == (
        "approving", "1 of 2 guardians approved on the chain"
    )  # fmt: skip
    assert _step(chain, guardians[1])[0]["state"] == "approving"
    user.at += 3
    assert _step(chain, new, user)[0]["state"] == "executing"
    assert _step(chain, new, user)[0]["state"] == "renewing_handle"  # @alice gets our card
    done = "the chain holds the new key, and @alice the new card"
    assert _step(chain, new, user) == [{"state": "done", "done": True, "detail": done}]
    assert new.blobs[OWN_HANDLE] == b"alice"  # GET /v1/handle shows it
    assert chain.key_of(alice) == new.identity.signing_key.public_key.to_bytes()
    old = b"idkey/" + alice.identity.signing_key.public_key.to_bytes()
    assert chain.app.query(old).value is None  # the lost key speaks for no one on the chain


def test_a_chain_that_does_not_answer_is_retried_and_shown() -> None:
    alice, _guardians, _new = _recovered()
    chain = LocalChain()
    chain.down = True
    user = Clock(alice)
    view = _step(chain, alice, user)[0]
    assert view["error"] == "chain_unreachable: the chat chain node: connection refused"
    assert (view["state"], view["failures"], view["next_attempt"]) == ("pending", 1, user.at + 1)
    chain.down = False
    assert _step(chain, alice, user)[0]["failures"] == 1  # not due yet: nothing tried
    user.at += 1
    retried = _step(chain, alice, user)[0]
    assert retried == {"state": "registering", "done": False, "next_attempt": user.at}


def test_without_tasks_the_desk_reads_nothing() -> None:
    chain = LocalChain()
    chain.down = True  # any read would fail and be recorded
    peer = Peer.make("bob")
    assert _step(chain, peer) == []
    assert BOOK not in peer.blobs
