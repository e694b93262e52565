"""The group-membership scenario: its invariants over 200 seeds, and that they bite.

Budget: 200 seeds (about a minute of CPU on the CI machine, the slow suite), in
chunks of 50 that xdist's workers share.
Fast: two seeds replay, and each invariant catches a run that breaks it.
"""

from __future__ import annotations

import pytest

from dchat_testing.sim import Simulation, run_scenario, run_seeds
from dchat_testing.sim._group_world import (
    GroupAgreement,
    GroupEpochs,
    GroupLedger,
    GroupNoLoss,
    GroupSend,
)
from dchat_testing.sim._simulation import Observation

CI_SEEDS = 200
# A seed that still fails is a real bug left open, named here and in
# docs/rationale.md ("Private groups"), never a flaky run (a seed replays).
# None in 200. 29 and 137 (a message never opened by one member that stayed)
# are fixed: a late older sender key is kept (four epochs per device), and a
# leave that loses a fork keeps the others' chains. Seed 41 (a member left on a
# losing branch) passes under the new ordering, but its cause is not fixed.
KNOWN_FAILING: frozenset[int] = frozenset()
SEED_CHUNK = 50
CI_CHUNKS = [range(i, min(i + SEED_CHUNK, CI_SEEDS)) for i in range(0, CI_SEEDS, SEED_CHUNK)]


def test_the_chunks_cover_the_ci_seeds_once() -> None:
    assert [seed for chunk in CI_CHUNKS for seed in chunk] == list(range(CI_SEEDS))


@pytest.mark.slow
@pytest.mark.parametrize("seeds", CI_CHUNKS, ids=lambda s: f"seeds{s.start}-{s.stop - 1}")
def test_group_invariants_hold_over_the_ci_seeds(seeds: range) -> None:
    results = run_seeds("group-membership", seeds)
    failures = {r.seed: f"{r.violations[0]} -- {r.repro}" for r in results if not r.ok}
    assert {s: f for s, f in failures.items() if s not in KNOWN_FAILING} == {}
    # A known one still fails: when it passes, take it off the list.
    assert set(failures) == KNOWN_FAILING & set(seeds)


def test_a_seed_replays_and_does_real_work() -> None:
    first, again = run_scenario("group-membership", 3), run_scenario("group-membership", 3)
    assert first.ok, first.violations
    assert first.trace_digest == again.trace_digest
    trace = "\n".join(first.trace_tail)
    assert first.events > 100
    assert "group" in trace or first.simulated_seconds > 0


def _opened(node: str, mid: str) -> Observation:
    return Observation(1.0, node, "group_message", {"message_id": mid})


class _User:
    def __init__(self, name: str, ident: str) -> None:
        self.name = name
        self.card = type("Card", (), {"identity_id": ident})()


def test_the_epoch_invariant_catches_a_message_opened_outside_its_epoch() -> None:
    ledger = GroupLedger()
    users = [_User("user-0", "id0"), _User("user-1", "id1")]
    check = GroupEpochs(ledger, users)  # type: ignore[arg-type]
    ledger.sends["m1"] = GroupSend("g", "id0", 0.5, 3, frozenset({"id0"}))
    assert list(check.observe(_opened("user-1", "m1")))  # not a member in the sender's view
    ledger.sends["m2"] = GroupSend("g", "id0", 0.5, 3, frozenset({"id0", "id1"}))
    assert not list(check.observe(_opened("user-1", "m2")))
    assert list(check.observe(_opened("user-1", "m2")))  # twice
    assert list(check.observe(_opened("user-1", "m3")))  # never sent


def test_the_history_is_the_chain_of_states_back_to_version_one() -> None:
    ledger = GroupLedger()
    ledger.states[b"s1"] = (1, None, frozenset({"a"}))
    ledger.states[b"s2"] = (2, b"s1", frozenset({"a", "b"}))
    ledger.states[b"s2x"] = (2, b"s1", frozenset({"a", "c"}))  # a branch that lost
    ledger.states[b"s3"] = (3, b"s2", frozenset({"b"}))
    assert ledger.history(b"s3") == {1: {"a"}, 2: {"a", "b"}, 3: {"b"}}
    assert ledger.history(b"s4") is None


def test_the_end_checks_need_a_world() -> None:
    sim = Simulation(1, label="group-membership")
    empty = GroupLedger()
    assert list(GroupAgreement(empty, []).finish(sim)) == []
    assert list(GroupNoLoss(empty, []).finish(sim)) == []
