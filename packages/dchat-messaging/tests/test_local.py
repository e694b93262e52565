"""LocalEngines: the engines of a node's local identities and their fan-out."""

from __future__ import annotations

from dataclasses import replace

from dchat_core import IdentityId
from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import ContactCard, DeviceCertificate, DocumentChain, Identity, IdentityDocument
from dchat_messaging import (
    Content,
    DocumentDirectory,
    LocalEngines,
    MessageReceived,
    MessageRequests,
    Rejected,
    SessionReset,
)
from dchat_messaging.lowlevel import ReceiveStats
from dchat_messaging.testing import MemoryMessageStore

T0 = 1_000_000.0
RELAY = "127.0.0.1:7400"


def someone(name: str) -> tuple[Identity, ContactCard]:
    identity = Identity.generate()
    return identity, ContactCard.issue(identity, name=name, relay=RELAY)


def with_laptop(identity: Identity, laptop: SigningKey) -> DocumentChain:
    cert = DeviceCertificate.issue(
        identity.signing_key,
        identity.identity_id,
        laptop.public_key,
        PrivateKey.generate().public_key,
        name="laptop",
        now=T0,
    )
    doc = IdentityDocument.genesis(
        identity.signing_key, identity.encryption_key.public_key, now=T0, devices=(cert,)
    )
    return DocumentChain(doc, now=T0)


def engines() -> LocalEngines:
    return LocalEngines(MemoryMessageStore(), DocumentDirectory(), set())


def test_our_identity_writes_to_every_recipient_device_and_copies_to_our_others() -> None:
    (alice, alice_card), (_, bob_card) = someone("alice"), someone("bob")
    laptop = SigningKey.generate()
    local = engines()
    local.set_main(alice, alice_card)
    local.directory.set_chain(with_laptop(alice, laptop), own=True)
    main = local.main()
    assert main is not None
    assert main.keys.card == alice_card
    assert local.is_me(alice.identity_id)
    assert not local.is_me(bob_card.identity_id)
    content = Content.text_message("hi", now_ms=1)
    waiting = local.send(main, bob_card, content, now=T0, copies=True)
    assert [d.identity for d in waiting] == [bob_card.identity_id, alice.identity_id]
    assert waiting[1].device_id == laptop.public_key.to_bytes()
    assert local.pending_count() == 2
    local.forget_device(laptop.public_key.to_bytes())  # revoked: its copy goes too
    assert local.pending_count() == 1


def test_another_local_identity_sends_no_copies_and_carries_its_own_card() -> None:
    (alice, alice_card), (burner, burner_card), (_, bob_card) = (
        someone("alice"),
        someone("burner"),
        someone("bob"),
    )
    local = engines()
    local.set_main(alice, alice_card)
    engine = local.for_identity(burner, burner_card)
    assert engine is not local.main()
    assert local.for_identity(burner) is engine
    control = Content.control("x.hello", b"", now_ms=1)
    waiting = local.send(engine, bob_card, control, now=T0, copies=False, sender_card=burner_card)
    assert [d.identity for d in waiting] == [bob_card.identity_id]
    assert len(local.all()) == 2


def test_a_linked_device_speaks_for_its_identity_with_its_own_mailbox() -> None:
    _, alice_card = someone("alice")
    device, exchange = SigningKey.generate(), PrivateKey.generate()
    local = engines()
    assert local.main() is None
    engine = local.link_device(device, exchange, alice_card)
    assert local.main() is engine
    assert engine.keys.identity == alice_card.identity_id
    assert engine.keys.mailbox != alice_card.mailbox
    assert local.is_me(alice_card.identity_id)
    local.set_document(b"the document")
    assert engine.keys.document == b"the document"
    assert local.send_to_own_devices(engine, "x.sync", b"", now=T0) is not None  # the primary


def test_receive_stats_count_refusals_resets_and_only_new_texts() -> None:
    stats = ReceiveStats()
    peer = IdentityId(b"\x05" * 32)
    text = MessageReceived(Content.text_message("hi", now_ms=1), peer, b"dev", new=True)
    control = replace(text, content=Content.control("x.y", b"", now_ms=1))
    reset = SessionReset(peer, b"dev")
    events = [Rejected("MalformedEnvelopeError"), reset, text, replace(text, new=False), control]
    texts, resets = stats.count(events, MessageRequests(MemoryMessageStore()))
    assert texts == [text]
    assert resets == [reset]
    assert (stats.received, stats.session_resets, stats.rejected) == (1, 1, 1)
    assert stats.refusals == {"MalformedEnvelopeError": 1}
