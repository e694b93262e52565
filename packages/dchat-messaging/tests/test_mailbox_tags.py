"""Rotating mailbox tags in UserMessaging: secrets handed out, mail addressed, tags watched."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import ContactCard, DeviceCertificate, DocumentChain, Identity, IdentityDocument
from dchat_messaging import Content, DchatMessagingError, MessagingEngine, UserMessaging
from dchat_messaging.lowlevel import CATCH_UP_LINKS, MAILBOX_TAG_KIND, MailboxTags, TagMailbox
from dchat_messaging.testing import MemoryMessageStore
from dchat_testing import AGENT_T0, AgentNode, agent_pair

T0 = AGENT_T0
RELAY = "127.0.0.1:7400"
EPOCH = 3600


def _send(node: AgentNode, to: str, text: str, at: float) -> list[tuple[bytes, bytes]]:
    """``node`` sends ``text`` at time ``at``; the ``(mailbox, envelope)`` pairs it queued."""
    content = Content.text_message(text, now_ms=int(at * 1000))
    node.agent.send_as(node.agent.contacts.find(to), content, now=at)
    for engine, device in node.agent.bundles_due(at):
        node.agent.bundle_received(engine, device, node.bundles[bytes(device.mailbox)], now=at)
    entries = list(node.agent.outbox.due(at + 1, 1000))
    for entry in entries:
        node.agent.delivered(entry.message_id)
    return node.agent.route(entries, at)  # as the node deposits them


def _introduced() -> tuple[AgentNode, AgentNode]:
    """Alice and Bob; Bob wrote first, so Alice holds Bob's tag secret (and Bob hers)."""
    alice, bob = agent_pair()
    mail = _send(bob, "alice", "hello", T0)
    accepted = alice.agent.accept_many(alice.engine, [e for _, e in mail], now=T0)
    assert [t.text for t in accepted.texts] == ["hello"]
    mail = _send(alice, "bob", "hi", T0)
    bob.agent.accept_many(bob.engine, [e for _, e in mail], now=T0)
    return alice, bob


def test_a_contact_writes_to_a_tag_that_changes_each_epoch_and_differs_per_contact() -> None:
    alice, bob = _introduced()
    carol = AgentNode("carol", alice.bundles)
    carol.agent.contacts.add("bob", bob.card.to_text(), now=T0)
    bob.agent.contacts.add("carol", carol.card.to_text(), now=T0)
    carol_mail = _send(carol, "bob", "first from carol", T0)  # a prekey message: not a tag yet
    assert {box for box, _ in carol_mail} == {bytes(bob.card.mailbox)}
    reply = _send(bob, "carol", "welcome", T0)
    carol.agent.accept_many(carol.engine, [e for _, e in reply], now=T0)
    published = bytes(bob.card.mailbox)
    boxes = []
    for epoch in range(3):
        at = T0 + epoch * EPOCH
        sent = {box for box, _ in _send(alice, "bob", f"e{epoch}", at)}
        assert published not in sent  # never the fixed mailbox again
        assert len(sent) == 1
        boxes.append(sent.pop())
        assert {box for box, _ in _send(carol, "bob", f"c{epoch}", at)} != {boxes[-1]}
    assert len(set(boxes)) == 3


def test_the_recipient_watches_exactly_what_senders_skewed_by_one_epoch_use() -> None:
    alice, bob = _introduced()
    now = T0 + 10 * EPOCH
    watched = bob.agent.mailbox_links([RELAY], now=now)
    live = {
        bytes(box.mailbox)
        for box, _ in watched.values()
        if isinstance(box, TagMailbox) and box.wait is None
    }
    sent = {}
    for skew in (-EPOCH, -1.0, 0.0, 1.0, EPOCH - 1):
        (box,) = {b for b, _ in _send(alice, "bob", f"skew {skew}", now + skew)}
        sent[skew] = box
    assert set(sent.values()) <= live
    assert len(live) == 3  # one contact holds a secret: its tags of e-1, e, e+1
    # Bob opens each (the engine accepts the tags it watches), and nothing else.
    (box, env), *_ = _send(alice, "bob", "opened", now)
    assert [t.text for t in bob.agent.accept(bob.engine, env, now=now).texts] == ["opened"]
    far = _send(alice, "bob", "two epochs ahead", now + 2 * EPOCH)
    assert far[0][0] not in live
    assert bob.agent.accept(bob.engine, far[0][1], now=now).dropped == ["EnvelopeRejectedError"]


def test_catch_up_drains_each_missed_epoch_once_per_relay_then_moves_the_mark() -> None:
    _, bob = _introduced()
    relays = ["r1:1", "r2:2"]
    later = T0 + 5 * EPOCH  # bob was away: epochs e0 .. e0+3 are behind the live window
    tags = bob.agent.tags
    first = tags.watch(later, relays)
    catch_up = [(tag, relay) for tag, relay, back in first if back]
    assert len(catch_up) == 2 * 5  # one contact, 2 relays, epochs e0-1 .. e0+3 (not live)
    assert len([t for t, _, back in first if not back]) == 3 * 2
    saved: list[object] = []

    async def worker(call: object) -> None:
        saved.append(call)
        call()  # type: ignore[operator]

    tags.worker = worker
    changed: list[int] = []
    tags.changed = lambda: changed.append(1)
    for tag, relay in [(t, r) for t, r in catch_up if r == "r1:1"]:
        asyncio.run(tags.drained(tag.mailbox, relay, later, None))
    assert saved == []  # drained at one relay only: the mark stays
    assert {r for _, r, back in tags.watch(later, relays) if back} == {"r2:2"}
    for tag, relay in [(t, r) for t, r in catch_up if r == "r2:2"]:
        asyncio.run(tags.drained(tag.mailbox, relay, later, None))
    assert len(changed) == len(catch_up)
    assert saved  # the mark moved and was saved
    assert not [t for t, _, back in tags.watch(later, relays) if back]
    reloaded = MailboxTags(bob.store)
    reloaded.load()
    assert not [t for t, _, back in reloaded.watch(later, relays) if back]
    # The epoch that leaves the live window next is drained once more (late deposits).
    moved = [t.epoch for t, _, back in reloaded.watch(later + EPOCH, relays) if back]
    assert moved == [tags.schedule.live(later).start] * 2


def test_catch_up_opens_at_most_a_few_links_per_relay() -> None:
    tags = MailboxTags(MemoryMessageStore())
    peers = [AgentNode(f"p{i}", {}).identity.identity_id for i in range(5)]
    for peer in peers:
        with tags._store.transaction():  # type: ignore[attr-defined]
            tags.issue(peer, now=T0)
    out = tags.watch(T0 + 50 * EPOCH, [RELAY])
    assert len([1 for _, _, back in out if back]) == CATCH_UP_LINKS
    assert len([1 for _, _, back in out if not back]) == 3 * len(peers)


def test_a_secret_for_another_mailbox_is_not_kept_and_a_burner_never_uses_one() -> None:
    tags = MailboxTags(MemoryMessageStore())
    payload = canonical_encode({"v": 1, "mb": b"A" * 32, "ep": 60, "sec": b"s" * 32})
    assert not tags.learn(payload, None)
    assert not tags.learn(payload, b"B" * 32)  # type: ignore[arg-type]
    assert tags.address(b"A" * 32, T0) is None
    assert tags.learn(payload, b"A" * 32)  # type: ignore[arg-type]
    assert tags.address(b"A" * 32, T0) == tags.address(b"A" * 32, T0 + 59.9 - T0 % 60)
    assert tags.address(b"A" * 32, T0) != tags.address(b"A" * 32, T0 + 60)


@given(data=st.binary(max_size=200))
def test_hostile_tag_payloads_are_refused_quietly(data: bytes) -> None:
    tags = MailboxTags(MemoryMessageStore())
    if not tags.learn(data, b"A" * 32):  # type: ignore[arg-type]
        assert tags.address(b"A" * 32, T0) is None


@pytest.mark.parametrize(
    "payload",
    [
        {"v": 1, "mb": b"A" * 32, "ep": 0, "sec": b"s" * 32},
        {"v": 1, "mb": b"A" * 32, "ep": 7 * 86400 + 1, "sec": b"s" * 32},
        {"v": 1, "mb": b"A" * 32, "ep": 60, "sec": b"s" * 31},
        {"v": 2, "mb": b"A" * 32, "ep": 60, "sec": b"s" * 32},
        {"v": 1, "mb": b"A" * 32, "ep": 60, "sec": b"s" * 32, "x": 1},
    ],
)
def test_malformed_tag_payloads_are_refused(payload: dict[str, object]) -> None:
    tags = MailboxTags(MemoryMessageStore())
    assert not tags.learn(canonical_encode(payload), b"A" * 32)  # type: ignore[arg-type]


def test_the_secret_goes_once_survives_a_restart_and_the_control_is_handled() -> None:
    alice, bob = _introduced()
    secret = bob.agent.tags.issued_to(alice.identity.identity_id)
    assert secret is not None
    due = alice.agent.controls_due(alice.engine, alice.identity)
    assert MAILBOX_TAG_KIND in [m.kind for m, h in due if h is not None]
    assert alice.agent.stats.rejected == 0
    again = MailboxTags(alice.store)
    again.load()
    assert again.address(bytes(bob.card.mailbox), T0) == alice.agent.tags.address(
        bytes(bob.card.mailbox), T0
    )
    kinds = [box for box, _ in _send(bob, "alice", "no second secret", T0)]
    assert len(kinds) == 1


def test_mail_written_offline_goes_to_the_tag_of_when_it_is_deposited() -> None:
    alice, bob = _introduced()
    content = Content.text_message("written on a plane", now_ms=int(T0 * 1000))
    alice.agent.send_as(alice.agent.contacts.find("bob"), content, now=T0)
    entries = list(alice.agent.outbox.due(T0 + 1, 10))
    assert [e.mailbox for e in entries] == [bytes(bob.card.mailbox)]  # queued unrouted
    landed = T0 + 6 * EPOCH
    ((box, envelope),) = alice.agent.route(entries, landed)
    ((early, copy),) = alice.agent.route(entries, T0)  # the same envelope, another epoch
    assert box != early
    live = {t.mailbox for t, _, back in bob.agent.tags.watch(landed, [RELAY]) if not back}
    assert box in live
    assert [t.text for t in bob.agent.accept(bob.engine, envelope, now=landed).texts] == [
        "written on a plane"
    ]
    bob.agent.tags.watch(T0, [RELAY])  # the engine accepts the early tag too
    assert bob.agent.accept(bob.engine, copy, now=landed).texts == []  # a duplicate
    assert bob.agent.stats.duplicates == 1


def test_issuing_a_secret_asks_the_shell_to_watch_the_new_tags() -> None:
    _, bob = agent_pair()
    woken: list[int] = []
    bob.agent.mailboxes_changed = lambda: woken.append(1)
    bob.agent.mailbox_links([RELAY], now=T0)
    bob.agent.tags.notify()
    assert woken == []  # nothing new
    _send(bob, "alice", "hi", T0)  # issues alice's secret
    bob.agent.tags.notify()
    assert woken == [1]
    links = bob.agent.mailbox_links([RELAY], now=T0)
    assert len([b for b, _ in links.values() if isinstance(b, TagMailbox)]) == 3
    bob.agent.tags.notify()
    assert woken == [1]


def _drain_until(bob: AgentNode, start: float, end: float) -> set[bytes]:
    """Bob's node from ``start`` to ``end``: at each epoch boundary it re-reads its tags
    and drains every catch-up tag it is handed (finding each empty); returns all watched."""
    tags, seen = bob.agent.tags, set[bytes]()
    at = start
    while at <= end:
        for _ in range(1000):  # catch-up comes CATCH_UP_LINKS at a time per relay
            out = tags.watch(at, [RELAY])
            seen |= {t.mailbox for t, _, _ in out}
            back = [t for t, _, b in out if b]
            if not back:
                break
            for tag in back:
                asyncio.run(tags.drained(tag.mailbox, RELAY, at, None))
        at = tags.schedule.next_change(at)
    return seen


def test_mail_from_a_sender_three_hours_behind_is_drained_by_the_skew_sweep() -> None:
    alice, bob = _introduced()
    now = T0 + 10 * EPOCH
    _drain_until(bob, T0, now)  # bob is up to date: the mark is past e-2
    ((box, envelope),) = _send(alice, "bob", "from a slow clock", now - 3 * EPOCH)
    sweep = bob.agent.tags.schedule.skew_sweep
    assert box in _drain_until(bob, now + 1, now + sweep + EPOCH)
    assert [t.text for t in bob.agent.accept(bob.engine, envelope, now=now).texts] == [
        "from a slow clock"
    ]
    # The cost is bounded: per sweep, one link per contact, relay and epoch of the band.
    band, _ = bob.agent.tags.schedule.sweep(now)
    assert len(band) == 16
    assert sweep == 4 * EPOCH


def test_mail_from_a_sender_ahead_is_drained_when_its_epoch_goes_live() -> None:
    alice, bob = _introduced()
    now = T0 + 10 * EPOCH
    ((box, _),) = _send(alice, "bob", "from a fast clock", now + 3 * EPOCH)
    live = {t.mailbox for t, _, b in bob.agent.tags.watch(now + 2 * EPOCH, [RELAY]) if not b}
    assert box in live


def test_a_burner_never_writes_to_its_owners_tags_and_gets_mail_on_its_own() -> None:
    alice, bob = _introduced()  # alice's own identity holds bob's tag secret
    burner = Identity.generate()
    card = ContactCard.issue(burner, name="burner", relay=RELAY)
    alice.agent.add_identity(burner)
    engine = alice.agent.engines.for_identity(burner, card)
    alice.bundles[bytes(card.mailbox)] = engine.prekey_upload(held=None, now=T0).last_resort  # type: ignore[union-attr]
    at = T0 + 5 * EPOCH
    content = Content.text_message("anonymous", now_ms=int(at * 1000))
    alice.agent.send_as(
        alice.agent.contacts.find("bob"), content, now=at, sender=burner, sender_card=card
    )
    for waiting, device in alice.agent.bundles_due(at):
        alice.agent.bundle_received(waiting, device, alice.bundles[bytes(device.mailbox)], now=at)
    entries = list(alice.agent.outbox.due(at + 1, 100))
    routed = alice.agent.route(entries, at)
    owner_tag = alice.agent.tags.address(bytes(bob.card.mailbox), at)
    assert owner_tag is not None
    # The text, and the burner's own tag secret: both to the published mailbox.
    assert [box for box, _ in routed] == [bytes(bob.card.mailbox)] * 2  # not the owner's tag
    accepted = bob.agent.accept_many(bob.engine, [e for _, e in routed], now=at)
    assert [t.text for t in accepted.texts] == ["anonymous"]
    reloaded = MailboxTags(alice.store)  # the mark survives a restart ...
    reloaded.load()
    burner_id = str(burner.identity_id)
    assert [reloaded.plain(e.message_id) for e in entries] == [burner_id] * 2
    alice.agent.deposited(entries, [b"stored"] * 2, now=at)  # ... until the relay stores it
    assert not alice.agent.tags.plain(entries[0].message_id)
    reloaded.load()
    assert not reloaded.plain(entries[0].message_id)
    # The owner's own mail to bob still goes to the tag.
    assert {box for box, _ in _send(alice, "bob", "as myself", at)} == {owner_tag}
    # Bob answers the burner on the burner's own tags, which alice's node watches
    # with the burner's engine; they share nothing with alice's own tags.
    bob.agent.contacts.add("burner", card.to_text(), now=at)
    answer = _send(bob, "burner", "who are you?", at)  # with bob's own secret for it
    boxes = {box for box, _ in answer}
    assert bytes(card.mailbox) not in boxes
    links = alice.agent.mailbox_links([RELAY], now=at).values()
    tag_boxes = {bytes(b.mailbox): b for b, _ in links if isinstance(b, TagMailbox)}
    assert boxes <= set(tag_boxes)
    assert {tag_boxes[box].engine for box in boxes} == {engine}
    assert boxes.isdisjoint(t.mailbox for t, _, _ in alice.agent.tags.watch(at, [RELAY]))
    accepted = alice.agent.accept_many(engine, [e for _, e in answer], now=at)
    assert [t.text for t in accepted.texts] == ["who are you?"]
    assert not accepted.dropped
    # Bob's secret for the burner is kept by the burner's tags, not by alice's.
    assert alice.agent.tags.address(bytes(bob.card.mailbox), at) == owner_tag
    burner_tag = alice.agent.tags.burners[burner_id].address(bytes(bob.card.mailbox), at)
    assert burner_tag not in (None, owner_tag)
    # Alice removes bob: the burner's tags for him are muted too (drained, no token).
    own = alice.agent.tags.burners[burner_id]
    assert {t.token != b"" for t, _, _ in own.watch(at, [RELAY])} == {True}
    alice.agent.remove_contact("bob")
    assert {t.token for t, _, _ in own.watch(at, [RELAY])} == {b""}


def _laptop_of(alice: AgentNode, bob: AgentNode) -> tuple[UserMessaging, MessagingEngine]:
    """A linked device of alice's identity that bob knows (from alice's document)."""
    laptop, exchange = SigningKey.generate(), PrivateKey.generate()
    cert = DeviceCertificate.issue(
        alice.identity.signing_key, alice.identity.identity_id, laptop.public_key,
        exchange.public_key, name="laptop", now=T0,
    )  # fmt: skip
    doc = IdentityDocument.genesis(
        alice.identity.signing_key, alice.identity.encryption_key.public_key, now=T0,
        devices=(cert,),
    )  # fmt: skip
    bob.agent.engines.directory.set_chain(DocumentChain(doc, now=T0))
    device = UserMessaging(MemoryMessageStore())
    engine = device.engines.link_device(laptop, exchange, alice.card)
    upload = engine.prekey_upload(held=None, now=T0)
    assert upload is not None
    alice.bundles[bytes(engine.keys.mailbox)] = upload.last_resort
    device.contacts.add("bob", bob.card.to_text(), now=T0)
    return device, engine


def test_a_linked_device_gets_mail_on_its_own_rotating_tags() -> None:
    alice, bob = _introduced()
    laptop, engine = _laptop_of(alice, bob)
    at = T0 + 3 * EPOCH
    # The laptop writes to bob once: with it goes a secret for the laptop's own mailbox.
    content = Content.text_message("from my laptop", now_ms=int(at * 1000))
    laptop.send_as(laptop.contacts.find("bob"), content, now=at)
    for waiting, device in laptop.bundles_due(at):
        laptop.bundle_received(waiting, device, alice.bundles[bytes(device.mailbox)], now=at)
    mail = laptop.route(list(laptop.outbox.due(at + 1, 100)), at)
    accepted = bob.agent.accept_many(bob.engine, [e for _, e in mail], now=at)
    assert [t.text for t in accepted.texts] == ["from my laptop"]
    # Bob's mail reaches both of alice's devices; the laptop's copy on the laptop's own tag.
    later = at + 2 * EPOCH
    routed = dict(_send(bob, "alice", "to both", later))
    assert len(routed) == 2
    assert bytes(engine.keys.mailbox) not in routed  # before: the laptop's fixed mailbox
    laptop_tags = {
        bytes(box.mailbox)
        for box, _ in laptop.mailbox_links([RELAY], now=later).values()
        if isinstance(box, TagMailbox)
    }
    alice_tags = {t.mailbox for t, _, _ in alice.agent.tags.watch(later, [RELAY])}
    boxes = [b for b, _ in laptop.mailbox_links([RELAY], now=later).values()]
    live = [b for b in boxes if isinstance(b, TagMailbox) and b.wait is None]
    assert len(live) == 3  # one contact: e-1, e, e+1
    assert laptop_tags.isdisjoint(alice_tags)  # separate secrets: the relay cannot join them
    ((on_laptop, copy),) = [(box, env) for box, env in routed.items() if box in laptop_tags]
    assert [t.text for t in laptop.accept(engine, copy, now=later).texts] == ["to both"]
    ((_, other),) = [(box, env) for box, env in routed.items() if box != on_laptop]
    assert [t.text for t in alice.agent.accept(alice.engine, other, now=later).texts] == ["to both"]


def test_a_muted_contact_stays_muted_after_a_restart_and_a_damaged_mark_is_refused() -> None:
    store = MemoryMessageStore()
    tags, peer, other = MailboxTags(store), Identity.generate(), Identity.generate()
    assert tags.mute(peer.identity_id) is False  # no secret: nothing to mute
    tags.issue(peer.identity_id, now=AGENT_T0)
    assert tags.mute(peer.identity_id) is True
    assert tags.mute(peer.identity_id) is False
    reloaded = MailboxTags(store)
    reloaded.load()
    assert {t.token for t, _, _ in reloaded.watch(AGENT_T0, ["r:1"])} == {b""}
    reloaded.issue(other.identity_id, now=AGENT_T0)
    assert reloaded.revoke(peer.identity_id) is True  # blocked: forgotten, mute and all
    assert reloaded.revoke(peer.identity_id) is False
    assert b"" not in {t.token for t, _, _ in reloaded.watch(AGENT_T0, ["r:1"])}
    store.put_state("mailbox_tags.muted", canonical_encode([1, 2]))
    with pytest.raises(DchatMessagingError):
        MailboxTags(store).load()
