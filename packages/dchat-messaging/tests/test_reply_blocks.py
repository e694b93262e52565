"""Answers under single-use reply blocks, engine to engine (protocol §45).

The relays are dchat-privacy's in-memory ``OnionRelay``s; the last one files
the reply as a mailbox relay would (``SealedEnvelope.onion_reply``).
"""

from __future__ import annotations

import random

from dchat_core import NodeId, RelayAddress
from dchat_messaging import Content, MessageReceived, Rejected
from dchat_messaging._envelope import SealedEnvelope
from dchat_messaging.lowlevel import ReplyBlocks, reply_relay
from dchat_messaging.testing import MemoryMessageStore
from dchat_privacy import OnionPrivateKey, OnionRelay, build_reply_block, write_reply
from dchat_privacy.lowlevel import Deliver, Forward, ReplyGift, ReplyKeys, encode_supply
from dchat_testing import EngineDevice, EngineNet

T0 = 1000.0
FIRST = RelayAddress("127.0.0.1", 7000, NodeId.derive(bytes(32)))


class Route:
    """Three in-memory relays, and the reply blocks of their route into one mailbox."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.keys = [OnionPrivateKey.from_bytes(rng.randbytes(32)) for _ in range(3)]
        self.relays = [OnionRelay(k, epoch=1) for k in self.keys]

    def gifts(self, count: int, until: float = T0 + 3600) -> list[tuple[ReplyGift, ReplyKeys]]:
        route = [(k.public_key, b"hop") for k in self.keys]
        out = []
        for _ in range(count):
            block, keys = build_reply_block(
                route, session_key=OnionPrivateKey.generate(), until=until
            )
            out.append((ReplyGift(FIRST, block, int(until)), keys))
        return out

    def carry(self, gift: ReplyGift, envelope: bytes, mailbox: bytes) -> bytes:
        """What the mailbox relay files for ``envelope`` sent under ``gift``."""
        message = write_reply(gift.block, envelope)
        for relay in self.relays:
            step = relay.process(message)
            if isinstance(step, Deliver):
                return SealedEnvelope.onion_reply(mailbox, step.reply_id, step.body)
            assert isinstance(step, Forward)
            message = step.message
        raise AssertionError("no delivery")


def _people() -> tuple[EngineDevice, EngineDevice]:
    net = EngineNet()
    alice, bob = net.person("alice"), net.person("bob")
    for person in (alice, bob):
        person.engine.replies = ReplyBlocks(person.store)
    return alice, bob


def _answer(bob: EngineDevice, alice: EngineDevice, text: str, at: float) -> bytes:
    """Bob answers; the envelope his outbox queued for a reply block of Alice's."""
    content = Content.text_message(text, now_ms=int(at * 1000))
    bob.engine.send(content, [alice.address], now=at)
    (entry,) = [e for e in bob.store.due(float("inf"), 100)]
    assert entry.relay == reply_relay(bytes(alice.card.identity_id))  # never her card's relay
    bob.store.mark_sent(entry.message_id)
    return entry.envelope


def test_a_reply_travels_under_a_block_and_opens_once_even_after_a_restart() -> None:
    alice, bob = _people()
    route = Route(1)
    assert alice.engine.replies is not None
    assert bob.engine.replies is not None
    alice.engine.replies.stock(bytes(bob.card.identity_id), route.gifts(2))
    alice.send([bob.address], "hello stranger", now=T0)
    bob.fetch(now=T0)
    assert bob.engine.replies.counts(T0) == {"held": 2, "given": 0, "peers": 1, "refused": 0}
    assert alice.engine.replies.outstanding(bytes(bob.card.identity_id), T0) == 2
    envelope = _answer(bob, alice, "hello back", T0 + 1)
    gift = bob.engine.replies.take(bytes(alice.card.identity_id), T0 + 1)
    assert gift is not None
    filed = route.carry(gift, envelope, bytes(alice.address.mailbox))
    events = alice.engine.receive(filed, now=T0 + 2)
    assert [e.content.text for e in events if isinstance(e, MessageReceived)] == ["hello back"]
    alice.restart()  # the book is in the store
    alice.engine.replies = ReplyBlocks(alice.store)
    assert alice.engine.receive(filed, now=T0 + 3) == [Rejected("ReplayedPacketError")]
    assert alice.engine.replies.counts(T0 + 3)["given"] == 1


def test_a_tampered_or_late_reply_is_refused() -> None:
    alice, bob = _people()
    route = Route(2)
    assert alice.engine.replies is not None
    assert bob.engine.replies is not None
    alice.engine.replies.stock(bytes(bob.card.identity_id), route.gifts(2, until=T0 + 100))
    alice.send([bob.address], "hi", now=T0)
    bob.fetch(now=T0)
    first = _answer(bob, alice, "one", T0 + 1)
    second = _answer(bob, alice, "two", T0 + 1)
    peer = bytes(alice.card.identity_id)
    gift_one, gift_two = bob.engine.replies.take(peer, T0), bob.engine.replies.take(peer, T0)
    assert gift_one is not None
    assert gift_two is not None
    mailbox = bytes(alice.address.mailbox)
    filed = SealedEnvelope.from_bytes(route.carry(gift_one, first, mailbox))
    body = bytearray(filed.ciphertext)
    body[100] ^= 1
    forged = SealedEnvelope(filed.mailbox, bytes(body), filed.reply_id).to_bytes()
    assert alice.engine.receive(forged, now=T0 + 2) == [Rejected("InvalidPacketError")]
    late = route.carry(gift_two, second, mailbox)
    assert alice.engine.receive(late, now=T0 + 100) == [Rejected("ExpiredReplyError")]
    assert bob.engine.replies.take(peer, T0) is None  # none left: the next answer waits


def test_a_supply_from_a_message_that_does_not_authenticate_is_not_kept() -> None:
    alice, bob = _people()
    assert bob.engine.replies is not None
    assert bob.engine.replies.hold(b"x" * 32, b"not a supply", T0) == 0
    assert bob.engine.replies.refused == 1
    supply = encode_supply([g for g, _ in Route(3).gifts(1)])
    assert bob.engine.replies.hold(b"x" * 32, supply, T0) == 1
    assert bob.engine.replies.hold(b"x" * 32, supply, T0 + 7200) == 0  # expired on arrival
    assert bob.engine.replies.counts(T0 + 7200)["held"] == 0
    assert not bob.engine.replies.answers_by_block(bytes(alice.card.identity_id))
    store = MemoryMessageStore()
    assert ReplyBlocks(store).take(b"y" * 32, T0) is None


def test_whether_a_peer_answers_by_block_is_read_once_and_follows_writes_and_rollbacks() -> None:
    store = MemoryMessageStore()
    replies = ReplyBlocks(store)
    peer = b"p" * 32
    supply = encode_supply([g for g, _ in Route(4).gifts(1)])
    assert not replies.answers_by_block(peer)
    store.state["surb.held"] = b"garbage"  # behind its back: the answer is held in memory
    assert not replies.answers_by_block(peer)
    del store.state["surb.held"]
    try:
        with store.transaction():
            assert replies.hold(peer, supply, T0) == 1
            assert replies.answers_by_block(peer)  # the write replaced what was held
            raise RuntimeError("the transaction fails")
    except RuntimeError:
        pass
    assert not replies.answers_by_block(peer)  # rolled back: forgotten with it
    with store.transaction():
        replies.hold(peer, supply, T0)
    assert replies.answers_by_block(peer)


def test_a_read_that_raced_a_write_does_not_keep_what_it_read() -> None:
    """The shell asks outside the writer: a write landing during that read wins."""
    peer = b"p" * 32
    supply = encode_supply([g for g, _ in Route(5).gifts(1)])

    class Racing(MemoryMessageStore):
        write_during_read = True

        def get_state(self, key: str) -> bytes | None:
            found = super().get_state(key)  # the committed value, read first...
            if key == "surb.held" and self.write_during_read:
                self.write_during_read = False
                replies.hold(peer, supply, T0)  # ...then a writer replaces it
            return found

    store = Racing()
    replies = ReplyBlocks(store)
    assert not replies.answers_by_block(peer)  # what this read saw
    assert replies.answers_by_block(peer)  # not kept: the write's answer is
