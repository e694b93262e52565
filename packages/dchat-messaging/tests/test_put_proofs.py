"""Contact-proof secrets (section 41): handed out with the first mail, registered as a ring."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_crypto import VerifyKey
from dchat_identity import ContactCard, Identity
from dchat_messaging import Content, DchatMessagingError
from dchat_messaging.lowlevel import MAILBOX_TAG_KIND, PUT_PROOF_KIND, PutProofs
from dchat_messaging.testing import MemoryMessageStore
from dchat_privacy import ContactRing, ContactSecret
from dchat_privacy.lowlevel import ring_statement
from dchat_testing import AGENT_T0, AgentNode

T0 = AGENT_T0


@pytest.fixture
def pair() -> tuple[AgentNode, AgentNode, dict[bytes, bytes]]:
    bundles: dict[bytes, bytes] = {}
    alice, bob = AgentNode("alice", bundles), AgentNode("bob", bundles)
    alice.agent.contacts.add("bob", bob.card.to_text(), now=T0)
    bob.agent.contacts.add("alice", alice.card.to_text(), now=T0)
    alice.agent.put_auth = "proof"
    return alice, bob, bundles


def send_and_flush(
    node: AgentNode, to: ContactCard, text: str, bundles: dict[bytes, bytes]
) -> list[bytes]:
    node.agent.send_as(to, Content.text_message(text, now_ms=int(T0 * 1000)), now=T0)
    for engine, device in node.agent.bundles_due(T0):
        node.agent.bundle_received(engine, device, bundles[bytes(device.mailbox)], now=T0)
    entries = list(node.agent.outbox.due(T0, 64))
    for entry in entries:
        node.agent.delivered(entry.message_id)
    return [entry.envelope for entry in entries]


def test_removing_a_contact_takes_its_key_out_of_the_ring(
    pair: tuple[AgentNode, AgentNode, dict[bytes, bytes]],
) -> None:
    alice, bob, bundles = pair
    mine = bytes(alice.card.mailbox)
    send_and_flush(alice, bob.card, "hi", bundles)
    secret = alice.agent.proofs.issued_to(bob.card.identity_id)
    assert secret is not None
    public = ContactSecret.from_bytes(secret).public_key
    assert public in ContactRing.from_bytes(alice.agent.ring_registration(mine)[1])
    assert alice.agent.revoke_put_auth(bob.card.identity_id) is True
    assert alice.agent.revoke_put_auth(bob.card.identity_id) is False  # nothing left
    assert alice.agent.proofs.issued_to(bob.card.identity_id) is None
    version, ring, _key, _signature = alice.agent.ring_registration(mine)
    assert version == 2
    assert ring == b""  # no contact left: the relay's ring is cleared


def test_in_proof_mode_the_first_mail_carries_a_contact_secret_and_no_token(
    pair: tuple[AgentNode, AgentNode, dict[bytes, bytes]],
) -> None:
    alice, bob, bundles = pair
    mine = bytes(alice.card.mailbox)
    envelopes = send_and_flush(alice, bob.card, "hi", bundles)
    assert len(envelopes) == 3  # the text, the put.proof and the mb.tag controls
    assert alice.agent.tokens.issued_to(bob.card.identity_id) is None
    secret = alice.agent.proofs.issued_to(bob.card.identity_id)
    assert secret is not None
    assert alice.agent.token_registration(mine) == (0, ())  # no per-contact pseudonym
    version, ring, key, signature = alice.agent.ring_registration(mine)
    assert version == 1
    assert key == alice.identity.mailbox_key.public_key.to_bytes()  # the mailbox's own key
    VerifyKey.from_bytes(key).verify(signature, ring_statement(mine, ring))
    keys = ContactRing.from_bytes(ring)
    assert len(keys) == 8  # one contact among seven decoys
    assert ContactSecret.from_bytes(secret).public_key in keys
    assert alice.agent.ring_registration(bytes(bob.card.mailbox))[:2] == (0, b"")  # not ours
    for envelope in envelopes:
        assert bob.agent.accept_many(bob.engine, [envelope], now=T0).dropped == []
    held = bob.agent.secret_for(mine)
    assert held is not None
    assert held.to_bytes() == secret
    due = bob.agent.controls_due(bob.engine, bob.identity)
    assert [(m.kind, h is not None) for m, h in due] == [
        (PUT_PROOF_KIND, True),
        (MAILBOX_TAG_KIND, True),
    ]
    # The ring is the same after a restart (stored decoy seed), and bob keeps his secret.
    reloaded = PutProofs(alice.store)
    reloaded.load()
    assert reloaded.registration == (1, ring)
    bob_again = PutProofs(bob.store)
    bob_again.load()
    kept = bob_again.secret_for(mine)
    assert kept is not None
    assert kept.to_bytes() == secret


def test_a_new_contact_replaces_one_decoy_and_keeps_the_others() -> None:
    proofs = PutProofs(MemoryMessageStore())
    proofs.issue(Identity.generate().identity_id)
    first = set(ContactRing.from_bytes(proofs.registration[1]))
    proofs.issue(Identity.generate().identity_id)
    second = set(ContactRing.from_bytes(proofs.registration[1]))
    assert len(first) == len(second) == 8
    assert len(first & second) == 7  # a decoy left, the new key came: nothing else moved


def test_switching_modes_clears_what_the_other_mode_registered(
    pair: tuple[AgentNode, AgentNode, dict[bytes, bytes]],
) -> None:
    alice, bob, bundles = pair
    mine = bytes(alice.card.mailbox)
    alice.agent.put_auth = "token"
    send_and_flush(alice, bob.card, "hi", bundles)
    assert alice.agent.token_registration(mine)[1]
    assert alice.agent.ring_registration(mine)[:2] == (0, b"")
    alice.agent.put_auth = "proof"
    assert alice.agent.token_registration(mine) == (-2, ())  # an empty set clears the relay's
    send_and_flush(alice, bob.card, "again", bundles)
    assert alice.agent.proofs.issued == 1  # the contact gets a secret with the next mail
    alice.agent.put_auth = "token"
    assert alice.agent.ring_registration(mine)[:2] == (-2, b"")


def test_a_secret_for_another_mailbox_than_the_senders_is_not_kept() -> None:
    proofs = PutProofs(MemoryMessageStore())
    secret = ContactSecret.generate().to_bytes()
    payload = canonical_encode({"v": 1, "mb": b"A" * 32, "x": secret})
    assert not proofs.learn(payload, None)
    assert not proofs.learn(payload, b"B" * 32)  # type: ignore[arg-type]
    assert proofs.secret_for(b"A" * 32) is None
    assert proofs.learn(payload, b"A" * 32)  # type: ignore[arg-type]
    assert proofs.secret_for(b"A" * 32) is not None


@given(data=st.binary(max_size=120))
def test_hostile_secret_payloads_are_refused_quietly(data: bytes) -> None:
    proofs = PutProofs(MemoryMessageStore())
    if not proofs.learn(data, b"A" * 32):  # type: ignore[arg-type]
        assert proofs.secret_for(b"A" * 32) is None


@pytest.mark.parametrize("secret", [b"\x00" * 32, b"\xff" * 32, b"x" * 31])
def test_a_zero_or_non_canonical_secret_is_refused(secret: bytes) -> None:
    proofs = PutProofs(MemoryMessageStore())
    payload = canonical_encode({"v": 1, "mb": b"A" * 32, "x": secret})
    assert not proofs.learn(payload, b"A" * 32)  # type: ignore[arg-type]


def test_a_revoke_shrinks_the_ring_and_a_rollback_undoes_an_issue() -> None:
    store = MemoryMessageStore()
    proofs = PutProofs(store)
    peer, other = Identity.generate().identity_id, Identity.generate().identity_id
    assert proofs.issue(peer) is not None
    assert proofs.issue(peer) is None
    assert proofs.revoke(peer)
    assert proofs.registration == (2, b"")  # an empty ring: the relay removes it

    def issue_then_fail() -> None:
        with store.transaction():
            proofs.issue(other)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        issue_then_fail()
    assert proofs.issued_to(other) is None
    assert proofs.registration == (2, b"")


@pytest.mark.parametrize(
    "stored",
    [
        {"v": 1, "seed": b"s" * 32, "issued": {"x": 5}, "held": {}},
        {"v": 1, "seed": b"s" * 32, "issued": {}, "held": {"zz": b"t" * 32}},
        {"v": 1, "seed": b"s" * 32, "issued": {"x": b"\x00" * 32}, "held": {}},
        {"v": 1, "seed": b"s" * 31, "issued": {}, "held": {}},
        {"v": 1, "issued": {}, "held": {}},
    ],
)
def test_damaged_stored_secrets_are_a_typed_error(stored: dict[str, object]) -> None:
    store = MemoryMessageStore()
    store.put_state("put_proofs", canonical_encode(stored))
    with pytest.raises(DchatMessagingError):
        PutProofs(store).load()
