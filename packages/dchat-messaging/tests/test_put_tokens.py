"""Put tokens: issued with the first mail to a contact, kept by it for our mailbox only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_identity import ContactCard, Identity
from dchat_messaging import Content, UserMessaging
from dchat_messaging.lowlevel import PUT_TOKEN_KIND, PutTokens
from dchat_messaging.testing import MemoryMessageStore

T0 = 1_000_000.0
RELAY = "127.0.0.1:7400"


class Node:
    def __init__(self, name: str, bundles: dict[bytes, bytes]) -> None:
        self.identity = Identity.generate()
        self.card = ContactCard.issue(self.identity, name=name, relay=RELAY)
        self.store = MemoryMessageStore()
        self.agent = UserMessaging(self.store)
        self.agent.engines.set_main(self.identity, self.card)
        engine = self.agent.engines.main()
        assert engine is not None
        self.engine = engine
        upload = engine.prekey_upload(held=None, now=T0)
        assert upload is not None
        bundles[bytes(self.card.mailbox)] = upload.last_resort

    def send(self, to: ContactCard, text: str, bundles: dict[bytes, bytes]) -> list[bytes]:
        """Send ``text``; returns the envelopes that left the outbox."""
        self.agent.send_as(to, Content.text_message(text, now_ms=int(T0 * 1000)), now=T0)
        for engine, device in self.agent.bundles_due(T0):
            self.agent.bundle_received(engine, device, bundles[bytes(device.mailbox)], now=T0)
        entries = list(self.agent.outbox.due(T0, 64))
        for entry in entries:
            self.agent.delivered(entry.message_id)
        return [entry.envelope for entry in entries]


@pytest.fixture
def pair() -> tuple[Node, Node, dict[bytes, bytes]]:
    bundles: dict[bytes, bytes] = {}
    alice, bob = Node("alice", bundles), Node("bob", bundles)
    alice.agent.contacts.add("bob", bob.card.to_text(), now=T0)
    bob.agent.contacts.add("alice", alice.card.to_text(), now=T0)
    return alice, bob, bundles


def test_the_first_mail_to_a_contact_carries_a_token_the_contact_keeps_for_our_mailbox(
    pair: tuple[Node, Node, dict[bytes, bytes]],
) -> None:
    alice, bob, bundles = pair
    envelopes = alice.send(bob.card, "hi", bundles)
    assert len(envelopes) == 2  # the text and the put.token control
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
    assert [(m.kind, h is not None) for m, h in due] == [(PUT_TOKEN_KIND, True)]
    assert bob.agent.stats.rejected == 0
    # Only the first mail carries one; the token survives a restart.
    assert len(alice.send(bob.card, "again", bundles)) == 1
    reloaded = PutTokens(alice.store)
    reloaded.load()
    assert reloaded.registration == (1, (token,))
    bob_again = PutTokens(bob.store)
    bob_again.load()
    assert bob_again.token_for(bytes(alice.card.mailbox)) == token


def test_no_token_goes_to_a_card_that_is_not_a_contact() -> None:
    bundles: dict[bytes, bytes] = {}
    alice, carol = Node("alice", bundles), Node("carol", bundles)
    assert len(alice.send(carol.card, "hello stranger", bundles)) == 1
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
