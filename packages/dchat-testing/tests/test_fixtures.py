"""Fixtures: seeded identities, in-memory link pairs and pumps, engine nets, the clock."""

from __future__ import annotations

import random

import pytest
import trio

from dchat_core import Clock, NodeId
from dchat_crypto import SigningKey
from dchat_messaging import MessageReceived
from dchat_network.lowlevel import HandshakeComplete, LinkConnection, LinkState
from dchat_network.lowlevel import MessageReceived as Got
from dchat_testing import (
    AutojumpClock,
    EngineNet,
    SimulationError,
    autojump_clock,
    envelope_mailbox,
    link_pair,
    make_card,
    make_identity,
    make_signing_key,
    pump_link,
)


def test_identities_and_keys_follow_the_rng() -> None:
    assert (
        make_identity(random.Random(3)).identity_id == make_identity(random.Random(3)).identity_id
    )
    assert (
        make_identity(random.Random(3)).identity_id != make_identity(random.Random(4)).identity_id
    )
    assert make_identity().identity_id != make_identity().identity_id
    assert make_signing_key(random.Random(1)) == make_signing_key(random.Random(1))
    identity = make_identity(random.Random(5))
    card = make_card(identity, "alice")
    assert card.identity_id == identity.identity_id
    assert card.name == "alice"


def test_link_pair_is_open_and_carries_messages_both_ways() -> None:
    pair = link_pair(rng=random.Random(1))
    assert pair.initiator.state is LinkState.OPEN
    assert pair.responder.state is LinkState.OPEN
    assert pair.send(b"ping") == b"ping"
    assert pair.send(b"x" * 100_000, from_initiator=False) == b"x" * 100_000


def test_link_pair_reports_handshake_events_and_pins_the_responder() -> None:
    key = make_signing_key(random.Random(9))
    pair = link_pair(responder_key=key, rng=random.Random(2))
    pair2 = link_pair(responder_key=key, rng=random.Random(2))
    # Same rng, same keys: the first handshake message is identical.
    assert pair.initiator_key == pair2.initiator_key
    assert NodeId.derive(pair.responder_key.public_key.to_bytes()) == NodeId.derive(
        key.public_key.to_bytes()
    )


def test_link_pair_pump_returns_events() -> None:
    pair = link_pair(rng=random.Random(4))
    pair.initiator.send_message(b"one")
    pair.responder.send_message(b"two")
    to_initiator, to_responder = pair.pump()
    assert [e.data for e in to_initiator] == [b"two"]  # type: ignore[union-attr]
    assert [e.data for e in to_responder] == [b"one"]  # type: ignore[union-attr]
    assert not any(isinstance(e, HandshakeComplete) for e in to_initiator + to_responder)


class Recording:
    """A link end that records the size of every delivery it gets."""

    def __init__(self, inner: LinkConnection) -> None:
        self.inner = inner
        self.sizes: list[int] = []

    def data_to_send(self) -> bytes:
        return self.inner.data_to_send()

    def receive_data(self, data: bytes) -> None:
        self.sizes.append(len(data))
        self.inner.receive_data(data)


def _ends() -> tuple[LinkConnection, LinkConnection]:
    keys = [SigningKey.from_bytes(bytes([i]) * 32) for i in (1, 2)]
    return (
        LinkConnection(initiator=True, node_key=keys[0]),
        LinkConnection(initiator=False, node_key=keys[1]),
    )


def test_pump_link_delivers_in_the_given_chunks_and_leaves_events_queued() -> None:
    a, b = _ends()
    left, right = Recording(a), Recording(b)
    pump_link(left, right, chunks=[3, 1])  # type: ignore[arg-type]
    assert isinstance(a.next_event(), HandshakeComplete)
    assert isinstance(b.next_event(), HandshakeComplete)
    for sizes in (left.sizes, right.sizes):
        assert sizes
        assert set(sizes) <= {1, 2, 3}  # 2: the tail of a buffer
    a.send_message(b"z" * 5000)
    right.sizes.clear()
    pump_link(left, right, chunks=[7])
    assert set(right.sizes[:-1]) == {7}
    assert sum(right.sizes) > 5000
    assert b.next_event() == Got(b"z" * 5000)
    assert b.next_event() is None


def test_pump_link_without_chunks_delivers_whole_buffers() -> None:
    a, b = _ends()
    right = Recording(b)
    pump_link(a, right)  # type: ignore[arg-type]
    assert len(right.sizes) == 2  # handshake messages 1 and 3, each whole


def test_pump_link_refuses_empty_chunks() -> None:
    a, b = _ends()
    with pytest.raises(SimulationError):
        pump_link(a, b, chunks=[4, 0])


def test_link_pair_pump_in_chunks_returns_the_same_events() -> None:
    pair = link_pair(rng=random.Random(6))
    pair.initiator.send_message(b"y" * 70_000)
    pair.responder.send_message(b"w")
    to_initiator, to_responder = pair.pump(chunks=[1, 999])
    assert to_initiator == [Got(b"w")]
    assert to_responder == [Got(b"y" * 70_000)]


def test_engine_net_delivers_between_people_and_follows_its_rng() -> None:
    net = EngineNet()
    alice, bob = net.person("alice"), net.person("bob")
    alice.send([bob.address], "hello", now=1001.0)
    (raw,) = net.relay.recorded
    assert envelope_mailbox(raw) == bytes(bob.address.mailbox)
    events = bob.fetch(now=1002.0)
    assert [e.text for e in events if isinstance(e, MessageReceived)] == ["hello"]
    assert bob.texts() == ["hello"]
    assert alice.texts("out") == ["hello"]
    laptop = net.linked(bob)
    assert net.directory.is_device(bob.card.identity_id, laptop.address.device_id)
    one, two = EngineNet(rng=random.Random(8)), EngineNet(rng=random.Random(8))
    assert one.person("a").card.identity_id == two.person("a").card.identity_id


def test_the_net_fixture_is_an_empty_engine_net(net: EngineNet) -> None:
    assert isinstance(net, EngineNet)
    assert net.relay.mail == {}
    assert net.directory.devices == {}


@pytest.fixture
def clock() -> AutojumpClock:
    return autojump_clock(epoch=1_000.0)


@pytest.fixture
def trio_clock(clock: AutojumpClock) -> trio.abc.Clock:
    return clock.trio_clock  # pytest-trio runs the test on this clock


async def test_autojump_clock_drives_trio_and_dchat_time(
    clock: AutojumpClock, trio_clock: trio.abc.Clock
) -> None:
    assert isinstance(clock, Clock)
    start = trio.current_time()
    assert clock.now() == pytest.approx(1_000.0 + start)
    await trio.sleep(3600)  # costs no real time
    assert trio.current_time() - start == pytest.approx(3600)
    assert clock.monotonic() == pytest.approx(start + 3600)
    clock.jump(10)
    assert clock.now() == pytest.approx(1_000.0 + start + 3610)
