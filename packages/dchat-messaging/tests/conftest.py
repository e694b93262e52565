"""Engines wired through an in-memory relay: the messaging unit-test harness."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from dchat_core import IdentityId, MailboxId
from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import ContactCard, Identity
from dchat_messaging import (
    Content,
    DeviceAddress,
    DeviceKeys,
    EngineEvent,
    MessagingEngine,
    SealedEnvelope,
)
from dchat_messaging.testing import MemoryMessageStore

RELAY = "127.0.0.1:7400"


@dataclass
class Directory:
    """Devices per identity (what documents would say)."""

    devices: dict[IdentityId, dict[bytes, DeviceAddress]] = field(default_factory=dict)

    def add(self, address: DeviceAddress) -> None:
        self.devices.setdefault(address.identity, {})[address.device_id] = address

    def remove(self, address: DeviceAddress) -> None:
        self.devices.get(address.identity, {}).pop(address.device_id, None)

    def is_device(self, identity: IdentityId, device_key: bytes) -> bool:
        return device_key in self.devices.get(identity, {})

    def address(self, identity: IdentityId, device_key: bytes) -> DeviceAddress | None:
        return self.devices.get(identity, {}).get(device_key)

    vouched: list[tuple[IdentityId, bytes]] = field(default_factory=list)
    documents: dict[bytes, tuple[IdentityId, frozenset[bytes]]] = field(default_factory=dict)

    def vouch(
        self, identity: IdentityId, device_key: bytes, document: bytes, *, now: float
    ) -> bool:
        """A stand-in for document checks: ``documents`` maps a document to what it lists."""
        listed = self.documents.get(document)
        if listed is None or listed[0] != identity or device_key not in listed[1]:
            return False
        self.vouched.append((identity, device_key))
        return True


@dataclass
class Relay:
    """Mailboxes and prekey bundles, as a relay keeps them (minus the network)."""

    mail: dict[bytes, list[bytes]] = field(default_factory=dict)
    last: dict[bytes, bytes] = field(default_factory=dict)
    one_time: dict[bytes, list[bytes]] = field(default_factory=dict)
    recorded: list[bytes] = field(default_factory=list)

    def take_bundle(self, mailbox: bytes) -> bytes:
        stack = self.one_time.get(mailbox)
        return stack.pop(0) if stack else self.last[mailbox]


class Device:
    """One engine with its store, as a node would run it."""

    def __init__(
        self,
        identity: Identity,
        card: ContactCard,
        relay: Relay,
        directory: Directory,
        *,
        linked: bool = False,
    ) -> None:
        if linked:
            key, exchange = SigningKey.generate(), PrivateKey.generate()
            mailbox = MailboxId.derive(key.public_key.to_bytes())
        else:
            key, exchange, mailbox = identity.signing_key, identity.encryption_key, card.mailbox
        self.keys = DeviceKeys(card.identity_id, key, exchange, mailbox, card)
        self.address = DeviceAddress(
            card.identity_id, key.public_key, exchange.public_key, mailbox, RELAY
        )
        self.card = card
        self.relay = relay
        self.directory = directory
        directory.add(self.address)
        self.store = MemoryMessageStore()
        self.engine = MessagingEngine(self.keys, self.store, directory=directory)
        self.publish(now=1000.0)

    def publish(self, *, now: float, held: int | None = None) -> None:
        upload = self.engine.prekey_upload(held=held, now=now)
        assert upload is not None
        mb = bytes(self.address.mailbox)
        if upload.replace:
            self.relay.one_time[mb] = []
        self.relay.last[mb] = upload.last_resort
        self.relay.one_time.setdefault(mb, []).extend(blob for _, blob in upload.one_time)

    def send(
        self,
        to: list[DeviceAddress],
        text: str,
        *,
        now: float,
        copies: list[DeviceAddress] | None = None,
    ) -> Content:
        content = Content.text_message(text, now_ms=int(now * 1000))
        waiting = self.engine.send(content, to, now=now, copies=copies or [])
        for device in waiting:
            bundle = self.relay.take_bundle(bytes(device.mailbox))
            self.engine.bundle_received(device, bundle, now=now)
        self.flush()
        return content

    def flush(self) -> None:
        """Deliver the whole outbox to the relay (and record every envelope)."""
        for entry in self.store.due(float("inf"), 10_000):
            self.relay.mail.setdefault(entry.mailbox, []).append(entry.envelope)
            self.relay.recorded.append(entry.envelope)
            self.store.mark_sent(entry.message_id)

    def fetch(self, *, now: float, reverse: bool = False) -> list[EngineEvent]:
        mailbox = bytes(self.address.mailbox)
        items = self.relay.mail.pop(mailbox, [])
        if reverse:
            items.reverse()
        events: list[EngineEvent] = []
        for raw in items:
            events.extend(self.engine.receive(raw, now=now))
        for device in self.engine.needs_bundles():  # a renewal waits for a bundle
            bundle = self.relay.take_bundle(bytes(device.mailbox))
            self.engine.bundle_received(device, bundle, now=now)
        self.flush()
        return events

    def texts(self, direction: str = "in") -> list[str]:
        return [m.text for m in self.store.messages.values() if m.direction == direction]


def person(name: str, relay: Relay, directory: Directory) -> Device:
    identity = Identity.generate()
    card = ContactCard.issue(identity, name=name, relay=RELAY)
    return Device(identity, card, relay, directory)


def envelope_mailbox(raw: bytes) -> bytes:
    return bytes(SealedEnvelope.from_bytes(raw).mailbox)


@dataclass
class Net:
    """A relay, a directory and the people on them."""

    relay: Relay = field(default_factory=Relay)
    directory: Directory = field(default_factory=Directory)

    def person(self, name: str) -> Device:
        return person(name, self.relay, self.directory)

    def linked(self, primary: Device) -> Device:
        """A second device of ``primary``'s identity."""
        return Device(Identity.generate(), primary.card, self.relay, self.directory, linked=True)


@pytest.fixture
def net() -> Net:
    return Net()
