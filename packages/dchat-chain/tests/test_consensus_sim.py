"""Safety and liveness of the consensus engine over a faulty simulated network.

Each seed picks a scenario: drops, duplicates, delays (reordering), a
partition, a crash with restart from the block store, and at most one
byzantine validator (an equivocator or a garbage sender) among four. Checked:

* safety: no two nodes ever decide different blocks at one height;
* liveness: after the network heals, every honest node reaches the target height;
* accountability: an equivocator is caught with evidence anyone can verify;
* robustness: garbage is refused with typed (peer) errors, never a crash.
"""

from __future__ import annotations

import random

import pytest

from dchat_chain._consensus_sim import CHAIN_ID, Simulation

TARGET = 4
HEAL_MS = 3_000
DEADLINE_MS = HEAL_MS + 40_000


def scenario(seed: int) -> Simulation:
    rng = random.Random(seed * 7919)
    byzantine = rng.choice([None, "equivocator", "garbage"])
    victim = rng.randrange(4)
    roles = {} if byzantine is None else {victim: byzantine}
    sim = Simulation(
        seed,
        roles=roles,
        heal_ms=HEAL_MS,
        drop=rng.choice([0.0, 0.1, 0.3]),
        duplicate=rng.choice([0.0, 0.2]),
        max_delay_ms=rng.choice([5, 20, 60]),
    )
    if rng.random() < 0.5:
        nodes = list(range(4))
        rng.shuffle(nodes)
        cut = rng.randint(1, 2)
        sim.partition(rng.randint(0, 1000), [set(nodes[:cut]), set(nodes[cut:])])
    if rng.random() < 0.5:
        honest = [i for i in range(4) if i not in roles]
        down = rng.randint(0, 1500)
        sim.crash(down, rng.choice(honest), down + rng.randint(100, 1500))
    return sim


def check(sim: Simulation) -> None:
    sim.start()
    sim.run(DEADLINE_MS, target_height=TARGET)
    for height in range(1, max(len(n.decided) for n in sim.nodes) + 1):
        hashes = {n.decided[height] for n in sim.nodes if height in n.decided}
        assert len(hashes) <= 1, f"two blocks decided at height {height}"
    assert sim.min_honest_height() >= TARGET, "no progress after the network healed"
    for node in sim.nodes:
        if node.role == "equivocator":
            caught = [e for n in sim.nodes if n.role == "honest" for e in n.evidence]
            assert caught, "the equivocator was not caught"
            assert {e.validator_id for e in caught} == {
                sim.validators.validators[node.index].validator_id
            }
            caught[0].verify(sim.validators, CHAIN_ID)
        if node.role == "garbage":
            assert sum(n.rejected for n in sim.nodes) > 0
        else:
            assert not node.evidence or any(n.role == "equivocator" for n in sim.nodes)


@pytest.mark.parametrize("seed", range(12))
def test_a_few_seeds(seed: int) -> None:
    check(scenario(seed))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12, 262))
def test_hundreds_of_seeds(seed: int) -> None:
    check(scenario(seed))


def test_no_progress_without_a_quorum_then_resume() -> None:
    # Two of four crashed: the rest must not decide anything (and not fork);
    # once one returns, the chain moves again.
    sim = Simulation(99)
    sim.start()
    sim.run(1_000, target_height=2)
    sim.crash(sim.now + 1, 2, sim.now + 6_000)  # back after the check below
    sim.crash(sim.now + 1, 3, 10**9)
    sim.run(sim.now + 500)  # what was already in flight may still finish a height
    stuck = [len(n.decided) for n in sim.nodes]
    sim.run(sim.now + 5_000)
    assert [len(n.decided) for n in sim.nodes] == stuck
    sim.run(sim.now + 30_000, target_height=stuck[0] + 3)
    assert min(len(sim.nodes[i].decided) for i in (0, 1, 2)) >= stuck[0] + 3
