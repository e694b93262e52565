"""Simulator speed: simulated node-seconds per wall-second, and seeds per minute.

Two measurements, in one process:

* **steady world**: 2 relays and 4 users, no faults, default links, one
  message per simulated second between random users, for ``--sim-seconds``;
  and the issue's full shape, 4 validators (real consensus engines, one block
  per second) + 2 relays + 4 users in one simulation, for ``--chain-sim-seconds``.
  Reported: simulated node-seconds (nodes x simulated seconds they were up) per
  wall-clock second, events per second, messages per wall-second.
* **CI scenario set**: ``--seeds`` seeds of each registered scenario with the
  real relay, as ``uv run dchat-sim --scenario all`` runs them. Reported per
  scenario: seeds per minute, node-seconds per wall-second, and the projected
  wall time of the CI budget (200 seeds per scenario).

Everything runs the real protocol objects (Noise handshakes, sealing, the
relay server) over the simulated network; the crypto dominates the cost.
The results replace this script's section of ``docs/benchmarks.md``.

Usage::

    uv run python benchmarks/bench_sim.py [--seeds N] [--sim-seconds S] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from dataclasses import dataclass

from _common import DOCS, ROOT, cpu_model, markers, write_section
from dchat_testing.sim import (
    SCENARIOS,
    ChainSpec,
    Simulation,
    WorldSpec,
    build_chain_world,
    build_world,
    run_seeds,
)

NAME = "bench_sim"
START, END = markers(NAME)
CI_SEEDS = 200


@dataclass
class Steady:
    label: str
    sim_seconds: float
    node_seconds: float
    wall: float
    cpu: float
    events: int
    messages: int
    delivered: int


@dataclass
class ScenarioRow:
    name: str
    seeds: int
    failures: int
    wall: float
    cpu: float
    node_seconds: float

    @property
    def seeds_per_minute(self) -> float:
        return self.seeds / self.wall * 60


def steady(sim_seconds: float, *, chain: bool = False) -> Steady:
    sim = Simulation(1, label="bench-steady")
    world = build_world(sim, WorldSpec(relays=2, users=4))
    if chain:
        build_chain_world(sim, ChainSpec()).schedule_txs(int(sim_seconds), 0.0, sim_seconds)
    world.schedule_messages(int(sim_seconds), 0.0, sim_seconds)
    started, cpu = time.perf_counter(), time.process_time()
    sim.run(sim_seconds)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert not sim.violations, sim.violations
    return Steady(
        "4 validators, 2 relays, 4 users" if chain else "2 relays, 4 users",
        sim.now,
        sim.node_seconds(),
        wall,
        cpu,
        sim.loop.events_run,
        len(world.ledger.sent),
        len(world.ledger.delivered),
    )


def scenarios(seeds: int) -> list[ScenarioRow]:
    rows = []
    for name in sorted(SCENARIOS):
        started, cpu = time.perf_counter(), time.process_time()
        results = run_seeds(name, range(seeds))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        failures = sum(not r.ok for r in results)
        node_seconds = sum(r.node_seconds for r in results)
        rows.append(ScenarioRow(name, seeds, failures, wall, cpu, node_seconds))
        print(f"{name:>30}: {seeds / wall * 60:7.0f} seeds/min", file=sys.stderr)
    return rows


def steady_row(world: Steady) -> str:
    return (
        f"| {world.label} | {world.sim_seconds:,.0f} | {world.node_seconds:,.0f} | "
        f"{world.wall:.2f} | {world.cpu / world.wall:.0%} | "
        f"{world.node_seconds / world.wall:,.0f} | {world.events / world.wall:,.0f} | "
        f"{world.delivered} of {world.messages} |"
    )


def section(worlds: list[Steady], rows: list[ScenarioRow], argv: list[str]) -> str:
    table = [
        f"| {r.name} | {r.seeds} | {r.failures} | {r.seeds_per_minute:,.0f} | "
        f"{r.node_seconds / r.wall:,.0f} | {r.cpu / r.wall:.0%} | "
        f"{CI_SEEDS / r.seeds_per_minute * 60:.0f} |"
        for r in rows
    ]
    total_wall = sum(r.wall for r in rows)
    total_seeds = sum(r.seeds for r in rows)
    ci_seconds = sum(CI_SEEDS / r.seeds_per_minute * 60 for r in rows)
    return "\n".join(
        [
            START,
            "## Simulator (dchat-testing)",
            "",
            f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
            f"- Machine: {platform.platform()}; CPU: {cpu_model()}; "
            f"{os.cpu_count()} cores; Python {platform.python_version()}",
            f"- Command: `{' '.join(['uv run python benchmarks/bench_sim.py', *argv])}`",
            "- One process, one core. Real Noise handshakes, sealing and relay protocol "
            "over the simulated network; no sockets, no real time.",
            "",
            "**Steady world** (no faults, 1 message per simulated second; with the "
            "validators also 1 transaction per simulated second, one block per second). "
            "The second row is the issue's shape: validators run real consensus engines "
            "(BLS votes, one shared verified-signature cache) over real Noise links.",
            "",
            "| nodes | simulated s | node-seconds | wall s | CPU / wall | "
            "node-seconds / wall-second | events / wall-second | messages delivered |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *(steady_row(world) for world in worlds),
            "",
            f"**CI scenario set** (real relay, seeds 0-{rows[0].seeds - 1} of each scenario; "
            f"the last column projects the {CI_SEEDS}-seed CI budget from the measured rate).",
            "",
            "| scenario | seeds | failures | seeds / minute | node-seconds / wall-second | "
            f"CPU / wall | projected {CI_SEEDS} seeds (s) |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *table,
            "",
            f"All scenarios: {total_seeds / total_wall * 60:,.0f} seeds per minute; "
            f"{CI_SEEDS} seeds of each would take about {ci_seconds:.0f} s. "
            "CPU / wall below 100% means other processes shared the machine during the "
            "run: the wall-clock rates are then lower bounds.",
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=25, help="seeds per scenario")
    parser.add_argument("--sim-seconds", type=float, default=600.0, help="steady world length")
    parser.add_argument(
        "--chain-sim-seconds", type=float, default=120.0, help="steady world with validators"
    )
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs alone")
    args = parser.parse_args(argv)
    worlds = [steady(args.sim_seconds), steady(args.chain_sim_seconds, chain=True)]
    for world in worlds:
        print(
            f"steady ({world.label}): "
            f"{world.node_seconds / world.wall:,.0f} node-seconds per wall-second",
            file=sys.stderr,
        )
    rows = scenarios(args.seeds)
    text = section(worlds, rows, argv)
    print(text)
    if not args.no_write:
        write_section(NAME, text)
        print(f"wrote {DOCS.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
