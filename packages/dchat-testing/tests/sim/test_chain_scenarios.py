"""The chain scenarios: validators keep agreement and progress, equivocation is caught.

Fast: a few seeds of each chain scenario, their invariants and determinism, the
CLI's replay line, and a planted fault (two colluding double-signers, more than
the f = 1 that 4 validators tolerate) that the agreement checker must catch.
Slow: 100 seeds of each scenario, in chunks of 20 that xdist's workers share
(one 100-seed test ran 2-3 minutes and could be the last thing a run waited for).
"""

from __future__ import annotations

import io
import shlex

import pytest

from dchat_testing.cli import main
from dchat_testing.sim import (
    SCENARIOS,
    ChainSpec,
    Observation,
    OneBlockPerHeight,
    Scenario,
    ScenarioOptions,
    ScenarioPlan,
    Simulation,
    build_chain_world,
    run_scenario,
    run_seeds,
)

CHAIN_SCENARIOS = ("byzantine-equivocation", "leader-crash")
FAST_SEEDS = range(2)
SLOW_SEEDS = range(100)
SEED_CHUNK = 20
SLOW_CHUNKS = [SLOW_SEEDS[i : i + SEED_CHUNK] for i in range(0, len(SLOW_SEEDS), SEED_CHUNK)]


def committed(seed: int, name: str) -> tuple[Simulation, list[Observation]]:
    """Run scenario ``name`` by hand; return the simulation and every commit."""
    sim = Simulation(seed, label=name)
    seen: list[Observation] = []
    sim.on("block_committed", seen.append)
    plan = SCENARIOS[name].build(sim, ScenarioOptions(), SCENARIOS[name].default_duration)
    sim.run(plan.fault_end)
    sim.heal()
    sim.run(plan.fault_end + plan.settle_max)
    sim.finish()
    return sim, seen


@pytest.mark.parametrize("name", CHAIN_SCENARIOS)
def test_chain_scenarios_keep_their_invariants_and_replay(name: str) -> None:
    results = run_seeds(name, FAST_SEEDS)
    assert [f"{r.violations[0]} -- {r.repro}" for r in results if not r.ok] == []
    again = run_scenario(name, FAST_SEEDS[0])
    assert again.trace_digest == results[0].trace_digest
    assert results[1].trace_digest != results[0].trace_digest


@pytest.mark.parametrize("name", CHAIN_SCENARIOS)
def test_the_runs_do_real_work_under_faults(name: str) -> None:
    sim, seen = committed(0, name)
    assert sim.violations == []
    validators = [n for n in sim.nodes.values() if n.name.startswith("validator-")]
    assert len(validators) == 4
    heights = {obs.node: int(obs.data["height"]) for obs in seen}
    assert min(heights.values()) >= 10  # about one block per second, faults included
    if name == "leader-crash":
        assert sum(v.crashes for v in validators) >= 2
    else:
        assert any(obs.data.get("txs") for obs in seen)  # the mempool fed blocks


def test_agreement_checker_flags_a_second_block_at_a_height() -> None:
    check = OneBlockPerHeight()
    first = Observation(1.0, "validator-0", "block_committed", {"height": 3, "block": "aa"})
    same = Observation(1.1, "validator-1", "block_committed", {"height": 3, "block": "aa"})
    other = Observation(1.2, "validator-2", "block_committed", {"height": 3, "block": "bb"})
    assert list(check.observe(first)) == []
    assert list(check.observe(same)) == []
    [violation] = check.observe(other)
    assert "validator-2" in violation.detail
    assert "height 3" in violation.detail


def _two_equivocators(sim: Simulation, options: ScenarioOptions, duration: float) -> ScenarioPlan:
    world = build_chain_world(sim, ChainSpec(equivocators=2))
    return ScenarioPlan(duration, world.quiescent, settle_max=10.0)


def test_two_colluding_double_signers_break_agreement_and_the_checker_sees_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # PLANTED FAULT: 2 of 4 validators collude (twin proposals, each honest
    # validator shown one twin and matching votes). That is beyond f = 1, so the
    # honest validators can decide different blocks; the checker must say so.
    planted = Scenario("planted-two-equivocators", "2 of 4 double-sign", 10.0, _two_equivocators)
    monkeypatch.setitem(SCENARIOS, planted.name, planted)
    failures = [r for r in run_seeds(planted.name, range(10)) if not r.ok]
    assert failures, "the agreement checker missed two colluding double-signers"
    assert failures[0].violations[0].invariant == "no two blocks committed at one height"


def test_a_failing_chain_seed_prints_a_replay_command(monkeypatch: pytest.MonkeyPatch) -> None:
    planted = Scenario("planted-two-equivocators", "2 of 4 double-sign", 10.0, _two_equivocators)
    monkeypatch.setitem(SCENARIOS, planted.name, planted)
    out = io.StringIO()
    assert main(["--scenario", planted.name, "--seed", "0"], out) == 1
    [fail] = [line for line in out.getvalue().splitlines() if line.startswith("FAIL")]
    assert "no two blocks committed at one height" in fail
    argv = shlex.split(fail.split("replay: ", 1)[1])
    assert argv == ["uv", "run", "dchat-sim", "--scenario", planted.name, "--seed", "0"]


def test_the_cli_runs_a_chain_scenario() -> None:
    out = io.StringIO()
    assert main(["--scenario", "leader-crash", "--seed", "7"], out) == 0
    assert "leader-crash" in out.getvalue()
    assert "failures    0" in out.getvalue()


def test_the_slow_chunks_cover_the_100_seeds_once() -> None:
    assert [seed for chunk in SLOW_CHUNKS for seed in chunk] == list(range(100))


@pytest.mark.slow
@pytest.mark.parametrize("seeds", SLOW_CHUNKS, ids=lambda s: f"seeds{s.start}-{s.stop - 1}")
@pytest.mark.parametrize("name", CHAIN_SCENARIOS)
def test_chain_scenarios_keep_their_invariants_over_100_seeds(name: str, seeds: range) -> None:
    results = run_seeds(name, seeds)
    assert [f"{r.violations[0]} -- {r.repro}" for r in results if not r.ok] == []
