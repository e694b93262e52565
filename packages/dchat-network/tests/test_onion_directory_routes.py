"""OnionPool with whole routes from a chooser (the chain's directory): used, refusals kept."""

from __future__ import annotations

import random
import socket

import pytest
import trio

from dchat_core import DchatError, NodeId, RelayAddress
from dchat_network.lowlevel import OnionPool

LAST = RelayAddress("192.0.2.1", 7400, NodeId.derive(bytes(32)))
HOPS = [RelayAddress(f"10.0.0.{i}", 7400, NodeId.derive(bytes([i]) * 32)) for i in (1, 2)]


class NoRoute(DchatError):
    """Stands for the directory's NoDiverseRouteError."""


def test_routes_come_from_the_chooser_and_end_at_the_mailbox_relay() -> None:
    asked = []

    def routes(last: RelayAddress, rng: random.Random) -> list[RelayAddress]:
        asked.append(last)
        return [*HOPS, last]

    pool = OnionPool(["10.9.9.9:1", "10.9.9.8:1"], rng=random.Random(1), routes=routes)
    assert pool.from_directory
    assert pool.route_to(LAST) == [*HOPS, LAST]
    assert asked == [LAST]
    assert pool.route_error is None


def test_a_refused_route_is_raised_and_kept_for_status() -> None:
    def routes(last: RelayAddress, rng: random.Random) -> list[RelayAddress]:
        raise NoRoute("no diverse route")

    pool = OnionPool(rng=random.Random(1), routes=routes)
    with pytest.raises(NoRoute):
        pool.route_to(LAST)
    assert pool.route_error == "NoRoute: no diverse route"
    manual = OnionPool(HOPS, rng=random.Random(1))
    assert not manual.from_directory
    assert manual.route_to(LAST)[-1] == LAST


def test_reply_blocks_given_away_use_their_own_chooser() -> None:
    """Gift routes are entered by a peer: they need not start at a guard."""
    gift = [RelayAddress("10.0.0.7", 7400, NodeId.derive(bytes([7]) * 32)), HOPS[1]]
    pool = OnionPool(
        rng=random.Random(1),
        routes=lambda last, rng: [*HOPS, last],
        gift_routes=lambda last, rng: [*gift, last],
    )
    assert pool.route_to(LAST) == [*HOPS, LAST]
    assert pool.route_to(LAST, gift=True) == [*gift, LAST]


async def test_the_first_hop_is_told_unreachable() -> None:
    """A guard that does not answer is reported (the node replaces it after a while)."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dead = RelayAddress("127.0.0.1", port, NodeId.derive(bytes([9]) * 32))
    told: list[tuple[RelayAddress, bool]] = []
    pool = OnionPool(rng=random.Random(1), routes=lambda last, rng: [dead, HOPS[1], last])
    pool.first_hop = lambda relay, ok: told.append((relay, ok))
    with trio.fail_after(10):
        (result,) = await pool.deposit("onion:" + str(LAST), [(bytes(32), b"x" * 100)])
    assert isinstance(result, str)  # a failure code: never sent another way
    assert told == [(dead, False)]
