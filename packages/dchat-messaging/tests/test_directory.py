"""DocumentDirectory: cards, followed document chains, vouching for linked devices."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given

from dchat_core import IdentityId
from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import (
    ContactCard,
    DeviceCertificate,
    DeviceRevocation,
    DocumentChain,
    Identity,
    IdentityDocument,
)
from dchat_messaging import DeviceAddress, DocumentDirectory
from dchat_testing import hostile_bytes, make_card, make_identity

T0 = 1_000_000.0
RELAY = "127.0.0.1:7400"


@dataclass
class Person:
    identity: Identity
    card: ContactCard
    genesis: IdentityDocument

    @property
    def id(self) -> IdentityId:
        return self.identity.identity_id

    def certify(self, device: SigningKey, *, on: IdentityDocument) -> IdentityDocument:
        cert = DeviceCertificate.issue(
            self.identity.signing_key,
            self.id,
            device.public_key,
            PrivateKey.generate().public_key,
            name="laptop",
            now=T0,
        )
        return on.successor(self.identity.signing_key, now=T0 + 1, devices=(*on.devices, cert))

    def revoke(self, device: SigningKey, *, on: IdentityDocument) -> IdentityDocument:
        entry = DeviceRevocation.issue(
            self.identity.signing_key, self.id, device.public_key, seq=on.seq + 1, now=T0 + 2
        )
        devices = tuple(c for c in on.devices if c.device_key != device.public_key)
        return on.successor(
            self.identity.signing_key, now=T0 + 2, devices=devices, revoked=(*on.revoked, entry)
        )


def person(name: str) -> Person:
    identity = make_identity()
    card = make_card(identity, name, relay=RELAY)
    genesis = IdentityDocument.genesis(
        identity.signing_key, identity.encryption_key.public_key, now=T0
    )
    return Person(identity, card, genesis)


def key_of(device: SigningKey) -> bytes:
    return device.public_key.to_bytes()


def test_the_primary_device_is_genuine_without_any_document() -> None:
    alice = person("alice")
    directory = DocumentDirectory()
    assert directory.is_device(alice.id, alice.identity.signing_key.public_key.to_bytes())
    assert not directory.is_device(alice.id, key_of(SigningKey.generate()))
    assert directory.devices_of(alice.card) == [DeviceAddress.primary(alice.card)]
    # No card yet: no address to answer a lost session on.
    assert directory.address(alice.id, alice.identity.signing_key.public_key.to_bytes()) is None
    directory.add_card(alice.card)
    assert directory.address(alice.id, alice.identity.signing_key.public_key.to_bytes()) == (
        DeviceAddress.primary(alice.card)
    )


def test_a_followed_chain_lists_linked_devices_and_sent_copies_skip_ourselves() -> None:
    alice, laptop = person("alice"), SigningKey.generate()
    directory = DocumentDirectory()
    directory.add_card(alice.card)
    directory.set_chain(DocumentChain(alice.certify(laptop, on=alice.genesis), now=T0), own=True)
    assert directory.own_identity == alice.id
    devices = directory.devices_of(alice.card)
    assert [d.device_id for d in devices] == [
        alice.identity.signing_key.public_key.to_bytes(),
        key_of(laptop),
    ]
    assert directory.is_device(alice.id, key_of(laptop))
    assert directory.address(alice.id, key_of(laptop)) == devices[1]
    copies = directory.own_devices(alice.card, besides=key_of(laptop))
    assert [d.device_id for d in copies] == [devices[0].device_id]


def test_a_document_vouches_for_a_device_it_lists_and_is_learned_once() -> None:
    alice, laptop = person("alice"), SigningKey.generate()
    directory = DocumentDirectory()
    document = alice.certify(laptop, on=alice.genesis).to_bytes()
    assert not directory.is_device(alice.id, key_of(laptop))
    assert directory.vouch(alice.id, key_of(laptop), document, now=T0 + 5)
    assert directory.is_device(alice.id, key_of(laptop))
    assert directory.take_learned() == [(alice.id, document)]
    assert directory.take_learned() == []


def test_a_document_extending_the_followed_chain_vouches_and_replaces_the_head() -> None:
    alice, laptop = person("alice"), SigningKey.generate()
    directory = DocumentDirectory()
    directory.set_chain(DocumentChain(alice.genesis, now=T0))
    assert directory.vouch(
        alice.id, key_of(laptop), alice.certify(laptop, on=alice.genesis).to_bytes(), now=T0 + 5
    )
    assert [d.device_id for d in directory.devices_of(alice.card)][1:] == [key_of(laptop)]


def test_a_document_does_not_vouch_for_another_identity_or_an_unlisted_device() -> None:
    alice, mallory, laptop = person("alice"), person("mallory"), SigningKey.generate()
    directory = DocumentDirectory()
    forged_for_alice = mallory.certify(laptop, on=mallory.genesis).to_bytes()
    assert not directory.vouch(alice.id, key_of(laptop), forged_for_alice, now=T0 + 5)
    unlisted = alice.certify(SigningKey.generate(), on=alice.genesis).to_bytes()
    assert not directory.vouch(alice.id, key_of(laptop), unlisted, now=T0 + 5)
    assert directory.take_learned() == []
    assert not directory.is_device(alice.id, key_of(laptop))


def test_a_revoked_device_is_refused_even_with_its_old_document() -> None:
    alice, laptop = person("alice"), SigningKey.generate()
    listed = alice.certify(laptop, on=alice.genesis)
    revoked = alice.revoke(laptop, on=listed)
    chain = DocumentChain(alice.genesis, now=T0)
    chain.update(listed, now=T0 + 1)
    chain.update(revoked, now=T0 + 2)
    directory = DocumentDirectory()
    directory.add_card(alice.card)
    directory.set_chain(chain)
    assert not directory.is_device(alice.id, key_of(laptop))
    assert directory.address(alice.id, key_of(laptop)) is None
    assert len(directory.devices_of(alice.card)) == 1
    # The laptop replays the version that listed it: older than the head, refused.
    assert not directory.vouch(alice.id, key_of(laptop), listed.to_bytes(), now=T0 + 5)
    assert not directory.is_device(alice.id, key_of(laptop))


def test_a_recovered_identity_must_extend_a_chain_already_followed() -> None:
    alice, laptop = person("alice"), SigningKey.generate()
    cert = alice.certify(laptop, on=alice.genesis).devices

    def first_version(**recovery: bytes) -> bytes:
        key = alice.identity.signing_key
        exchange = alice.identity.encryption_key.public_key
        return IdentityDocument.genesis(key, exchange, now=T0, devices=cert, **recovery).to_bytes()

    directory = DocumentDirectory()
    claimed = first_version(recovery=b"\x01" * 40)  # "recovered": nothing here to extend
    assert not directory.vouch(alice.id, key_of(laptop), claimed, now=T0 + 5)
    assert directory.vouch(alice.id, key_of(laptop), first_version(), now=T0 + 5)


@given(hostile_bytes(max_size=2048))
def test_hostile_document_bytes_never_vouch_and_never_raise(data: bytes) -> None:
    directory = DocumentDirectory()
    identity = IdentityId(b"\x07" * 32)
    assert not directory.vouch(identity, b"\x01" * 32, data, now=T0)
    assert not directory.vouch(identity, b"short", data, now=T0)
    assert directory.take_learned() == []
