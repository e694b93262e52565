"""Multi-path delivery in the engine: one outbox item per relay, and each envelope once.

A device with several home relays gets every envelope at each of them (or the
first ``k``: ``MessagingEngine.paths``); each copy is its own outbox item, so
each relay's queue keeps its own order and retries. The receiving engine
accepts the first copy to arrive and counts the others as duplicates,
whatever the interleaving of the relays' pushes.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_core import MessageId, NodeId
from dchat_messaging import Content, MessageReceived, Rejected
from dchat_messaging.lowlevel import Duplicate, outbox_id, path_outbox_id
from dchat_testing import EngineNet

if TYPE_CHECKING:
    from dchat_messaging import DeviceAddress
    from dchat_messaging.testing import MemoryOutboxEntry
    from dchat_testing import EngineDevice

T0 = 1000.0
NODE = NodeId.derive(b"relay b")
RELAYS = ("127.0.0.1:7400", f"{NODE}@127.0.0.1:7401", "127.0.0.1:7402")


def _homed(device: EngineDevice, relays: tuple[str, ...] = RELAYS) -> DeviceAddress:
    return dataclasses.replace(device.address, relays=relays)


def _queue(sender: EngineDevice, to: DeviceAddress, texts: list[str]) -> list[MemoryOutboxEntry]:
    """Send ``texts`` (a session is set up first); the outbox entries, in queue order."""
    for number, text in enumerate(texts):
        content = Content.text_message(text, now_ms=int((T0 + number) * 1000))
        for device in sender.engine.send(content, [to], now=T0 + number):
            bundle = sender.relay.take_bundle(bytes(device.mailbox))
            sender.engine.bundle_received(device, bundle, now=T0 + number)
    return list(sender.store.queued(10_000))


def test_each_envelope_is_queued_once_per_relay_in_order() -> None:
    net = EngineNet()
    alice, bob = net.person("alice"), net.person("bob")
    entries = _queue(alice, _homed(bob), ["m0", "m1"])
    assert [e.relay for e in entries] == [r.split("@")[-1] for r in RELAYS] * 2
    first = entries[0].message_id
    assert first != entries[1].message_id
    assert entries[1].message_id == path_outbox_id(first, "127.0.0.1:7401")
    assert len({e.envelope for e in entries[:3]}) == 1  # the very same bytes at each relay
    (sent,) = [m for m in alice.store.messages.values() if m.text == "m0"]
    assert first == outbox_id(MessageId(sent.message_id), bob.address.device_id)


def test_k_of_n_sends_to_the_first_k_relays_only() -> None:
    net = EngineNet()
    alice, bob = net.person("alice"), net.person("bob")
    alice.engine.paths = 2
    entries = _queue(alice, _homed(bob), ["m0"])
    assert [e.relay for e in entries] == ["127.0.0.1:7400", "127.0.0.1:7401"]


def test_a_single_relay_queues_exactly_as_before() -> None:
    net = EngineNet()
    alice, bob = net.person("alice"), net.person("bob")
    (entry,) = _queue(alice, bob.address, ["m0"])
    assert entry.relay == bob.address.paths()[0] == bob.card.relay


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), count=st.integers(1, 6), relays=st.integers(2, 3))
def test_every_interleaving_of_the_copies_is_accepted_once(
    data: st.DataObject, count: int, relays: int
) -> None:
    net = EngineNet()
    alice, bob = net.person("alice"), net.person("bob")
    texts = [f"m{i}" for i in range(count)]
    entries = _queue(alice, _homed(bob, RELAYS[:relays]), texts)
    assert len(entries) == count * relays
    # Each relay pushes its copies in its own queue order; the pushes interleave
    # at random, and a relay may push a copy again (its ack was lost).
    per_relay = [
        [e.envelope for e in entries if e.relay == r]
        for r in dict.fromkeys(e.relay for e in entries)
    ]
    arrivals: list[bytes] = []
    while any(per_relay):
        queue = data.draw(st.sampled_from([q for q in per_relay if q]))
        arrivals.append(queue[0])
        if not data.draw(st.booleans()):  # else: pushed again later
            queue.pop(0)
    events = []
    for raw in arrivals:
        events += bob.engine.receive(raw, now=T0 + 100)
    got = [e.text for e in events if isinstance(e, MessageReceived)]
    assert sorted(got) == sorted(texts)  # each exactly once, none lost
    assert not [e for e in events if isinstance(e, Rejected)]  # a copy is no error
    assert sum(isinstance(e, Duplicate) for e in events) == len(arrivals) - count
    assert sorted(bob.texts()) == sorted(texts)


def test_a_copy_after_a_restart_is_still_a_duplicate() -> None:
    """The seen set is durable: committed with the message, read back by a new engine."""
    net = EngineNet()
    alice, bob = net.person("alice"), net.person("bob")
    first, second = _queue(alice, _homed(bob, RELAYS[:2]), ["m0"])
    assert [type(e) for e in bob.engine.receive(first.envelope, now=T0)] == [MessageReceived]
    bob.restart()
    assert bob.engine.receive(second.envelope, now=T0) == [Duplicate()]
    assert bob.texts() == ["m0"]


def test_a_refused_envelope_is_not_remembered() -> None:
    """Only committed envelopes enter the seen set: a refused one stays refusable."""
    net = EngineNet()
    alice, bob = net.person("alice"), net.person("bob")
    (entry,) = _queue(alice, bob.address, ["m0"])
    tampered = entry.envelope[:-1] + bytes([entry.envelope[-1] ^ 1])
    for _ in range(2):
        assert [type(e) for e in bob.engine.receive(tampered, now=T0)] == [Rejected]
    assert [type(e) for e in bob.engine.receive(entry.envelope, now=T0)] == [MessageReceived]
