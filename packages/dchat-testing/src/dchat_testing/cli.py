"""``dchat-sim``: run simulation scenarios over many seeds.

Examples::

    uv run dchat-sim --scenario all --seeds 200          # what CI runs
    uv run dchat-sim --scenario relay-crash-during-delivery --seed 1234 --trace
    uv run dchat-sim --scenario all --seeds 5000 --seed 100000   # a long run

Each failing seed prints one line ending in the command that replays it; the
summary gives, per scenario, the seeds run, failures, simulated seconds and
wall time. The exit status is 1 if any seed failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, TextIO

from .sim import RELAY_VARIANTS, SCENARIOS, ScenarioOptions, SimResult, run_seeds

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ("main",)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dchat-sim", description="Deterministic simulation of dchat's protocols."
    )
    names = [*sorted(SCENARIOS), "all"]
    parser.add_argument("--scenario", action="append", choices=names, help="repeatable; 'all'")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--duration", type=float, help="fault window, simulated seconds")
    parser.add_argument(
        "--relay", choices=sorted(RELAY_VARIANTS), default="real", help="relay implementation"
    )
    parser.add_argument("--trace", action="store_true", help="print each run's last trace lines")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    return parser


def _report(out: TextIO, *, trace: bool) -> Callable[[SimResult], None]:
    def on_result(result: SimResult) -> None:
        if trace:
            print(f"# {result.scenario} seed {result.seed}: trace {result.trace_digest}", file=out)
            for line in result.trace_tail:
                print(f"  {line}", file=out)
        if not result.ok:
            print(f"FAIL {result.violations[0]} -- replay: {result.repro}", file=out)

    return on_result


def _summary(name: str, results: list[SimResult], wall: float) -> str:
    failures = sum(not r.ok for r in results)
    simulated = sum(r.simulated_seconds for r in results)
    return (
        f"{name:<30} seeds {len(results):>5}  failures {failures:>4}  "
        f"simulated {simulated:>10.0f} s  wall {wall:>7.1f} s"
    )


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the CLI; returns the exit status."""
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    if args.list:
        for scenario in SCENARIOS.values():
            print(f"{scenario.name}: {scenario.summary}", file=out)
        return 0
    if args.seeds < 1:
        print("--seeds must be at least 1", file=sys.stderr)
        return 2
    chosen = args.scenario or ["all"]
    names = sorted(SCENARIOS) if "all" in chosen else list(dict.fromkeys(chosen))
    options = ScenarioOptions(relay=args.relay, duration=args.duration)
    seeds = range(args.seed, args.seed + args.seeds)
    summaries = []
    failed = False
    for name in names:
        started = time.perf_counter()
        results = run_seeds(name, seeds, options, on_result=_report(out, trace=args.trace))
        summaries.append(_summary(name, results, time.perf_counter() - started))
        failed = failed or not all(r.ok for r in results)
    print("\n".join(summaries), file=out)
    return 1 if failed else 0
