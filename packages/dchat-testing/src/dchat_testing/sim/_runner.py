"""Run a scenario for one seed, and many seeds, with results that replay.

A run is: build the scenario, run the fault window, heal (partitions removed,
crashed nodes restarted, fault hooks off), run until the world is quiescent for
a grace period (or ``settle_max`` passes), then run the invariants' final
checks. A run stops early at the first violation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from .._errors import SimulationError
from ._relay import RELAY_VARIANTS
from ._scenarios import SCENARIOS, ScenarioOptions
from ._simulation import Simulation, Violation

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ("SimResult", "repro_command", "run_scenario", "run_seeds")

GRACE: Final = 30.0


@dataclass(frozen=True, slots=True)
class SimResult:
    """The outcome of one seed of one scenario."""

    scenario: str
    seed: int
    options: ScenarioOptions
    violations: tuple[Violation, ...]
    simulated_seconds: float
    node_seconds: float
    wall_seconds: float
    events: int
    messages: int
    delivered: int
    trace_digest: str
    trace_tail: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """No invariant failed."""
        return not self.violations

    @property
    def repro(self) -> str:
        """The command line that replays this run exactly."""
        return repro_command(self.scenario, self.seed, self.options)


def repro_command(scenario: str, seed: int, options: ScenarioOptions) -> str:
    """``uv run dchat-sim ...`` for one seed with these options."""
    parts = ["uv run dchat-sim", f"--scenario {scenario}", f"--seed {seed}"]
    if options.relay != "real":
        parts.append(f"--relay {options.relay}")
    if options.duration is not None:
        parts.append(f"--duration {options.duration:g}")
    return " ".join(parts)


def run_scenario(name: str, seed: int, options: ScenarioOptions | None = None) -> SimResult:
    """Run scenario ``name`` for ``seed``.

    Raises:
        SimulationError: unknown scenario or relay variant.
    """
    options = options or ScenarioOptions()
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise SimulationError(f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}")
    if options.relay not in RELAY_VARIANTS:
        raise SimulationError(f"unknown relay variant {options.relay!r}")
    duration = options.duration if options.duration is not None else scenario.default_duration
    if duration <= 0:
        raise SimulationError("duration must be positive")
    started = time.perf_counter()
    sim = Simulation(seed, label=name)
    plan = scenario.build(sim, options, duration)
    sim.run(plan.fault_end)
    if not sim.violations:
        sim.heal()
        sim.run(plan.fault_end + plan.settle_max, _quiet_for(sim, plan.quiescent, GRACE))
    violations = sim.finish() if not sim.violations else sim.violations
    messages = len(plan.ledger.sent) if plan.ledger else 0
    delivered = len(plan.ledger.delivered) if plan.ledger else 0
    return SimResult(
        scenario=name,
        seed=seed,
        options=options,
        violations=tuple(violations),
        simulated_seconds=sim.now,
        node_seconds=sim.node_seconds(),
        wall_seconds=time.perf_counter() - started,
        events=sim.loop.events_run,
        messages=messages,
        delivered=delivered,
        trace_digest=sim.trace.digest(),
        trace_tail=tuple(sim.trace.tail()),
    )


def run_seeds(
    name: str,
    seeds: Iterable[int],
    options: ScenarioOptions | None = None,
    *,
    on_result: Callable[[SimResult], None] | None = None,
) -> list[SimResult]:
    """Run ``name`` once per seed; ``on_result`` sees each result as it comes."""
    results = []
    for seed in seeds:
        result = run_scenario(name, seed, options)
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results


def _quiet_for(sim: Simulation, quiescent: Callable[[], bool], grace: float) -> Callable[[], bool]:
    """A stop condition: quiescent continuously for ``grace`` virtual seconds."""
    since: list[float] = []

    def stop() -> bool:
        if not quiescent():
            since.clear()
            return False
        if not since:
            since.append(sim.now)
        return sim.now - since[0] >= grace

    return stop
