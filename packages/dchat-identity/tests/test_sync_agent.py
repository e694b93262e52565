"""The sync agent: two or three devices of one identity exchange sealed items in memory."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings

from dchat_core import MailboxId
from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import (
    ContactCard,
    DeviceCertificate,
    DocumentChain,
    ForgedRecordError,
    Identity,
    IdentityDocument,
    MalformedRecordError,
    RevokedDeviceError,
)
from dchat_identity.lowlevel import (
    LocalDevice,
    SyncAgent,
    SyncCounters,
    SyncDelivery,
    SyncedContact,
    SyncKey,
    contact_changes,
    plan_revocation,
)
from dchat_testing import hostile_bytes

from .conftest import SeededRng

NOW = 1.8e9
RELAY = "relay.example:7000"


@dataclass
class Device:
    local: LocalDevice
    agent: SyncAgent

    def inbox(self) -> set[MailboxId]:
        return {
            MailboxId.derive(k.public_key.to_bytes()) for k in SyncAgent.mailbox_keys(self.local)
        }


def _linked(alice: Identity, name: str, secret: bytes) -> tuple[LocalDevice, DeviceCertificate]:
    key, dh = SigningKey.generate(), PrivateKey.generate()
    cert = DeviceCertificate.issue(
        alice.signing_key, alice.identity_id, key.public_key, dh.public_key, name=name, now=NOW
    )
    card = ContactCard.issue(alice, name="alice", relay=RELAY).to_bytes()
    return LocalDevice("linked", key, dh, name, (SyncKey(secret),), card), cert


def _devices(
    *names: str,
) -> tuple[Identity, DocumentChain, Device, dict[str, Device]]:
    alice = Identity.generate()
    primary, own = LocalDevice.certify_primary(alice, now=NOW, rng=SeededRng(b"primary"))
    others, certs = {}, [own]
    for name in names:
        local, cert = _linked(alice, name, primary.sync_key.secret)
        others[name] = Device(local, SyncAgent(local.device_key.public_key.to_bytes()))
        certs.append(cert)
    doc = IdentityDocument.genesis(
        alice.signing_key, alice.encryption_key.public_key, now=NOW, devices=tuple(certs)
    )
    me = Device(primary, SyncAgent(primary.device_key.public_key.to_bytes()))
    return alice, DocumentChain(doc), me, others


def _for(device: Device, deliveries: list[SyncDelivery]) -> list[bytes]:
    inbox = device.inbox()
    return [d.ciphertext for d in deliveries if d.mailbox in inbox]


def _apply(device: Device, ciphertexts: list[bytes], chain: DocumentChain) -> int:
    applied = 0
    for ct in ciphertexts:
        item = SyncAgent.open_item(ct, device.local)
        assert item.ops is not None
        applied += device.agent.receive_ops(item.ops, device.local, chain, now=NOW)
    return applied


def test_a_change_reaches_every_other_device_and_applies_once() -> None:
    _, chain, phone, others = _devices("laptop", "tablet")
    ops = phone.agent.record([("set", "settings/theme", "dark"), ("add", "tags", "x")], now=NOW)
    deliveries = phone.agent.deliveries(ops, phone.local, chain)
    assert len(deliveries) == 2
    assert not _for(phone, deliveries)  # never to itself
    for device in others.values():
        mine = _for(device, deliveries)
        assert _apply(device, mine, chain) == 2
        assert device.agent.snapshot() == {
            "registers": {"settings/theme": "dark"}, "sets": {"tags": ["x"]}
        }  # fmt: skip
        before = device.agent.state.to_bytes()
        _apply(device, mine, chain)  # a redelivery changes nothing
        assert device.agent.state.to_bytes() == before
    with pytest.raises(ForgedRecordError):  # sealed to the other device
        SyncAgent.open_item(_for(others["tablet"], deliveries)[0], others["laptop"].local)


def test_out_of_order_delivery_converges_to_the_last_write() -> None:
    _, chain, phone, others = _devices("laptop")
    laptop = others["laptop"]
    first = phone.agent.deliveries(
        phone.agent.record([("set", "read/bob", "m1")], now=NOW), phone.local, chain
    )
    second = phone.agent.deliveries(
        phone.agent.record([("set", "read/bob", "m2")], now=NOW + 1), phone.local, chain
    )
    _apply(laptop, _for(laptop, second) + _for(laptop, first), chain)
    assert laptop.agent.state.get("read/bob") == "m2"
    assert laptop.agent.state.to_bytes() == phone.agent.state.to_bytes()


def test_large_changes_go_in_several_chunks() -> None:
    _, chain, phone, others = _devices("laptop")
    changes = [("set", f"settings/k{i}", "v" * 1000) for i in range(100)]
    deliveries = phone.agent.deliveries(phone.agent.record(changes, now=NOW), phone.local, chain)
    assert len(deliveries) >= 3
    assert _apply(others["laptop"], _for(others["laptop"], deliveries), chain) == 100


def test_synced_contacts_are_reported_until_the_caller_has_them() -> None:
    _, chain, phone, others = _devices("laptop")
    bob = ContactCard.issue(Identity.generate(), name="bob", relay=RELAY)
    carol = ContactCard.issue(Identity.generate(), name="carol", relay=RELAY)
    phone.agent.adopt_contacts([("bob", str(bob.identity_id), bob.to_bytes())], now=NOW)
    # Already held: the card is not even read again.
    phone.agent.adopt_contacts([("bob", str(bob.identity_id), b"not a card")], now=NOW)
    ops = phone.agent.record(contact_changes("carol", carol), now=NOW)
    laptop = others["laptop"]
    _apply(laptop, _for(laptop, phone.agent.deliveries(ops, phone.local, chain)), chain)
    assert [c.name for c in laptop.agent.missing_contacts([])] == ["carol"]  # bob not sent yet
    laptop_ops = laptop.agent.record(contact_changes("bob", bob), now=NOW)
    assert {c.name for c in laptop.agent.missing_contacts([])} == {"bob", "carol"}
    assert not list(laptop.agent.missing_contacts([str(bob.identity_id), str(carol.identity_id)]))
    assert laptop_ops


def test_a_synced_card_for_another_identity_is_refused() -> None:
    _, _, phone, _ = _devices()
    bob = ContactCard.issue(Identity.generate(), name="bob", relay=RELAY)
    mallory = ContactCard.issue(Identity.generate(), name="mallory", relay=RELAY)
    ident = str(bob.identity_id)
    phone.agent.record(
        [("set", f"contact.card/{ident}", mallory.to_bytes()), ("set", f"contact.name/{ident}",
         "bob"), ("add", "contacts", ident)], now=NOW,
    )  # fmt: skip
    with pytest.raises(MalformedRecordError):
        list(phone.agent.missing_contacts([]))


def test_after_a_revocation_the_rest_get_a_rekey_and_the_revoked_device_is_refused() -> None:
    alice, chain, phone, others = _devices("laptop", "tablet")
    laptop, tablet = others["laptop"], others["tablet"]
    phone.agent.record([("set", "settings/theme", "dark")], now=NOW)
    tablet_cert = next(c for c in chain.head.devices if c.name == "tablet")
    plan = plan_revocation(alice.signing_key, chain, phone.local, tablet_cert, now=NOW)
    doc = chain.head.successor(
        alice.signing_key, now=NOW, devices=plan.devices, revoked=plan.revoked
    )
    chain.update(doc)
    phone.local = plan.local
    deliveries = phone.agent.handover(
        phone.local, chain, doc, identity_key=alice.signing_key, rekeyed=True
    )
    assert not _for(tablet, deliveries)  # nothing for the revoked device, old key or new
    first, *state = _for(laptop, deliveries)
    item = SyncAgent.open_item(first, laptop.local)
    assert item.document == doc.to_bytes()
    assert item.rekey is not None
    key = SyncAgent.check_rekey(item.rekey, chain, laptop.local)
    assert key == plan.local.sync_key
    with pytest.raises(ForgedRecordError):  # a rekey is for one device only
        SyncAgent.check_rekey(item.rekey, chain, tablet.local)
    assert not state  # the state went to the new epoch's mailbox: not drained yet
    moved = SyncAgent.rekeyed(item.rekey, chain, laptop.local)
    assert moved is not None
    assert moved.sync_key == key
    assert SyncAgent.rekeyed(item.rekey, chain, moved) is None  # a redelivery: not newer
    laptop.local = moved  # now it drains the new mailbox too
    assert _apply(laptop, _for(laptop, deliveries)[1:], chain) == 1
    assert laptop.agent.state.get("settings/theme") == "dark"

    stale = tablet.agent.deliveries(
        tablet.agent.record([("set", "settings/theme", "light")], now=NOW), tablet.local, chain
    )
    item = SyncAgent.open_item(_for(laptop, stale)[0], laptop.local)
    assert item.ops is not None
    with pytest.raises(RevokedDeviceError):
        laptop.agent.receive_ops(item.ops, laptop.local, chain, now=NOW)


def test_a_handover_without_rekey_sends_the_document_under_the_current_key() -> None:
    alice, chain, phone, others = _devices("laptop")
    doc = chain.head.successor(alice.signing_key, now=NOW)
    chain.update(doc)
    deliveries = phone.agent.handover(
        phone.local, chain, doc, identity_key=alice.signing_key, rekeyed=False
    )
    (only,) = _for(others["laptop"], deliveries)  # an empty replica: no state to send
    item = SyncAgent.open_item(only, others["laptop"].local)
    assert (item.document, item.rekey, item.ops) == (doc.to_bytes(), None, None)


def test_the_replica_survives_storage() -> None:
    _, _, phone, _ = _devices()
    phone.agent.record([("set", "settings/a", 1), ("add", "contacts", "x")], now=NOW)
    replica_id = phone.local.device_key.public_key.to_bytes()
    restored = SyncAgent(replica_id, phone.agent.to_bytes())
    assert restored.state.to_bytes() == phone.agent.state.to_bytes()
    assert restored.replica.clock.to_bytes() == phone.agent.replica.clock.to_bytes()


@settings(max_examples=100)
@given(hostile_bytes(max_size=300))
def test_hostile_bytes_give_typed_errors(data: bytes) -> None:
    _, chain, phone, _ = _devices()
    with pytest.raises(MalformedRecordError):
        SyncAgent(b"replica", data)
    with pytest.raises(ForgedRecordError):
        SyncAgent.open_item(data, phone.local)
    with pytest.raises((MalformedRecordError, ForgedRecordError, RevokedDeviceError)):
        phone.agent.receive_ops(data, phone.local, chain, now=NOW)
    with pytest.raises(MalformedRecordError):
        SyncAgent.check_rekey(data, chain, phone.local)
    with pytest.raises(MalformedRecordError):
        SyncAgent.rekeyed(data, chain, phone.local)


def test_a_synced_contact_whose_name_is_taken_tries_numbered_names_then_gives_up() -> None:
    names = list(SyncedContact("bob", "dchat-id", b"").names())
    assert names == ["bob", *(f"bob-{n}" for n in range(2, 10))]


def test_channels_followed_before_a_link_are_adopted_once() -> None:
    _, _, phone, _ = _devices("laptop")
    phone.agent.record([("set", "channel/a", "link-a")], now=NOW)
    ops = phone.agent.adopt_channels({"a": "other", "b": "link-b"}, now=NOW)
    assert len(ops) == 1  # "a" is held already: its register is not overwritten
    assert phone.agent.registers("channel/") == {"a": "link-a", "b": "link-b"}
    assert phone.agent.adopt_channels({"b": "link-b"}, now=NOW) == []


def test_the_counters_keep_the_latest_refusal() -> None:
    counters = SyncCounters()
    counters.applied += 3
    counters.refused("tampered")
    counters.refused("unknown_device")
    assert counters.status(active=True) == {
        "active": True,
        "applied": 3,
        "rejected": 2,
        "last_error": "unknown_device",
    }
    assert SyncCounters().status(active=False)["last_error"] is None
