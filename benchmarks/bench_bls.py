"""BLS12-381 signatures: single operations and what aggregation buys a verifier.

All rows use dchat's public API (:mod:`dchat_crypto`, backed by blspy's
``PopSchemeMPL``) on 32-byte messages with 100 deterministic keys:

* sign, verify;
* aggregate of 100 signatures;
* aggregate_verify of 100 signatures over 100 distinct messages;
* fast_aggregate_verify of 100 signatures over one message;
* baseline, same run: verifying those 100 same-message signatures one by one,
  which is what a light client would do without aggregation;
* for the adapter's overhead: fast_aggregate_verify of 100 called on blspy directly.

Each row runs its operation in a loop for at least ``--min-time`` seconds, in
``--repeats`` rounds that interleave the rows (so a load spike on a shared
machine hits all rows alike), after a warm-up, and reports its best loop. The results
replace this script's section of ``docs/benchmarks.md``.

Usage::

    uv run python benchmarks/bench_bls.py [--min-time S] [--repeats N] [--no-write]
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import blspy

from _common import arg_parser, interleaved_rounds, load_at_end, markers, publish, run_lines
from dchat_crypto import BlsSecretKey, bls_aggregate, bls_verify
from dchat_crypto.hazmat import bls_aggregate_verify, bls_fast_aggregate_verify

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

N = 100
NAME = "bench_bls"
START, END = markers(NAME)


@dataclass(frozen=True)
class Row:
    name: str
    seconds: float  # best time for one operation

    @property
    def ops(self) -> float:
        return 1 / self.seconds


def seconds_per_call(operation: Callable[[], object], min_time: float) -> float:
    """Mean seconds per call over a loop of at least ``min_time`` seconds."""
    calls, start = 0, time.perf_counter()
    while True:
        operation()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / calls


def measure(operations: dict[str, Callable[[], object]], args: argparse.Namespace) -> list[Row]:
    """Best loop per operation; rounds interleave the rows so load spikes hit all alike."""
    for operation in operations.values():
        operation()  # warm-up
    loops = {name: partial(seconds_per_call, op, args.min_time) for name, op in operations.items()}
    rounds = interleaved_rounds(loops, args.repeats)
    return [Row(name, min(seconds)) for name, seconds in rounds.items()]


def workload() -> dict[str, Callable[[], object]]:
    keys = [BlsSecretKey.from_seed(hashlib.sha256(b"bench-%d" % i).digest()) for i in range(N)]
    public = [key.public_key for key in keys]
    distinct = [hashlib.sha256(b"message-%d" % i).digest() for i in range(N)]
    common = hashlib.sha256(b"block header").digest()
    same_sigs = [key.sign(common) for key in keys]
    distinct_sigs = [key.sign(m) for key, m in zip(keys, distinct, strict=True)]
    same_agg, distinct_agg = bls_aggregate(same_sigs), bls_aggregate(distinct_sigs)
    raw_pks = [blspy.G1Element.from_bytes(pk.to_bytes()) for pk in public]
    raw_agg = blspy.G2Element.from_bytes(same_agg.to_bytes())

    def one_by_one() -> None:
        for pk, sig in zip(public, same_sigs, strict=True):
            bls_verify(pk, common, sig)

    return {
        "sign": lambda: keys[0].sign(common),
        "verify": lambda: bls_verify(public[0], common, same_sigs[0]),
        f"aggregate {N} signatures": lambda: bls_aggregate(same_sigs),
        f"aggregate_verify {N} (distinct messages)": lambda: bls_aggregate_verify(
            public, distinct, distinct_agg
        ),
        f"fast_aggregate_verify {N} (same message)": lambda: bls_fast_aggregate_verify(
            public, common, same_agg
        ),
        f"baseline: verify {N} signatures one by one": one_by_one,
        f"fast_aggregate_verify {N}, blspy directly": lambda: (
            blspy.PopSchemeMPL.fast_aggregate_verify(raw_pks, common, raw_agg)
        ),
    }


def section(rows: list[Row], args: argparse.Namespace, argv: list[str]) -> str:
    by_name = {row.name: row for row in rows}
    fav = by_name[f"fast_aggregate_verify {N} (same message)"]
    avf = by_name[f"aggregate_verify {N} (distinct messages)"]
    base = by_name[f"baseline: verify {N} signatures one by one"]
    direct = by_name[f"fast_aggregate_verify {N}, blspy directly"]
    table = [f"| {r.name} | {r.ops:,.1f} | {r.seconds * 1e3:,.3f} |" for r in rows]
    return "\n".join(
        [
            START,
            "## BLS12-381 signatures (blspy PopSchemeMPL behind dchat_crypto)",
            "",
            *run_lines(NAME, argv, f"blspy {blspy_version()}", load_at_end()),
            f"- 32-byte messages, {N} keys. Each row: the best of {args.repeats} loops of at "
            f"least {args.min_time} s, after a warm-up; the rounds interleave the rows. "
            "Public keys and signatures are already decoded (decoding is not timed).",
            "",
            "| operation | ops/s | ms per op |",
            "|---|---:|---:|",
            *table,
            "",
            f"One fast_aggregate_verify of {N} is {base.seconds / fav.seconds:.1f}x faster than "
            f"{N} single verifies; aggregate_verify of {N} distinct messages "
            f"{base.seconds / avf.seconds:.1f}x. dchat's checks add "
            f"{(fav.seconds / direct.seconds - 1) * 100:.1f} % to blspy's fast_aggregate_verify.",
            END,
        ]
    )


def blspy_version() -> str:
    from importlib.metadata import version

    return version("blspy")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = arg_parser(__doc__)
    parser.add_argument("--min-time", type=float, default=0.3, help="seconds per loop")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (loops per row)")
    args = parser.parse_args(argv)
    rows = measure(workload(), args)
    text = section(rows, args, argv)
    publish(NAME, text, args)


if __name__ == "__main__":
    main()
