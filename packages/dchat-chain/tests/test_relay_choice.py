"""Home-relay choice: the diversity, stake and pinning rules as properties over random views.

Views are small random directories whose relays share regions, tags, stake
accounts and labels from small pools, so clashes are common. A brute-force
search over each view is the oracle for "a diverse set exists".
"""

from __future__ import annotations

import contextlib
import itertools
import random
from dataclasses import replace

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dchat_chain.lowlevel import (
    ChoicePolicy,
    DirectoryView,
    HomeRelays,
    NotEnoughRelaysError,
    PinnedRelaysError,
    RelayListing,
    SingleOperatorViewError,
    UnsafeDirectoryError,
    choose_home_relays,
    operator_groups,
)

DAY = 86400.0
POLICY = ChoicePolicy(min_home_relays=2, rotation_period=30 * DAY, min_bond=5)


@st.composite
def listings(draw: st.DrawFn, i: int) -> RelayListing:
    return RelayListing(
        identity=bytes([i]) * 32,
        endpoint=f"10.0.0.{i}:7400",
        region=draw(st.sampled_from(["", "eu", "us", "asia"])),
        stake_ref=bytes([100 + draw(st.integers(0, 5))]) * 32,
        node_key=None if draw(st.integers(0, 9)) == 0 else bytes([200 - i]) * 32,
        tags=tuple(sorted(draw(st.sets(st.sampled_from(["as:1", "as:2", "as:3", "net:x"]))))),
        label=draw(st.sampled_from(["", "", "acme", "globex"])),
    )


@st.composite
def views(draw: st.DrawFn, max_relays: int = 9) -> DirectoryView:
    n = draw(st.integers(0, max_relays))
    entries = tuple(draw(listings(i)) for i in range(1, n + 1))
    bonds = {e.stake_ref: draw(st.sampled_from([0, 5, 10])) for e in entries}
    return DirectoryView(entries, bonds)


def _clash(a: RelayListing, b: RelayListing, groups: dict[bytes, int]) -> bool:
    return groups[a.identity] == groups[b.identity] or bool(a.network_tags & b.network_tags)


def _groups(view: DirectoryView) -> dict[bytes, int]:
    eligible = view.eligible(POLICY.min_bond)
    return {e.identity: g for e, g in zip(eligible, operator_groups(eligible), strict=True)}


def _diverse_set_exists(view: DirectoryView, size: int) -> bool:
    eligible, groups = view.eligible(POLICY.min_bond), _groups(view)
    return any(
        not any(_clash(a, b, groups) for a, b in itertools.combinations(combo, 2))
        for combo in itertools.combinations(eligible, size)
    )


def _check_safe(view: DirectoryView, home: HomeRelays) -> None:
    by_id = {e.identity: e for e in view.eligible(POLICY.min_bond)}
    groups = _groups(view)
    assert len(home.relays) >= POLICY.min_home_relays
    chosen = [by_id[r.identity] for r in home.relays]  # KeyError: an ineligible relay
    for relay, listing in zip(home.relays, chosen, strict=True):
        assert relay.node_key == listing.node_key
        assert view.bond_of(listing) >= POLICY.min_bond
    for a, b in itertools.combinations(chosen, 2):
        assert not _clash(a, b, groups)


@settings(max_examples=300)
@given(views(), st.integers(0, 2**32))
def test_a_choice_is_diverse_staked_and_complete(view: DirectoryView, seed: int) -> None:
    eligible = view.eligible(POLICY.min_bond)
    try:
        home = choose_home_relays(view, HomeRelays(), POLICY, 0.0, random.Random(seed))
    except SingleOperatorViewError:
        assert eligible
        assert len(set(operator_groups(eligible))) == 1
        return
    except NotEnoughRelaysError:
        assert not _diverse_set_exists(view, POLICY.min_home_relays)
        return
    _check_safe(view, home)
    assert home.changed_at == 0.0


@given(views(), st.integers(0, 2**32))
def test_a_view_under_one_operator_is_always_refused(view: DirectoryView, seed: int) -> None:
    # Tie every listing to one operator through a shared stake account.
    stake = bytes([99]) * 32
    tied = DirectoryView(
        tuple(replace(e, stake_ref=stake) for e in view.listings), {stake: POLICY.min_bond}
    )
    assume(tied.eligible(POLICY.min_bond))
    with pytest.raises(SingleOperatorViewError):
        choose_home_relays(tied, HomeRelays(), POLICY, 0.0, random.Random(seed))


@settings(max_examples=200)
@given(views(), st.integers(0, 2**32), st.floats(0, 29 * DAY))
def test_pinned_relays_stay_while_eligible(view: DirectoryView, seed: int, later: float) -> None:
    try:
        first = choose_home_relays(view, HomeRelays(), POLICY, 0.0, random.Random(seed))
    except UnsafeDirectoryError:
        return
    again = choose_home_relays(view, first, POLICY, later, random.Random(seed + 1))
    assert again == first  # before the rotation period nothing moves


@settings(max_examples=200)
@given(views(), st.integers(0, 2**32), st.data())
def test_losing_a_relay_replaces_only_that_one(
    view: DirectoryView, seed: int, data: st.DataObject
) -> None:
    try:
        first = choose_home_relays(view, HomeRelays(), POLICY, 0.0, random.Random(seed))
    except UnsafeDirectoryError:
        return
    gone = data.draw(st.sampled_from(first.relays))
    smaller = DirectoryView(
        tuple(e for e in view.listings if e.identity != gone.identity), view.bonds
    )
    try:
        second = choose_home_relays(smaller, first, POLICY, DAY, random.Random(seed))
    except UnsafeDirectoryError:
        return
    _check_safe(smaller, second)
    before = {r.identity for r in first.relays} - {gone.identity}
    after = {r.identity for r in second.relays}
    if before <= after:
        assert len(after - before) == 1
    assert second.changed_at == DAY


@settings(max_examples=200)
@given(views(), st.integers(0, 2**32), st.integers(1, 6))
def test_rotation_changes_at_most_one_relay_per_period(
    view: DirectoryView, seed: int, periods: int
) -> None:
    try:
        home = choose_home_relays(view, HomeRelays(), POLICY, 0.0, random.Random(seed))
    except UnsafeDirectoryError:
        return
    now = 0.0
    for step in range(periods * 3):
        now += POLICY.rotation_period / 3
        nxt = choose_home_relays(view, home, POLICY, now, random.Random(seed + step))
        _check_safe(view, nxt)
        old, new = {r.identity for r in home.relays}, {r.identity for r in nxt.relays}
        assert len(new - old) <= 1
        if new != old:
            assert home.changed_at is not None
            assert now - home.changed_at >= POLICY.rotation_period
            assert nxt.changed_at == now
        home = nxt


def test_rotation_happens_once_a_relay_was_pinned_long_enough() -> None:
    view = DirectoryView(
        tuple(
            RelayListing(bytes([i]) * 32, f"h{i}:1", f"r{i}", bytes([50 + i]) * 32, bytes([i]) * 32)
            for i in range(1, 5)
        ),
        {bytes([50 + i]) * 32: 10 for i in range(1, 5)},
    )
    home = choose_home_relays(view, HomeRelays(), POLICY, 0.0, random.Random(3))
    assert choose_home_relays(view, home, POLICY, 29 * DAY, random.Random(4)) == home
    rotated = choose_home_relays(view, home, POLICY, 30 * DAY, random.Random(4))
    assert len({r.identity for r in rotated.relays} - {r.identity for r in home.relays}) == 1
    assert rotated.changed_at == 30 * DAY


def test_home_relays_round_trip_and_refuse_garbage() -> None:
    view = DirectoryView(
        (
            RelayListing(b"\x01" * 32, "a:1", "eu", b"\x0a" * 32, b"\x11" * 32),
            RelayListing(b"\x02" * 32, "b:2", "us", b"\x0b" * 32, b"\x12" * 32),
        ),
        {b"\x0a" * 32: 5, b"\x0b" * 32: 5},
    )
    home = choose_home_relays(view, HomeRelays(), POLICY, 7.0, random.Random(0))
    assert HomeRelays.from_json(home.to_json()) == home
    assert sorted(a.split("@")[1] for a in home.addresses) == ["a:1", "b:2"]
    for bad in ("", "[]", '{"v": 2}', '{"v": 1, "relays": [], "changed_at": "x"}'):
        with pytest.raises(PinnedRelaysError):
            HomeRelays.from_json(bad)


@given(st.text(max_size=300))
def test_stored_home_relays_decode_or_fail_typed(text: str) -> None:
    with contextlib.suppress(PinnedRelaysError):
        HomeRelays.from_json(text)
