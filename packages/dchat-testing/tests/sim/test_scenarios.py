"""The CI seed budget: the real relay passes, the planted bug is found and replays.

Budget: 200 seeds of each scenario with the real relay (about two minutes in
all), run in chunks of 50 so that xdist's workers share a scenario (issue 15:
multi-relay-churn keeps at least 200 seeds); the planted bug is found at the
first failing seed, searched up to 200.
"""

from __future__ import annotations

import io
import shlex

import pytest

from dchat_testing.cli import main
from dchat_testing.sim import SCENARIOS, ScenarioOptions, run_scenario, run_seeds

CHAIN_SCENARIOS = ("byzantine-equivocation", "leader-crash")
GROUP_SCENARIOS = ("group-membership",)  # its own budget: tests/sim/test_group_scenario.py

pytestmark = pytest.mark.slow

CI_SEEDS = 200
SEED_CHUNK = 50
CI_CHUNKS = [range(i, min(i + SEED_CHUNK, CI_SEEDS)) for i in range(0, CI_SEEDS, SEED_CHUNK)]
# The chain scenarios carry no chat messages; tests/sim/test_chain_scenarios.py
# runs them with their own invariants and seed budget.
MESSAGING = sorted(n for n in SCENARIOS if n not in CHAIN_SCENARIOS + GROUP_SCENARIOS)


def test_every_scenario_is_covered_by_one_budget() -> None:
    assert set(MESSAGING) | set(CHAIN_SCENARIOS) | set(GROUP_SCENARIOS) == set(SCENARIOS)
    assert len(MESSAGING) >= 4


def test_the_chunks_cover_the_ci_seeds_once() -> None:
    assert [seed for chunk in CI_CHUNKS for seed in chunk] == list(range(CI_SEEDS))
    assert CI_SEEDS >= 200  # issue 15: multi-relay-churn over at least 200 seeds


@pytest.mark.parametrize("seeds", CI_CHUNKS, ids=lambda s: f"seeds{s.start}-{s.stop - 1}")
@pytest.mark.parametrize("name", MESSAGING)
def test_the_real_relay_keeps_every_invariant_over_the_ci_seeds(name: str, seeds: range) -> None:
    results = run_seeds(name, seeds)
    failures = [f"{r.violations[0]} -- {r.repro}" for r in results if not r.ok]
    assert failures == []
    # The runs did real work: every message was delivered, under faults.
    assert all(r.messages > 0 and r.delivered == r.messages for r in results)


def _first_failure(name: str, options: ScenarioOptions) -> int | None:
    for seed in range(CI_SEEDS):
        if not run_scenario(name, seed, options).ok:
            return seed
    return None


def test_the_planted_delete_on_fetch_bug_is_found_and_the_repro_replays_it() -> None:
    options = ScenarioOptions(relay="delete-on-fetch")
    seed = _first_failure("relay-crash-during-delivery", options)
    assert seed is not None, "the simulator missed the planted bug"
    out = io.StringIO()
    assert main(["--scenario", "relay-crash-during-delivery", "--seed", str(seed),
                 "--relay", "delete-on-fetch"], out) == 1  # fmt: skip
    fail_lines = [line for line in out.getvalue().splitlines() if line.startswith("FAIL")]
    assert len(fail_lines) == 1
    assert "no acknowledged message lost" in fail_lines[0]
    repro = fail_lines[0].split("replay: ", 1)[1]
    argv = shlex.split(repro)
    assert argv[:3] == ["uv", "run", "dchat-sim"]
    # The printed command reproduces the very same run, trace and violation.
    replay_out = io.StringIO()
    assert main([*argv[3:], "--trace"], replay_out) == 1
    original = run_scenario("relay-crash-during-delivery", seed, options)
    assert f"trace {original.trace_digest}" in replay_out.getvalue()
    assert fail_lines[0] in replay_out.getvalue()


def test_the_bug_is_also_found_on_lossy_links() -> None:
    seed = _first_failure("slow-and-lossy-links", ScenarioOptions(relay="delete-on-fetch"))
    assert seed is not None
