"""OnionPool with whole routes from a chooser (the chain's directory): used, refusals kept."""

from __future__ import annotations

import random

import pytest

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
