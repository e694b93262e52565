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
    # With push the hot user pulls the moment it is back, while deposits that
    # backed off (a relay crashed) still trickle in: in some seeds its backlog
    # comes in smaller batches, so not every seed sees a full one.
    full = 0
    for seed in range(4):
        batches = observe("message-storm", seed, {"batch_received"})
        full += Counter(int(o.data["items"]) for o in batches)[64] >= 1
    assert full >= 2


def test_lossy_links_make_clients_retry_and_receivers_drop_duplicates() -> None:
    kinds = Counter(
        o.kind
        for seed in range(3)
        for o in observe("slow-and-lossy-links", seed, {"put_failed", "fetch_failed", "crash"})
    )
    assert kinds["put_failed"] > 0
    assert kinds["fetch_failed"] > 0


def test_the_crash_scenario_crashes_relays_and_users_mid_delivery() -> None:
    crashed = {
        o.node.split("-")[0]
        for seed in (1, 2)
        for o in observe("relay-crash-during-delivery", seed, {"crash"})
    }
    assert crashed == {"relay", "user"}


def test_partitions_happen() -> None:
    assert observe("partition-and-heal", 2, {"partition"})


def test_push_link_loss_cuts_links_mid_push_and_users_reconnect() -> None:
    kinds = Counter(
        o.kind
        for seed in range(3)
        for o in observe("push-link-loss", seed, {"cut_after_push", "fetch_failed", "crash"})
    )
    assert kinds["cut_after_push"] > 0
    assert kinds["fetch_failed"] > 0
    assert kinds["crash"] > 0


def test_mail_is_pushed_to_a_waiting_pull_not_polled() -> None:
    """A message reaches its recipient in a few round trips, far below the pull's wait."""
    from dchat_testing.sim import WorldSpec, build_world

    sim = Simulation(4, label="push")
    world = build_world(sim, WorldSpec(registered=True))
    alice, bob = world.users[0], world.users[1]
    parked: list[Observation] = []
    delivered: list[Observation] = []
    sim.on("relay_parked", parked.append)
    sim.on("deliver", delivered.append)
    sim.run(3.0)  # links up, pulls held
    assert parked
    for number in range(3):
        sim.at(3.0 + number, lambda n=number: world.send(alice, bob, f"hello {n}"))
    sim.run(10.0)
    assert [o.node for o in delivered] == ["user-1"] * 3
    pull_wait = alice.params.pull_wait
    # Each sent at a whole second; the first needs a bundle fetch and a session.
    latencies = [o.time - (3.0 + number) for number, o in enumerate(delivered)]
    assert max(latencies[1:]) < 0.2 < pull_wait


def test_multi_relay_churn_delivers_through_both_homes_while_relays_come_and_go() -> None:
    kinds: Counter[str] = Counter()
    links: Counter[str] = Counter()
    crashed: set[str] = set()
    for seed in (1, 2):
        for o in observe("multi-relay-churn", seed, {"duplicates", "crash", "mailbox_link_up"}):
            kinds[o.kind] += int(o.data.get("count", 1))
            links[o.node] += o.kind == "mailbox_link_up"
            crashed |= {o.node} if o.kind == "crash" and o.node.startswith("relay") else set()
    assert kinds["duplicates"] > 10  # the second copies, counted and dropped
    assert len(crashed) == 4  # every relay churned
    # Each user kept a link to each of its two home relays, and relinked after crashes.
    assert all(links[f"user-{i}"] >= 4 for i in range(4))
