"""The scenarios exercise what they claim to."""

from __future__ import annotations

from collections import Counter

from dchat_testing.sim import SCENARIOS, Observation, ScenarioOptions, Simulation


def observe(name: str, seed: int, kinds: set[str]) -> list[Observation]:
    sim = Simulation(seed, label=name)
    scenario = SCENARIOS[name]
    scenario.build(sim, ScenarioOptions(), scenario.default_duration)
    seen: list[Observation] = []
    for kind in kinds:
        sim.on(kind, seen.append)
    sim.run(scenario.default_duration)
    sim.heal()
    sim.run(scenario.default_duration + 120.0)
    assert sim.violations == []
    return seen


def test_the_storm_drains_a_mailbox_over_several_full_batches() -> None:
    for seed in range(3):
        batches = observe("message-storm", seed, {"batch_received"})
        assert Counter(int(o.data["items"]) for o in batches)[64] >= 1


def test_lossy_links_make_clients_retry_and_receivers_drop_duplicates() -> None:
    kinds = Counter(
        o.kind
        for seed in range(3)
        for o in observe("slow-and-lossy-links", seed, {"put_failed", "fetch_failed", "crash"})
    )
    assert kinds["put_failed"] > 0
    assert kinds["fetch_failed"] > 0


def test_the_crash_scenario_crashes_relays_and_users_mid_delivery() -> None:
    crashed = {o.node.split("-")[0] for o in observe("relay-crash-during-delivery", 1, {"crash"})}
    assert crashed == {"relay", "user"}


def test_partitions_happen() -> None:
    assert observe("partition-and-heal", 2, {"partition"})
