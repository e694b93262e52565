"""Fixtures: seeded identities, in-memory link pairs, the autojump clock."""

from __future__ import annotations

import random

import pytest
import trio

from dchat_core import Clock, NodeId
from dchat_network.lowlevel import HandshakeComplete, LinkState
from dchat_testing import (
    AutojumpClock,
    autojump_clock,
    link_pair,
    make_card,
    make_identity,
    make_signing_key,
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
