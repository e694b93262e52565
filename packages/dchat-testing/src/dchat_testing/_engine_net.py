"""Messaging engines wired through an in-memory relay: the messaging unit-test harness.

A test builds an :class:`EngineNet` (the ``net`` fixture), adds people with
:meth:`EngineNet.person` and extra devices with :meth:`EngineNet.linked`, and
drives each :class:`EngineDevice` as a node would: ``send`` seals and queues,
``flush`` moves the outbox to the relay, ``fetch`` drains the device's mailbox
into its engine. Nothing runs by itself, so the test decides the order of every
delivery (and may reorder, drop or tamper with envelopes on the relay).

* :class:`StubDirectory`: which devices belong to which identity (what signed
  documents would say), with a stand-in for document vouching.
* :class:`MemoryRelay`: mailboxes and prekey bundles as a relay keeps them;
  every envelope ever delivered is also kept in ``recorded``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dchat_core import IdentityId, MailboxId
from dchat_crypto import PrivateKey, SigningKey
from dchat_messaging import (
    Content,
    DeviceAddress,
    DeviceKeys,
    EngineEvent,
    MessagingEngine,
    SealedEnvelope,
)
from dchat_messaging.testing import MemoryMessageStore

from ._fixtures import make_card, make_identity

if TYPE_CHECKING:
    import random

    from dchat_identity import ContactCard, Identity

__all__ = (
    "ENGINE_RELAY",
    "EngineDevice",
    "EngineNet",
    "MemoryRelay",
    "StubDirectory",
    "envelope_mailbox",
)

#: The relay address every device of an :class:`EngineNet` is homed on.
ENGINE_RELAY = "127.0.0.1:7400"


@dataclass
class StubDirectory:
    """Devices per identity (what documents would say)."""

    devices: dict[IdentityId, dict[bytes, DeviceAddress]] = field(default_factory=dict)
    vouched: list[tuple[IdentityId, bytes]] = field(default_factory=list)
    documents: dict[bytes, tuple[IdentityId, frozenset[bytes]]] = field(default_factory=dict)

    def add(self, address: DeviceAddress) -> None:
        """List ``address`` as a device of its identity."""
        self.devices.setdefault(address.identity, {})[address.device_id] = address

    def remove(self, address: DeviceAddress) -> None:
        """Unlist ``address``."""
        self.devices.get(address.identity, {}).pop(address.device_id, None)

    def is_device(self, identity: IdentityId, device_key: bytes) -> bool:
        """Whether ``device_key`` is a listed device of ``identity``."""
        return device_key in self.devices.get(identity, {})

    def address(self, identity: IdentityId, device_key: bytes) -> DeviceAddress | None:
        """The listed address of that device, if any."""
        return self.devices.get(identity, {}).get(device_key)

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
class MemoryRelay:
    """Mailboxes and prekey bundles, as a relay keeps them (minus the network)."""

    mail: dict[bytes, list[bytes]] = field(default_factory=dict)
    last: dict[bytes, bytes] = field(default_factory=dict)
    one_time: dict[bytes, list[bytes]] = field(default_factory=dict)
    recorded: list[bytes] = field(default_factory=list)

    def take_bundle(self, mailbox: bytes) -> bytes:
        """A one-time bundle while any is left, else the last-resort one."""
        stack = self.one_time.get(mailbox)
        return stack.pop(0) if stack else self.last[mailbox]


class EngineDevice:
    """One engine with its in-memory store, as a node would run it.

    A primary device uses the identity's own keys and mailbox; a linked one
    (``linked=True``) gets fresh device keys and its own mailbox. Creating a
    device lists it in the directory and publishes its prekeys at time 1000.
    """

    def __init__(
        self,
        identity: Identity,
        card: ContactCard,
        relay: MemoryRelay,
        directory: StubDirectory,
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
            card.identity_id, key.public_key, exchange.public_key, mailbox, (ENGINE_RELAY,)
        )
        self.card = card
        self.relay = relay
        self.directory = directory
        directory.add(self.address)
        self.store = MemoryMessageStore()
        self.engine = MessagingEngine(self.keys, self.store, directory=directory)
        self.publish(now=1000.0)

    def restart(self) -> None:
        """A new engine over the same store, as after the process restarted.

        What the old engine kept in memory is gone; change the store directly
        (a lost session, an old backup) only before this.
        """
        self.engine = MessagingEngine(self.keys, self.store, directory=self.directory)

    def publish(self, *, now: float, held: int | None = None) -> None:
        """Upload prekeys to the relay as the engine asks (``held``: how many it still has)."""
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
        """Send a text to ``to`` (fetching bundles as needed) and flush it to the relay."""
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
        """Drain this device's mailbox into the engine (in reverse order if asked)."""
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
        """The texts stored in one direction (``"in"`` or ``"out"``), in store order."""
        return [m.text for m in self.store.messages.values() if m.direction == direction]


def envelope_mailbox(raw: bytes) -> bytes:
    """The mailbox an encoded sealed envelope is addressed to."""
    return bytes(SealedEnvelope.from_bytes(raw).mailbox)


@dataclass
class EngineNet:
    """A relay, a directory and the people on them.

    ``rng``, if given, draws every person's identity keys (see
    :func:`dchat_testing.make_identity`); without it they are fresh random.
    """

    relay: MemoryRelay = field(default_factory=MemoryRelay)
    directory: StubDirectory = field(default_factory=StubDirectory)
    rng: random.Random | None = None

    def person(self, name: str) -> EngineDevice:
        """A new identity with its primary device."""
        identity = make_identity(self.rng)
        card = make_card(identity, name, relay=ENGINE_RELAY)
        return EngineDevice(identity, card, self.relay, self.directory)

    def linked(self, primary: EngineDevice) -> EngineDevice:
        """A second device of ``primary``'s identity."""
        return EngineDevice(
            make_identity(self.rng), primary.card, self.relay, self.directory, linked=True
        )
