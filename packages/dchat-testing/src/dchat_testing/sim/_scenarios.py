"""The scenarios: a world, a workload and a fault schedule each.

Every scenario has a *fault window* (``duration`` seconds, during which
messages are sent and faults happen), after which the runner heals the network,
restarts crashed nodes and lets the system settle; the invariants are then
checked. Fault times, targets and durations are drawn from the seed.

``push-link-loss`` aims at push delivery: links die while a relay's pushed
batch is in flight and relays restart, and every conversation must still
come out whole, once and in order.

``multi-relay-churn`` aims at multi-path delivery: every user has two home
relays (its card lists both, each envelope goes to both, the recipient counts
the second copy as a duplicate) while the relays keep crashing and coming
back, sometimes both of a user's at once; every conversation must still come
out whole, once and in order.

``group-membership`` aims at private groups (:mod:`._group_world`): two
groups whose members post, add (some as admins), remove, re-add and leave,
some at the same moment (concurrent updates), while the network partitions
and loses segments and a relay crashes; after healing, the members of each
group agree on its state, nobody opened a message outside its epoch and
every accepted message reached every member who stayed one.

The chain scenarios (``leader-crash``, ``byzantine-equivocation``) run 4
validators (:mod:`._chain`) instead of the messaging world. New scenarios are
added with :func:`register_scenario`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

from .._errors import SimulationError
from ._chain import ChainSpec, build_chain_world, crash_proposer_hook
from ._group_world import GroupWorld
from ._network import LinkProfile
from ._user import UserParams
from ._world import MessagingWorld, WorldSpec, build_world

if TYPE_CHECKING:
    import random
    from collections.abc import Callable

    from ._invariants import Ledger
    from ._node import SimNode
    from ._simulation import Observation, Simulation

__all__ = (
    "SCENARIOS",
    "Scenario",
    "ScenarioOptions",
    "ScenarioPlan",
    "register_scenario",
)


@dataclass(frozen=True, slots=True)
class ScenarioOptions:
    """What the caller may change about a scenario."""

    relay: str = "real"
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class ScenarioPlan:
    """What a built scenario tells the runner."""

    fault_end: float
    quiescent: Callable[[], bool]
    settle_max: float = 400.0
    ledger: Ledger | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """A named recipe that sets up a simulation."""

    name: str
    summary: str
    default_duration: float
    build: Callable[[Simulation, ScenarioOptions, float], ScenarioPlan]


SCENARIOS: dict[str, Scenario] = {}


def register_scenario(scenario: Scenario) -> Scenario:
    """Make ``scenario`` available by name (to the runner and the CLI)."""
    if scenario.name in SCENARIOS:
        raise SimulationError(f"scenario {scenario.name!r} is registered already")
    SCENARIOS[scenario.name] = scenario
    return scenario


def _crash_for(sim: Simulation, node: SimNode, at: float, downtime: float) -> None:
    def crash() -> None:
        if sim.faults_enabled:
            node.crash()
            sim.loop.call_later(downtime, restart)

    def restart() -> None:
        if sim.faults_enabled:
            node.restart()

    sim.at(at, crash)


def _chance_crash(
    sim: Simulation, rng: random.Random, probability: float, downtime: tuple[float, float]
) -> Callable[[Observation], None]:
    """A hook that crashes the observing node with ``probability`` (then restarts it)."""

    def hook(obs: Observation) -> None:
        if sim.faults_enabled and rng.random() < probability:
            node = sim.nodes[obs.node]
            _crash_for(sim, node, sim.now, rng.uniform(*downtime))

    return hook


# -- partition and heal ------------------------------------------------------------


def _partition_episode(sim: Simulation, world: MessagingWorld, rng: random.Random) -> None:
    names = sorted(sim.nodes)
    kind = rng.choice(["pair", "isolate", "split"])
    if kind == "pair":
        pairs = [(world.random_node(rng, relays=False), world.random_node(rng, users=False))]
    elif kind == "isolate":
        lone = rng.choice(names)
        pairs = [(lone, other) for other in names if other != lone]
    else:
        side = {name for name in names if rng.random() < 0.5}
        pairs = [(a, b) for a in names for b in names if a in side and b not in side]
    for a, b in pairs:
        sim.network.cut(a, b)
    sim.observe("sim", "partition", shape=kind, cuts=len(pairs))


def _build_partition(sim: Simulation, options: ScenarioOptions, duration: float) -> ScenarioPlan:
    world = build_world(sim, WorldSpec(relay_variant=options.relay))
    rng = sim.rng("faults")
    world.schedule_messages(24, 0.0, duration)
    start = 0.0
    while True:
        start += rng.uniform(1.0, duration / 4)
        if start >= duration:
            break
        length = rng.uniform(1.0, 15.0)
        sim.at(start, lambda: _partition_episode(sim, world, rng))
        sim.at(min(start + length, duration), sim.network.heal_all)
        start += length
    return ScenarioPlan(duration, world.quiescent, ledger=world.ledger)


# -- relay crash during delivery -----------------------------------------------------


def _build_relay_crash(sim: Simulation, options: ScenarioOptions, duration: float) -> ScenarioPlan:
    world = build_world(sim, WorldSpec(relay_variant=options.relay))
    rng = sim.rng("faults")
    world.schedule_messages(24, 0.0, duration)
    for _ in range(rng.randint(1, 4)):
        relay = rng.choice(world.relays)
        _crash_for(sim, relay, rng.uniform(0.0, duration), rng.uniform(0.5, 8.0))
    # Crash at the worst moments: a relay right after it handed out a batch, a
    # user right after it received one and before it committed it.
    sim.on("relay_batch_sent", _chance_crash(sim, rng, 0.25, (0.5, 6.0)))
    sim.on("batch_received", _chance_crash(sim, rng, 0.2, (0.5, 6.0)))
    sim.on("relay_input", _chance_crash(sim, rng, 0.01, (0.5, 6.0)))
    return ScenarioPlan(duration, world.quiescent, ledger=world.ledger)


# -- link loss mid-push ---------------------------------------------------------------


def _cut_after_push(
    sim: Simulation, world: MessagingWorld, rng: random.Random, probability: float
) -> Callable[[Observation], None]:
    """A hook: right after a relay pushed a batch, cut it off from every user for a while.

    The batch's segments still in flight vanish with the cut: the receiving
    link dies mid-push, before the batch arrived or before its ack could.
    """

    def hook(obs: Observation) -> None:
        if not sim.faults_enabled or rng.random() >= probability:
            return
        relay = obs.node
        for user in world.users:
            sim.network.cut(relay, user.name)
        sim.observe("sim", "cut_after_push", relay=relay)

        def heal() -> None:
            for user in world.users:
                sim.network.heal(relay, user.name)

        sim.loop.call_later(rng.uniform(0.2, 4.0), heal)

    return hook


def _build_push_link_loss(
    sim: Simulation, options: ScenarioOptions, duration: float
) -> ScenarioPlan:
    sim.network.default = LinkProfile(latency=0.01, jitter=0.004, reset=0.01)
    world = build_world(sim, WorldSpec(relay_variant=options.relay, registered=True))
    rng = sim.rng("faults")
    # Bursts to one recipient (several conversations, each ordered), then background traffic.
    hot = rng.choice(world.users)
    world.schedule_messages(40, 0.0, duration / 4, to=hot)
    world.schedule_messages(30, 0.0, duration)
    for _ in range(rng.randint(2, 4)):
        relay = rng.choice(world.relays)
        _crash_for(sim, relay, rng.uniform(0.0, duration), rng.uniform(0.2, 5.0))
    sim.on("relay_batch_sent", _cut_after_push(sim, world, rng, 0.3))
    sim.on("relay_batch_sent", _chance_crash(sim, rng, 0.05, (0.2, 3.0)))
    return ScenarioPlan(duration, world.quiescent, ledger=world.ledger)


# -- multi-path under relay churn ---------------------------------------------------------


def _build_multi_relay_churn(
    sim: Simulation, options: ScenarioOptions, duration: float
) -> ScenarioPlan:
    sim.network.default = LinkProfile(latency=0.01, jitter=0.004, reset=0.005)
    spec = WorldSpec(relays=4, relay_variant=options.relay, registered=True, homes=2)
    world = build_world(sim, spec)
    rng = sim.rng("faults")
    hot = rng.choice(world.users)
    world.schedule_messages(20, 0.0, duration / 2, to=hot)
    world.schedule_messages(20, 0.0, duration)
    for relay in world.relays:  # churn: each relay goes down and comes back, again and again
        start = rng.uniform(0.0, duration / 4)
        while start < duration:
            downtime = rng.uniform(0.5, 6.0)
            _crash_for(sim, relay, start, downtime)
            start += downtime + rng.uniform(0.5, duration / 3)
    # And at the worst moments: right after a relay pushed a batch, before its ack.
    sim.on("relay_batch_sent", _chance_crash(sim, rng, 0.1, (0.2, 4.0)))
    return ScenarioPlan(duration, world.quiescent, ledger=world.ledger)


# -- message storm -------------------------------------------------------------------


def _build_storm(sim: Simulation, options: ScenarioOptions, duration: float) -> ScenarioPlan:
    sim.network.default = LinkProfile(latency=0.005, jitter=0.002, reset=0.003)
    # Users registered before the run: senders find the offline user's prekeys.
    world = build_world(sim, WorldSpec(relay_variant=options.relay, registered=True))
    rng = sim.rng("faults")
    # A hot recipient, offline during the storm, comes back to more than one
    # fetch batch (64) of mail: its drain spans several fetch/ack rounds.
    hot = rng.choice(world.users)
    world.schedule_messages(80, 0.0, duration / 2, to=hot)
    world.schedule_messages(20, 0.0, duration)
    _crash_for(sim, hot, 0.0, duration + 1.0)  # back when the runner heals
    relay = rng.choice(world.relays)
    _crash_for(sim, relay, rng.uniform(0.0, duration), rng.uniform(0.2, 3.0))
    user = rng.choice(world.users)
    _crash_for(sim, user, rng.uniform(0.0, duration), rng.uniform(0.2, 3.0))
    return ScenarioPlan(duration, world.quiescent, ledger=world.ledger)


# -- slow and lossy links ------------------------------------------------------------


def _build_slow_lossy(sim: Simulation, options: ScenarioOptions, duration: float) -> ScenarioPlan:
    rng = sim.rng("faults")
    sim.network.default = LinkProfile(
        latency=rng.uniform(0.05, 0.3),
        jitter=rng.uniform(0.01, 0.2),
        spike=rng.uniform(0.01, 0.08),
        spike_latency=rng.uniform(1.0, 6.0),
        loss=rng.uniform(0.0, 0.15),
        rto=0.3,
        reset=rng.uniform(0.0, 0.05),
        bandwidth=rng.uniform(4_000.0, 100_000.0),
    )
    params = replace(UserParams(), request_timeout=4.0)
    spec = WorldSpec(relay_variant=options.relay, user_params=params, skew=120.0, drift=0.05)
    world = build_world(sim, spec)
    world.schedule_messages(20, 0.0, duration)
    return ScenarioPlan(duration, world.quiescent, settle_max=900.0, ledger=world.ledger)


# -- private groups --------------------------------------------------------------------


def _build_groups(sim: Simulation, options: ScenarioOptions, duration: float) -> ScenarioPlan:
    rng = sim.rng("faults")
    sim.network.default = LinkProfile(
        latency=0.02, jitter=0.02, loss=rng.uniform(0.0, 0.05), rto=0.3, reset=0.005
    )
    spec = WorldSpec(relay_variant=options.relay, registered=True)
    acts = sim.rng("group-workload")
    world = build_world(sim, spec, GroupWorld)
    assert isinstance(world, GroupWorld)
    for number, creator in enumerate(rng.sample(world.users, 2)):  # two groups, two members each
        gid = acts.randbytes(32)  # drawn from the seed: concurrent updates are ordered by hash
        create = functools.partial(world.act, creator, "create", f"group {number}", group_id=gid)
        sim.at(0.0, create)
        friends = rng.sample([u for u in world.users if u is not creator], 2)
        for when, (friend, admin) in enumerate(zip(friends, (True, False), strict=True)):
            invite = functools.partial(world.invite_by, creator, number, friend.name, admin)
            sim.at(0.1 + when * 0.1, invite)
    start = 1.0
    while (start := start + acts.expovariate(1.2)) < duration:
        group = acts.randrange(2)
        sim.at(start, functools.partial(world.random_act, group, acts))
        if acts.random() < 0.25:  # another member acts at the same moment: concurrent updates
            sim.at(start, functools.partial(world.random_act, group, acts))
    start = 0.0
    while (start := start + rng.uniform(1.0, duration / 3)) < duration:
        length = rng.uniform(1.0, 8.0)
        sim.at(start, lambda: _partition_episode(sim, world, rng))
        sim.at(min(start + length, duration), sim.network.heal_all)
        start += length
    relay = rng.choice(world.relays)
    _crash_for(sim, relay, rng.uniform(0.0, duration), rng.uniform(0.5, 4.0))
    sim.on("relay_batch_sent", _chance_crash(sim, rng, 0.03, (0.2, 3.0)))
    return ScenarioPlan(duration, world.quiescent)


# -- the chain -------------------------------------------------------------------------

#: Validators spread over the internet: tens of ms, some spikes, loss and resets.
CHAIN_LINKS: Final = LinkProfile(
    latency=0.03, jitter=0.01, spike=0.01, spike_latency=0.5, loss=0.01, reset=0.002
)
CHAIN_SETTLE: Final = 15.0  # simulated seconds after healing (PROGRESS_BLOCKS need ~4)


def _build_leader_crash(sim: Simulation, options: ScenarioOptions, duration: float) -> ScenarioPlan:
    sim.network.default = CHAIN_LINKS
    world = build_chain_world(sim, ChainSpec())
    rng = sim.rng("faults")
    world.schedule_txs(int(duration) * 2, 0.0, duration)

    def crash(node: SimNode) -> None:
        _crash_for(sim, node, sim.now, rng.uniform(0.5, 8.0))

    def crash_proposer() -> None:
        proposer = world.current_proposer()
        if proposer is not None and proposer.up:
            crash(proposer)

    start = 0.0
    while (start := start + rng.uniform(1.0, duration / 3)) < duration:
        sim.at(start, crash_proposer)
    # Right after a commit the proposer of the next height is mid-way: it has
    # proposed (or is pacing before it does) and its peers wait on it.
    sim.on("block_committed", crash_proposer_hook(sim, world, 0.02, crash))
    if rng.random() < 0.3:  # a second validator cut off meanwhile: no quorum for a while
        lone = rng.choice(world.validators).name
        at = rng.uniform(0.0, duration)
        for other in world.validators:
            if other.name != lone:
                sim.at(at, functools.partial(sim.network.cut, lone, other.name))
    return ScenarioPlan(duration, world.quiescent, settle_max=CHAIN_SETTLE)


def _build_equivocation(sim: Simulation, options: ScenarioOptions, duration: float) -> ScenarioPlan:
    sim.network.default = CHAIN_LINKS
    world = build_chain_world(sim, ChainSpec(equivocators=1))
    rng = sim.rng("faults")
    world.schedule_txs(int(duration) * 2, 0.0, duration)
    names = [v.name for v in world.validators]
    start = 0.0
    while (start := start + rng.uniform(2.0, duration / 2)) < duration:
        side = set(rng.sample(names, rng.choice([1, 2])))
        length = rng.uniform(1.0, 6.0)
        for a in sorted(side):
            for b in names:
                if b not in side:
                    sim.at(start, functools.partial(sim.network.cut, a, b))
        sim.at(min(start + length, duration), sim.network.heal_all)
        start += length
    return ScenarioPlan(duration, world.quiescent, settle_max=CHAIN_SETTLE)


register_scenario(
    Scenario(
        "partition-and-heal",
        "2 relays, 4 users; random cuts (one pair, one node isolated, a random split)",
        40.0,
        _build_partition,
    )
)
register_scenario(
    Scenario(
        "relay-crash-during-delivery",
        "2 relays, 4 users; relays crash at random and right after handing out a batch, "
        "users right after receiving one",
        40.0,
        _build_relay_crash,
    )
)
register_scenario(
    Scenario(
        "push-link-loss",
        "2 relays, 4 users; bursts to one user; relays cut off from every user right "
        "after pushing a batch (the push dies in flight), relays crash and restart, "
        "1% of segments reset their connection",
        30.0,
        _build_push_link_loss,
    )
)
register_scenario(
    Scenario(
        "multi-relay-churn",
        "4 relays, 4 users with 2 home relays each (multi-path); every relay crashes and "
        "restarts again and again (both of a user's at times) and right after pushing a "
        "batch; 0.5% of segments reset their connection",
        20.0,
        _build_multi_relay_churn,
    )
)
register_scenario(
    Scenario(
        "message-storm",
        "2 relays, 4 users; 100 messages in a few seconds, 80 of them to one user who "
        "is offline meanwhile; a relay and a user crash, "
        "0.3% of segments reset their connection",
        5.0,
        _build_storm,
    )
)
register_scenario(
    Scenario(
        "slow-and-lossy-links",
        "2 relays, 4 users; high latency with spikes, segment loss, resets, thin "
        "bandwidth, clocks skewed up to 2 min and drifting up to 5%",
        40.0,
        _build_slow_lossy,
    )
)
register_scenario(
    Scenario(
        "group-membership",
        "2 relays, 4 contacts; two private groups: posts, adds (some admins), removals, "
        "re-adds and leaves, some at the same moment (concurrent updates), over lossy links "
        "with resets, random partitions and relay crashes",
        8.0,
        _build_groups,
    )
)
register_scenario(
    Scenario(
        "leader-crash",
        "4 validators; the proposer of the current height crashes (at random times and "
        "right after a commit) and restarts from its block store; sometimes a second "
        "validator is cut off",
        20.0,
        _build_leader_crash,
    )
)
register_scenario(
    Scenario(
        "byzantine-equivocation",
        "4 validators, one double-signs (twin proposals, conflicting votes); random "
        "partitions; evidence must name it and only it",
        20.0,
        _build_equivocation,
    )
)
