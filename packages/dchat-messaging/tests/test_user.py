"""UserMessaging: a user node's messaging rules, driven without a network."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import IdentityId, MailboxId, RelayAddress, canonical_encode
from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import ContactCard, Identity
from dchat_messaging import (
    Content,
    DchatMessagingError,
    MessageReceived,
    UserMessaging,
)
from dchat_messaging.lowlevel import MAILBOX_TAG_KIND, PUT_TOKEN_KIND, PutTokens
from dchat_messaging.testing import MemoryMessageStore
from dchat_testing import AGENT_T0, AgentNode

T0 = AGENT_T0
RELAY = "127.0.0.1:7400"
QUIET = "user.quiet_contacts"  # the stored key is part of a node's data directory


class Node(AgentNode):
    """One user node's messaging, its prekeys published to ``bundles``."""

    def send(self, to: ContactCard, text: str) -> None:  # type: ignore[override]
        content = Content.text_message(text, now_ms=int(T0 * 1000))
        self.agent.engines.send(self.engine, to, content, now=T0, copies=True)


@pytest.fixture
def pair() -> tuple[Node, Node, dict[bytes, bytes]]:
    bundles: dict[bytes, bytes] = {}
    alice, bob = Node("alice", bundles), Node("bob", bundles)
    alice.agent.contacts.add("bob", bob.card.to_text(), now=T0)
    bob.agent.contacts.add("alice", alice.card.to_text(), now=T0)
    return alice, bob, bundles


def test_a_message_is_set_up_delivered_accepted_and_counted_once(
    pair: tuple[Node, Node, dict[bytes, bytes]],
) -> None:
    alice, bob, bundles = pair
    alice.send(bob.card, "hi bob")
    due = alice.agent.bundles_due(T0)
    assert [device.identity for _, device in due] == [bob.card.identity_id]
    for engine, device in due:
        alice.agent.bundle_received(engine, device, bundles[bytes(device.mailbox)], now=T0)
    assert alice.agent.bundles_due(T0) == []
    entries = list(alice.agent.outbox.due(T0, 64))
    assert len(entries) == 1
    accepted = bob.agent.accept(bob.engine, entries[0].envelope, now=T0)
    assert [m.text for m in accepted.texts] == ["hi bob"]
    assert (accepted.resets, accepted.dropped) == ([], [])
    again = bob.agent.accept(bob.engine, entries[0].envelope, now=T0)  # a redelivery
    assert again.texts == []
    assert bob.agent.stats.received == 1
    alice.agent.delivered(entries[0].message_id)
    assert alice.agent.sent == 1
    assert list(alice.agent.outbox.due(T0 + 3600, 64)) == []


def test_a_pushed_batch_is_opened_in_one_transaction_and_deposits_are_settled(
    pair: tuple[Node, Node, dict[bytes, bytes]],
) -> None:
    alice, bob, bundles = pair
    for i in range(5):
        alice.send(bob.card, f"m{i}")
    for engine, device in alice.agent.bundles_due(T0):
        alice.agent.bundle_received(engine, device, bundles[bytes(device.mailbox)], now=T0)
    entries = list(alice.agent.outbox.due(T0, 64))
    commits = bob.store.commits
    batch = [e.envelope for e in entries] + [b"garbage"]
    accepted = bob.agent.accept_many(bob.engine, batch, now=T0)
    assert bob.store.commits == commits + 1
    assert [m.text for m in accepted.texts] == [f"m{i}" for i in range(5)]
    assert len(accepted.dropped) == 1
    failed = alice.agent.deposited(entries, [b"\x00" * 32] * 4 + ["quota"], now=T0)
    assert (failed, alice.agent.sent) == (1, 4)
    assert [e.message_id for e in alice.store.outbox.values()] == [entries[-1].message_id]


def test_accepted_texts_say_whether_the_sender_is_a_contact(
    pair: tuple[Node, Node, dict[bytes, bytes]],
) -> None:
    alice, bob, bundles = pair
    stranger = Node("mallory", bundles)
    alice.send(bob.card, "from a contact")
    stranger.send(bob.card, "from a stranger")
    entries = []
    for node in (alice, stranger):
        for engine, device in node.agent.bundles_due(T0):
            node.agent.bundle_received(engine, device, bundles[bytes(device.mailbox)], now=T0)
        entries += list(node.agent.outbox.due(T0, 64))
    commits = bob.store.commits
    accepted = bob.agent.accept_many(bob.engine, [e.envelope for e in entries], now=T0)
    assert bob.store.commits == commits + 1  # read in the batch's own transaction
    assert [(m.text, m.contact) for m in accepted.texts] == [
        ("from a contact", True),
        ("from a stranger", False),
    ]


def test_metric_figures_count_messages_envelopes_and_delivery_latency(
    pair: tuple[Node, Node, dict[bytes, bytes]],
) -> None:
    alice, bob, bundles = pair
    for i in range(3):
        alice.send(bob.card, f"m{i}")
    alice.agent.engines.send(
        alice.engine, bob.card, Content.control("x.kind", b"", now_ms=0), now=T0, copies=True
    )
    assert dict(alice.agent.engines.sent) == {"text": 3, "control": 1}
    for engine, device in alice.agent.bundles_due(T0):
        alice.agent.bundle_received(engine, device, bundles[bytes(device.mailbox)], now=T0)
    entries = list(alice.agent.outbox.due(T0, 64))
    assert len(entries) == 4
    # Stored 0.3 s after the enqueue (the relay's answer), but one refused: no latency for it.
    alice.agent.deposited(entries, [b"\x00" * 32] * 3 + ["quota"], now=T0 + 0.3)
    latency = alice.agent.outbox.latency
    assert (latency.count, latency.sum) == (3, pytest.approx(0.9))
    assert dict(latency.cumulative())[0.25] == 0
    assert dict(latency.cumulative())[0.5] == 3
    bob.agent.accept_many(bob.engine, [e.envelope for e in entries[:3]] + [b"junk"], now=T0)
    assert (bob.agent.stats.envelopes, bob.agent.stats.received) == (4, 3)
    assert sum(bob.agent.stats.refusals.values()) == 1


@given(st.binary(max_size=300))
def test_hostile_envelopes_are_dropped_and_counted_never_raised(data: bytes) -> None:
    node = Node("carol", {})
    accepted = node.agent.accept(node.engine, data, now=T0)
    assert accepted.texts == []
    assert len(accepted.dropped) == 1
    assert node.agent.stats.rejected == 1
    assert sum(node.agent.stats.refusals.values()) == 1


def test_a_failed_bundle_fetch_backs_off_exponentially_up_to_a_minute(
    pair: tuple[Node, Node, dict[bytes, bytes]],
) -> None:
    alice, bob, bundles = pair
    alice.send(bob.card, "hi")
    ((engine, device),) = alice.agent.bundles_due(T0)
    now, delays = T0, []
    for _ in range(9):
        assert alice.agent.bundles_due(now) != []
        delays.append(alice.agent.bundle_failed(device, now=now, interval=1.0))
        assert alice.agent.bundles_due(now + delays[-1] - 0.01) == []
        now += delays[-1]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    with pytest.raises(DchatMessagingError):  # a forged bundle keeps the backoff
        alice.agent.bundle_received(engine, device, b"\x00" * 40, now=now)
    alice.agent.bundle_failed(device, now=now, interval=1.0)
    assert alice.agent.bundles_due(now) == []
    alice.agent.bundle_received(engine, device, bundles[bytes(device.mailbox)], now=now + 60)
    assert alice.agent.bundles_due(now + 60) == []  # set up; the backoff is forgotten
    assert len(alice.agent.outbox.due(now + 60, 64)) == 1


def test_notices_and_unhandled_controls_are_reported() -> None:
    node = Node("dave", {})
    peer = IdentityId(bytes(IdentityId.SIZE))
    node.agent.notices.add("session_reset", peer, at_ms=5)
    assert node.agent.notice_rows() == [{"kind": "session_reset", "peer": str(peer), "at_ms": 5}]
    node.agent.control_dropped()
    node.agent.control_dropped("UnexpectedRecoveryError")
    assert node.agent.stats.rejected == 2
    assert dict(node.agent.stats.refusals) == {"UnexpectedRecoveryError": 1}
    node.agent.stats.session_resets += 1
    # The /status keys, in their order (clients read them by name, people by eye).
    assert list(node.agent.counters().items()) == [
        ("sent", 0),
        ("received", 0),
        ("rejected", 2),
        ("rejected_retired", 0),
        ("session_resets", 1),
        ("duplicates", 0),
        ("refusals", {"UnexpectedRecoveryError": 1}),
        ("cover", node.agent.cover.status()),
    ]
    assert node.agent.counters()["cover"]["on"] is False  # type: ignore[index]


def test_the_mailboxes_to_drain_follow_the_local_identities() -> None:
    empty = UserMessaging(MemoryMessageStore())
    assert empty.mailboxes() == []  # nothing to fetch before an identity exists
    assert (empty.engines.primary_identity, empty.engines.primary_card) == (None, None)
    node, burner = Node("erin", {}), Identity.generate()
    assert node.agent.engines.primary_card == node.card
    node.agent.add_identity(burner)
    own, extra = node.agent.mailboxes()
    assert (own.key, own.engine, own.identity) == (
        node.identity.mailbox_key,
        node.engine,
        node.identity,
    )
    assert (extra.key, extra.identity) == (burner.mailbox_key, burner)
    assert extra.engine.keys.mailbox == burner.mailbox_id
    node.agent.remove_identity(burner.identity_id)
    assert [box.identity for box in node.agent.mailboxes()] == [node.identity]
    device = UserMessaging(MemoryMessageStore())
    key = SigningKey.generate()
    engine = device.engines.link_device(key, PrivateKey.generate(), node.card)
    (linked,) = device.mailboxes()
    assert (linked.key, linked.engine, linked.identity) == (key, engine, None)


def test_raw_mailboxes_are_drained_into_their_own_handler_until_removed() -> None:
    agent = UserMessaging(MemoryMessageStore())
    sync_key, other_key = SigningKey.generate(), SigningKey.generate()

    async def handler(envelope: bytes) -> None:
        pass

    assert agent.raw_mailboxes() == []
    agent.add_raw_mailbox(sync_key, handler)
    agent.add_raw_mailbox(other_key, handler)
    agent.add_raw_mailbox(sync_key, handler)  # once per key
    boxes = agent.raw_mailboxes()
    assert [box.key for box in boxes] == [sync_key, other_key]
    assert boxes[0].mailbox == bytes(MailboxId.derive(sync_key.public_key.to_bytes()))
    assert agent.mailboxes() == []  # raw ones are not opened by an engine
    agent.remove_raw_mailbox(sync_key)
    agent.remove_raw_mailbox(sync_key)  # removing twice is harmless
    assert [box.key for box in agent.raw_mailboxes()] == [other_key]


def test_raw_items_go_to_every_home_relay_and_are_handled_once() -> None:
    sender_store, store = MemoryMessageStore(), MemoryMessageStore()
    sender, receiver = UserMessaging(sender_store), UserMessaging(store)
    key = SigningKey.generate()
    mailbox = bytes(MailboxId.derive(key.public_key.to_bytes()))
    relays = [RelayAddress.parse(r) for r in ("127.0.0.1:7401", "127.0.0.1:7402", RELAY)]
    sender.queue_sealed(relays, [(mailbox, b"sync item"), (mailbox, b"another")], T0)
    due = sender.outbox.due(T0, 64)
    assert sorted(e.relay for e in due) == sorted([r.hostport for r in relays] * 2)
    copies = {e.relay: e.envelope for e in due[:3]}  # queued item by item, relay by relay
    assert len(set(copies.values())) == 1  # the same bytes at each relay: one digest
    assert len({e.message_id for e in due}) == 6  # each copy its own outbox entry
    sender.engines.paths = 1  # multipath_k: the first k home relays only
    sender.queue_sealed(relays, [(mailbox, b"k of n")], T0)
    assert [e.relay for e in sender.outbox.due(T0, 64)[6:]] == ["127.0.0.1:7401"]

    handled: list[bytes] = []

    async def handler(envelope: bytes) -> None:
        await asyncio.sleep(0)  # another relay's copy may arrive meanwhile
        handled.append(envelope)

    receiver.add_raw_mailbox(key, handler)
    (box,) = receiver.raw_mailboxes()
    first, second, third = (copies[r.hostport] for r in relays)

    async def pushes() -> None:  # relay 1 and 2 push at once, relay 3 later
        await asyncio.gather(box.take([(b"e1", first)]), box.take([(b"e9", second)]))
        await box.take([(b"e4", third)])

    asyncio.run(pushes())
    assert handled == [first]
    assert receiver.raw_seen.duplicates == 2
    restarted = UserMessaging(store)  # the digest is durable: a late copy after a restart
    restarted.add_raw_mailbox(key, handler)
    asyncio.run(restarted.raw_mailboxes()[0].take([(b"e5", first)]))
    assert handled == [first]
    assert restarted.raw_seen.duplicates == 1


def test_a_raw_item_whose_handler_failed_is_handled_when_pushed_again() -> None:
    agent, key = UserMessaging(MemoryMessageStore()), SigningKey.generate()
    calls: list[bytes] = []

    async def flaky(envelope: bytes) -> None:
        calls.append(envelope)
        if len(calls) == 1:
            raise RuntimeError("the database went away")

    agent.add_raw_mailbox(key, flaky)
    (box,) = agent.raw_mailboxes()
    with pytest.raises(RuntimeError):
        asyncio.run(box.take([(b"e1", b"item")]))
    asyncio.run(box.take([(b"e1", b"item")]))  # the relay pushes it again: not a duplicate
    asyncio.run(box.take([(b"e2", b"item")]))  # then another relay's copy is one
    assert calls == [b"item", b"item"]
    assert agent.raw_seen.duplicates == 1


def _deliver_controls(
    alice: Node, bob: Node, bundles: dict[bytes, bytes], kinds: list[str]
) -> None:
    for kind in kinds:
        content = Content.control(kind, kind.encode(), now_ms=int(T0 * 1000))
        alice.agent.engines.send(alice.engine, bob.card, content, now=T0, copies=True)
    for engine, device in alice.agent.bundles_due(T0):
        alice.agent.bundle_received(engine, device, bundles[bytes(device.mailbox)], now=T0)
    for entry in alice.agent.outbox.due(T0, 64):
        bob.agent.accept(bob.engine, entry.envelope, now=T0)


def test_controls_go_to_the_handler_of_their_kind_with_the_receiving_identity(
    pair: tuple[Node, Node, dict[bytes, bytes]],
) -> None:
    alice, bob, bundles = pair
    seen: list[tuple[str, bytes, IdentityId]] = []

    async def handler(message: MessageReceived, identity: Identity) -> None:
        seen.append((message.kind, message.data, identity.identity_id))

    async def device_only(message: MessageReceived) -> None:
        raise AssertionError("a main identity's control never goes to a device handler")

    bob.agent.on_control("x.ping", handler)
    bob.agent.on_device_control("x.sync", device_only)
    with pytest.raises(ValueError, match="already registered"):
        bob.agent.on_control("x.ping", handler)
    _deliver_controls(alice, bob, bundles, ["x.ping", "x.unknown", "x.sync"])
    due = bob.agent.controls_due(bob.engine, bob.identity)
    assert [(m.kind, m.sender) for m, _ in due] == [
        ("x.ping", alice.card.identity_id),
        ("x.unknown", alice.card.identity_id),
        ("x.sync", alice.card.identity_id),
    ]
    assert [h is None for _, h in due] == [False, True, True]
    assert bob.agent.stats.rejected == 2  # the kinds nobody handles, counted once each
    # Another mailbox link's task asking meanwhile gets none of them a second time.
    assert bob.agent.controls_due(bob.engine, bob.identity) == []
    message, run = due[0]
    assert run is not None
    asyncio.run(run(message))
    assert seen == [("x.ping", b"x.ping", bob.identity.identity_id)]
    for message, _ in due:
        bob.engine.control_done(message.message_id)
    _deliver_controls(alice, bob, bundles, ["x.ping"])  # a new one is handed out again
    assert [m.kind for m, _ in bob.agent.controls_due(bob.engine, bob.identity)] == ["x.ping"]


def test_a_linked_device_mailbox_runs_only_device_handlers(
    pair: tuple[Node, Node, dict[bytes, bytes]],
) -> None:
    alice, bob, bundles = pair
    seen: list[bytes] = []

    async def main_only(message: MessageReceived, identity: Identity) -> None:
        raise AssertionError("no identity key on a linked device")

    async def device(message: MessageReceived) -> None:
        seen.append(message.data)

    bob.agent.on_control("x.ping", main_only)
    bob.agent.on_device_control("x.sync", device)
    _deliver_controls(alice, bob, bundles, ["x.ping", "x.sync"])
    due = bob.agent.controls_due(bob.engine, None)
    assert [h is None for _, h in due] == [True, False]
    assert bob.agent.stats.rejected == 1
    message, run = due[1]
    assert run is not None
    asyncio.run(run(message))
    assert seen == [b"x.sync"]


# -- put tokens ------------------------------------------------------------------------------


def send_and_flush(
    node: Node, to: ContactCard, text: str, bundles: dict[bytes, bytes]
) -> list[bytes]:
    """Send ``text`` as the node's identity; the envelopes that left the outbox."""
    node.agent.send_as(to, Content.text_message(text, now_ms=int(T0 * 1000)), now=T0)
    for engine, device in node.agent.bundles_due(T0):
        node.agent.bundle_received(engine, device, bundles[bytes(device.mailbox)], now=T0)
    entries = list(node.agent.outbox.due(T0, 64))
    for entry in entries:
        node.agent.delivered(entry.message_id)
    return [entry.envelope for entry in entries]


def test_the_first_mail_to_a_contact_carries_a_token_the_contact_keeps_for_our_mailbox(
    pair: tuple[Node, Node, dict[bytes, bytes]],
) -> None:
    alice, bob, bundles = pair
    envelopes = send_and_flush(alice, bob.card, "hi", bundles)
    assert len(envelopes) == 3  # the text, the put.token and the mb.tag controls
    token = alice.agent.tokens.issued_to(bob.card.identity_id)
    assert token is not None
    version, registered = alice.agent.token_registration(bytes(alice.card.mailbox))
    assert (version, registered) == (1, (token,))
    assert alice.agent.token_registration(bytes(bob.card.mailbox)) == (0, ())  # not ours
    for envelope in envelopes:
        accepted = bob.agent.accept_many(bob.engine, [envelope], now=T0)
        assert accepted.dropped == []
    assert bob.agent.tokens.token_for(bytes(alice.card.mailbox)) == token
    # The control is handled on receipt: its queue entry runs a no-op handler, not a refusal.
    due = bob.agent.controls_due(bob.engine, bob.identity)
    assert [(m.kind, h is not None) for m, h in due] == [
        (PUT_TOKEN_KIND, True),
        (MAILBOX_TAG_KIND, True),
    ]
    assert bob.agent.stats.rejected == 0
    # Only the first mail carries one; the token survives a restart.
    assert len(send_and_flush(alice, bob.card, "again", bundles)) == 1
    reloaded = PutTokens(alice.store)
    reloaded.load()
    assert reloaded.registration == (1, (token,))
    bob_again = PutTokens(bob.store)
    bob_again.load()
    assert bob_again.token_for(bytes(alice.card.mailbox)) == token


def test_removing_or_blocking_a_contact_revokes_its_put_token(
    pair: tuple[Node, Node, dict[bytes, bytes]],
) -> None:
    alice, bob, bundles = pair
    carol = Node("carol", bundles)
    alice.agent.contacts.add("carol", carol.card.to_text(), now=T0)
    send_and_flush(alice, bob.card, "hi bob", bundles)
    send_and_flush(alice, carol.card, "hi carol", bundles)
    mine = bytes(alice.card.mailbox)
    bob_token = alice.agent.tokens.issued_to(bob.card.identity_id)
    carol_token = alice.agent.tokens.issued_to(carol.card.identity_id)
    assert sorted(alice.agent.token_registration(mine)[1]) == sorted([bob_token, carol_token])
    with pytest.raises(DchatMessagingError):
        alice.agent.remove_contact("nobody")  # unknown: nothing revoked
    assert alice.agent.token_registration(mine)[0] == 2
    assert alice.agent.remove_contact("bob").identity_id == str(bob.card.identity_id)
    assert alice.agent.tokens.issued_to(bob.card.identity_id) is None
    version, registered = alice.agent.token_registration(mine)
    assert (version, registered) == (3, (carol_token,))  # a new version: the links re-register
    bob_secret = alice.agent.tags.issued_to(bob.card.identity_id)
    assert bob_secret is not None  # its tags are still drained: its next mail is a request
    epoch = alice.agent.tags.schedule.epoch(T0)
    bob_tag = alice.agent.tags.tag(bob_secret, epoch).mailbox
    muted = [t for t, _, _ in alice.agent.tags.watch(T0, [RELAY]) if t.mailbox == bob_tag]
    assert muted
    assert all(t.token == b"" for t in muted)  # but its links register no token
    links = alice.agent.mailbox_links([RELAY], now=T0)
    assert any(key.endswith(b"/muted") for key, _ in links)  # new links: they clear the set
    carol_secret = alice.agent.tags.issued_to(carol.card.identity_id)
    assert carol_secret is not None
    changed: list[bool] = []
    alice.agent.tags.changed = lambda: changed.append(True)
    alice.agent.tags.watch(T0, [RELAY])
    assert alice.agent.block(carol.card.identity_id) is False  # no open request
    assert alice.agent.token_registration(mine) == (4, ())
    assert alice.agent.tags.issued_to(carol.card.identity_id) is None  # its tags: not watched
    alice.agent.tags.notify()
    assert changed == [True]
    live = {tag.mailbox for tag, _, _ in alice.agent.tags.watch(T0, [RELAY])}
    assert alice.agent.tags.tag(carol_secret, epoch).mailbox not in live
    assert bob_tag in live
    assert carol.card.identity_id in alice.agent.requests.blocked()
    reloaded = PutTokens(alice.store)  # durable
    reloaded.load()
    assert reloaded.registration == (4, ())
    # Bob added again and written to: a fresh token, never the revoked one.
    alice.agent.contacts.add("bob", bob.card.to_text(), now=T0)
    send_and_flush(alice, bob.card, "back", bundles)
    fresh = alice.agent.tokens.issued_to(bob.card.identity_id)
    assert fresh is not None
    assert fresh != bob_token
    tokens = {t.token for t, _, _ in alice.agent.tags.watch(T0, [RELAY]) if t.mailbox == bob_tag}
    assert tokens
    assert b"" not in tokens  # its tags count again


def test_no_token_goes_to_a_card_that_is_not_a_contact() -> None:
    bundles: dict[bytes, bytes] = {}
    alice, carol = Node("alice", bundles), Node("carol", bundles)
    assert len(send_and_flush(alice, carol.card, "hello stranger", bundles)) == 1
    assert alice.agent.tokens.registration == (0, ())


def test_a_token_for_another_mailbox_than_the_senders_is_not_kept() -> None:
    tokens = PutTokens(MemoryMessageStore())
    payload = canonical_encode({"v": 1, "mb": b"A" * 32, "tok": b"t" * 16})
    assert not tokens.learn(payload, None)
    assert tokens.token_for(b"A" * 32) is None
    assert tokens.learn(payload, b"A" * 32)  # type: ignore[arg-type]
    assert tokens.token_for(b"A" * 32) == b"t" * 16


@given(data=st.binary(max_size=120))
def test_hostile_token_payloads_are_refused_quietly(data: bytes) -> None:
    tokens = PutTokens(MemoryMessageStore())
    if not tokens.learn(data, b"A" * 32):  # type: ignore[arg-type]
        assert tokens.token_for(b"A" * 32) is None


def test_a_revoked_token_leaves_the_registration_and_a_rollback_undoes_an_issue() -> None:
    store = MemoryMessageStore()
    tokens = PutTokens(store)
    peer = Identity.generate().identity_id
    assert tokens.issue(peer) is not None
    assert tokens.issue(peer) is None
    assert tokens.revoke(peer)
    assert tokens.registration == (2, ())
    other = Identity.generate().identity_id

    def issue_then_fail() -> None:
        with store.transaction():
            tokens.issue(other)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        issue_then_fail()
    assert tokens.issued_to(other) is None
    assert tokens.registration == (2, ())


@pytest.mark.parametrize(
    "stored",
    [
        {"v": 1, "issued": {"x": 5}, "held": {}},
        {"v": 1, "issued": {}, "held": {"zz": b"t" * 16}},
        {"v": 1, "issued": [], "held": {}},
        {"issued": {}, "held": {}},
    ],
)
def test_damaged_stored_put_tokens_are_a_typed_error(stored: dict[str, object]) -> None:
    store = MemoryMessageStore()
    store.put_state("put_tokens", canonical_encode(stored))
    with pytest.raises(DchatMessagingError):
        PutTokens(store).load()
