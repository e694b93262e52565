"""Onion routes from the directory: pairwise diverse hops, refused views, determinism.

Views reuse the home-relay tests' random directories (shared regions, tags,
stake accounts and labels, so clashes are common); a brute-force search over
each view is the oracle for "a diverse route exists".
"""

from __future__ import annotations

import itertools
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_chain.lowlevel import (
    DirectoryView,
    NoDiverseRouteError,
    OnionDirectory,
    OnionDirectoryError,
    RelayListing,
    SingleOperatorViewError,
    UnsafeDirectoryError,
)
from dchat_core import NodeId, RelayAddress

from .test_relay_choice import views

LAST_UNLISTED = f"{NodeId.derive(bytes(32))}@192.0.2.9:7400"


def _clash(a: tuple[str, int, frozenset[str]], b: tuple[str, int, frozenset[str]]) -> bool:
    return a[1] == b[1] or bool(a[2] & b[2])


def _oracle(directory: OnionDirectory, last: str, hops: int) -> bool:
    cands = directory.candidates
    end = next((c for c in cands if c[0] == last), (last, -1, frozenset()))
    pool = [c for c in cands if c[0] != last]
    return any(
        not any(_clash(a, b) for a, b in itertools.combinations([*combo, end], 2))
        for combo in itertools.combinations(pool, hops - 1)
    )


@settings(max_examples=200, deadline=None)
@given(views(max_relays=9), st.integers(0, 2**32), st.booleans(), st.integers(2, 4))
def test_no_route_has_two_hops_of_one_operator_or_tag(
    view: DirectoryView, seed: int, listed_last: bool, hops: int
) -> None:
    directory = OnionDirectory.from_view(view, min_bond=5)
    last = directory.candidates[0][0] if listed_last and directory.candidates else LAST_UNLISTED
    by_address = {c[0]: c for c in directory.candidates}
    by_address.setdefault(last, (last, -1, frozenset()))
    groups = {c[1] for c in directory.candidates}
    try:
        route = directory.route(last, random.Random(seed), hops=hops)
    except SingleOperatorViewError:
        assert len(groups) == 1
        return
    except NoDiverseRouteError:
        assert not _oracle(directory, last, hops)  # refused only when none exists
        return
    assert route[-1] == last
    assert len(route) == hops == len(set(route))
    for a, b in itertools.combinations(route, 2):
        assert not _clash(by_address[a], by_address[b])
    assert len({by_address[a][1] for a in route}) == hops  # never all one operator


@settings(max_examples=50, deadline=None)
@given(views(max_relays=9), st.integers(0, 2**32))
def test_deterministic_with_a_seeded_rng(view: DirectoryView, seed: int) -> None:
    directory = OnionDirectory.from_view(view, min_bond=5)
    answers = []
    for _ in range(2):
        try:
            answers.append(directory.route(LAST_UNLISTED, random.Random(seed)))
        except UnsafeDirectoryError as exc:
            answers.append(type(exc).__name__)
    assert answers[0] == answers[1]


def _listing(i: int, stake: int, *, region: str = "", label: str = "") -> RelayListing:
    return RelayListing(
        identity=bytes([i]) * 32,
        endpoint=f"10.0.0.{i}:7400",
        region=region,
        stake_ref=bytes([100 + stake]) * 32,
        node_key=bytes([200 - i]) * 32,
        label=label,
    )


def test_one_operator_view_is_refused() -> None:
    view = DirectoryView(tuple(_listing(i, 1) for i in range(1, 6)), {bytes([101]) * 32: 5})
    with pytest.raises(SingleOperatorViewError):
        OnionDirectory.from_view(view, 5).route(LAST_UNLISTED, random.Random(1))


def test_shared_region_leaves_no_route() -> None:
    entries = tuple(_listing(i, i, region="eu") for i in range(1, 5))
    view = DirectoryView(entries, {e.stake_ref: 5 for e in entries})
    directory = OnionDirectory.from_view(view, 5)
    with pytest.raises(NoDiverseRouteError):
        directory.route(LAST_UNLISTED, random.Random(1))
    # Two regions suffice for two hops before an unlisted mailbox relay.
    mixed = DirectoryView(
        (*entries[:2], _listing(9, 9, region="us")), {**view.bonds, bytes([109]) * 32: 5}
    )
    route = OnionDirectory.from_view(mixed, 5).route(LAST_UNLISTED, random.Random(1))
    assert len(route) == 3
    assert "10.0.0.9:7400" in "".join(route)


def test_listed_mailbox_relay_counts_by_node_id() -> None:
    entries = (_listing(1, 1, label="acme"), _listing(2, 2, label="acme"), _listing(3, 3))
    entries += (_listing(4, 4),)
    view = DirectoryView(entries, {e.stake_ref: 5 for e in entries})
    directory = OnionDirectory.from_view(view, 5)
    last = entries[0].address  # acme's: relay 2 (acme too) is never on its route
    for seed in range(30):
        route = directory.route(last, random.Random(seed))
        assert entries[1].address not in route
        assert route[-1] == last


def test_stored_form_round_trips_and_refuses_garbage() -> None:
    entries = tuple(_listing(i, i, region=r) for i, r in enumerate(["eu", "us", "asia"], 1))
    view = DirectoryView(entries, {e.stake_ref: 5 for e in entries})
    directory = OnionDirectory.from_view(view, 5)
    again = OnionDirectory.from_json(directory.to_json())
    assert again.candidates == directory.candidates
    unpinned = {"address": "10.0.0.1:1", "group": 1, "tags": []}
    for bad in ["", "[]", '{"v": 2}', '{"v": 1, "candidates": [{"address": "x"}]}',
                json.dumps({"v": 1, "candidates": [unpinned]})]:  # fmt: skip
        with pytest.raises(OnionDirectoryError):
            OnionDirectory.from_json(bad)


def test_route_addresses_are_pinned_and_end_with_the_given_relay() -> None:
    entries = tuple(_listing(i, i, region=r) for i, r in enumerate(["eu", "us", "asia"], 1))
    view = DirectoryView(entries, {e.stake_ref: 5 for e in entries})
    last = RelayAddress("192.0.2.9", 7400, NodeId.derive(bytes(32)))
    route = OnionDirectory.from_view(view, 5).route_addresses(last, random.Random(3))
    assert route[-1] is last
    assert len(route) == 3
    assert {str(hop) for hop in route[:-1]} <= {e.address for e in entries}
