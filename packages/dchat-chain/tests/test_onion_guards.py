"""Onion guards: every route starts at a pinned guard, guards stay diverse, rotation
follows the clock (deterministic with a seeded rng), unreachable or delisted guards go.

Views are the home-relay tests' random directories (clashes are common).
"""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_chain.lowlevel import (
    DirectoryView,
    GuardedRoutes,
    GuardPolicy,
    NoDiverseRouteError,
    OnionDirectory,
    OnionGuardsError,
    UnsafeDirectoryError,
)
from dchat_core import RelayAddress

from .test_onion_routes import LAST_UNLISTED, _clash, _listing
from .test_relay_choice import views

DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def _routes(directory: OnionDirectory) -> tuple[GuardedRoutes, Clock]:
    clock = Clock()
    return GuardedRoutes(directory, clock), clock


@settings(max_examples=60, deadline=None)
@given(views(max_relays=9), st.integers(0, 2**32), st.booleans(), st.lists(st.floats(0, 90)))
def test_routes_start_at_a_guard_and_stay_diverse(
    view: DirectoryView, seed: int, listed_last: bool, steps: list[float]
) -> None:
    directory = OnionDirectory.from_view(view, min_bond=5)
    routes, clock = _routes(directory)
    rng = random.Random(seed)
    last = directory.candidates[0][0] if listed_last and directory.candidates else LAST_UNLISTED
    by_address = {c[0]: c for c in directory.candidates}
    by_address.setdefault(last, (last, -1, frozenset()))
    for days in [0.0, *steps]:
        clock.t += days * DAY
        try:
            route = routes.route(RelayAddress.parse(last), rng)
        except UnsafeDirectoryError:
            continue
        guards = [g.address for g in routes.guards]
        for a, b in itertools.combinations(guards, 2):  # the guards are diverse
            assert not _clash(by_address[a], by_address[b])
        assert len(guards) <= 2
        text = [str(hop) for hop in route]
        assert text[0] in guards  # never a fresh first hop
        assert text[-1] == last
        assert len(set(text)) == 3
        for a, b in itertools.combinations(text, 2):
            assert not _clash(by_address[a], by_address[b])
        assert all(clock.t < g.until for g in routes.guards)


@settings(max_examples=50, deadline=None)
@given(views(max_relays=9), st.integers(0, 2**32), st.lists(st.floats(0, 90), max_size=6))
def test_rotation_is_deterministic_given_the_clock(
    view: DirectoryView, seed: int, steps: list[float]
) -> None:
    directory = OnionDirectory.from_view(view, min_bond=5)
    seen = []
    for _ in range(2):
        routes, clock = _routes(directory)
        rng, history = random.Random(seed), []
        for days in steps:
            clock.t += days * DAY
            history.append(routes.refresh(rng))
        seen.append(history)
    assert seen[0] == seen[1]


def _four() -> OnionDirectory:
    entries = tuple(_listing(i, i, region=f"r{i}") for i in range(1, 7))
    return OnionDirectory.from_view(DirectoryView(entries, {e.stake_ref: 5 for e in entries}), 5)


def test_guards_are_kept_for_their_lifetime_then_rotated() -> None:
    routes, clock = _routes(_four())
    rng = random.Random(7)
    first = routes.refresh(rng)
    assert len(first) == 2
    assert routes.changed
    for g in first:
        assert 30 * DAY <= g.until - g.since <= 60 * DAY
    firsts = set()
    for _ in range(50):
        clock.t += DAY / 10  # five days of sends: the same two first hops
        firsts.add(str(routes.route(RelayAddress.parse(LAST_UNLISTED), rng)[0]))
    assert firsts <= {g.address for g in first}
    assert routes.guards == first
    clock.t = min(g.until for g in first)
    after = routes.refresh(rng)
    gone = [g for g in first if g not in after]
    assert len(gone) == 1
    assert len(after) == 2
    assert gone[0].address not in {g.address for g in after}


def test_unreachable_or_delisted_guards_are_replaced() -> None:
    directory = _four()
    routes, clock = _routes(directory)
    rng = random.Random(3)
    down, other = routes.refresh(rng)
    routes.mark(RelayAddress.parse(down.address), reachable=False)
    for _ in range(20):  # a reachable guard first while one is down
        assert str(routes.route(RelayAddress.parse(LAST_UNLISTED), rng)[0]) == other.address
    clock.t += DAY / 2
    routes.mark(RelayAddress.parse(down.address), reachable=False)  # still down: since kept
    assert routes.refresh(rng)[0].down_since == clock.t - DAY / 2
    clock.t += DAY / 2
    assert down.address not in {g.address for g in routes.refresh(rng)}
    # A guard whose relay left the directory goes at once.
    kept = routes.guards
    smaller = OnionDirectory(tuple(c for c in directory.candidates if c[0] != kept[0].address))
    routes.directory = smaller
    assert kept[0] not in routes.refresh(rng)
    assert len(routes.guards) == 2


def test_no_guard_fits_the_mailbox_relay_refuses_rather_than_a_fresh_first_hop() -> None:
    entries = (_listing(1, 1, region="eu"), _listing(2, 2, region="us"), _listing(3, 3))
    view = DirectoryView(entries, {e.stake_ref: 5 for e in entries})
    directory = OnionDirectory.from_view(view, 5)
    routes, _ = _routes(directory)
    routes.policy = GuardPolicy(count=1)
    rng = random.Random(1)
    (guard,) = routes.refresh(rng)
    with pytest.raises(NoDiverseRouteError, match="guard"):
        routes.route(RelayAddress.parse(guard.address), rng)  # the guard is the mailbox relay
    other = next(c[0] for c in directory.candidates if c[0] != guard.address)
    assert str(routes.route(RelayAddress.parse(other), rng)[0]) == guard.address
    # Reply blocks given away start anywhere (a peer enters them, not us).
    free = {str(routes.free_route(RelayAddress.parse(LAST_UNLISTED), rng)[0]) for _ in range(40)}
    assert len(free) > 1


def test_stored_guards_round_trip_and_garbage_is_refused() -> None:
    routes, _ = _routes(_four())
    guards = routes.refresh(random.Random(5))
    again, _ = _routes(_four())
    again.restore(routes.to_json())
    assert again.guards == guards
    assert not routes.changed
    again.restore(None)
    assert again.guards == guards
    for bad in ["", "[]", '{"v": 2}', '{"v": 1, "guards": [{"address": 1}]}']:
        with pytest.raises(OnionGuardsError):
            again.restore(bad)


def test_resume_at_start_keeps_stored_guards_and_replaces_unreadable_ones() -> None:
    routes, _ = _routes(_four())
    guards = routes.refresh(random.Random(5))
    again, _ = _routes(_four())
    assert again.resume(routes.to_json())
    assert again.guards == guards
    assert again.KEY == "onion.guards"
    broken, _ = _routes(_four())
    assert not broken.resume("{not json")  # the node logs it; new guards at once
    assert len(broken.guards) == 2
    assert broken.changed
    fresh, _ = _routes(_four())
    assert fresh.resume(None)
    assert len(fresh.guards) == 2
