"""Storage: message inserts/s and inbox query latency, SQLite vs PostgreSQL, one run.

Four configurations, measured the same way in the same process:

* ``sqlite``: a file in a temporary directory (WAL, ``synchronous=FULL``).
* ``sqlite, sealed``: the same with at-rest encryption (a user node's setting).
* ``postgresql`` and ``postgresql, sealed``: a real server over loopback TCP,
  from ``DCHAT_TEST_POSTGRES_URL`` or a throwaway server started here with
  ``fsync`` on (so both engines make every commit durable).

Measurements:

* inserts/s: ``db.messages.add`` one message at a time, each its own durable
  transaction, i.e. what acknowledging a received message costs;
* inbox latency: ``db.messages.list(peer, 50)`` for a random peer over a
  database preloaded with ``--messages`` messages across 50 peers (the preload
  goes in one transaction and is not timed); median and p99.

The results replace this script's section of ``docs/benchmarks.md``.

Usage::

    uv run python benchmarks/bench_storage.py [--inserts N] [--messages N] [--queries N]
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import insert

from _common import arg_parser, markers, publish, run_lines
from dchat_storage import Database, open_database
from dchat_storage._messages import MESSAGES
from dchat_storage._schema import Message
from dchat_storage.lowlevel import StorageKey
from dchat_storage.testing import ENV_URL, postgres_database, postgres_server

if TYPE_CHECKING:
    import argparse

NAME = "bench_storage"
START, END = markers(NAME)
PEERS = [f"dchat1peer{n:04d}" for n in range(50)]
BODY = "a typical chat message of about one hundred bytes, give or take a few words here"


@dataclass
class Result:
    name: str
    inserts_per_s: float
    median: float
    p99: float


def preload(db: Database, count: int) -> None:
    """Insert ``count`` messages in one transaction (not timed)."""
    sealer = db._access.sealer
    rows = [
        MESSAGES.row(
            sealer,
            {
                "message_id": n.to_bytes(16, "big"),
                "peer_id": PEERS[n % len(PEERS)],
                "conversation_id": PEERS[n % len(PEERS)],
                "direct": True,
                "body": BODY,
            },
            {"direction": "in", "sent_at": float(n), "stored_at": float(n)},
        )
        for n in range(count)
    ]
    with db._access.write("preload") as conn:
        for start in range(0, len(rows), 1000):
            conn.execute(insert(Message), rows[start : start + 1000])


def measure(name: str, db: Database, args: argparse.Namespace) -> Result:
    preload(db, args.messages)
    base = args.messages + 1
    for n in range(20):  # warm-up: connections, statement caches
        db.messages.add((base + n).to_bytes(16, "big"), "in", PEERS[0], BODY, 0.0, 0.0)
    base += 20
    started = time.perf_counter()
    for n in range(args.inserts):
        peer = PEERS[n % len(PEERS)]
        db.messages.add((base + n).to_bytes(16, "big"), "in", peer, BODY, 1e9, 1e9)
    rate = args.inserts / (time.perf_counter() - started)
    rng = random.Random(1)
    times = []
    for _ in range(args.queries):
        peer = rng.choice(PEERS)
        started = time.perf_counter()
        rows = db.messages.list(peer, 50)
        times.append(time.perf_counter() - started)
        assert len(rows) == 50
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return Result(name, rate, statistics.median(times), p99)


def run(args: argparse.Namespace) -> tuple[list[Result], str]:
    results = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dchat-bench-")))
        server = stack.enter_context(postgres_server(durable=True))
        source = "from DCHAT_TEST_POSTGRES_URL" if os.environ.get(ENV_URL) else "throwaway"
        for name, key in (("sqlite", None), ("sqlite, sealed", StorageKey.generate())):
            with open_database(tmp / f"{len(results)}.db", key=key) as db:
                results.append(measure(name, db, args))
        for name, key in (("postgresql", None), ("postgresql, sealed", StorageKey.generate())):
            with postgres_database(server) as url, open_database(url, key=key) as db:
                results.append(measure(name, db, args))
    return results, source


def section(results: list[Result], source: str, args: argparse.Namespace, argv: list[str]) -> str:
    rows = [
        f"| {r.name} | {r.inserts_per_s:,.0f} | {r.median * 1e6:.0f} | {r.p99 * 1e6:.0f} |"
        for r in results
    ]
    by_name = {r.name: r for r in results}
    lite, pg = by_name["sqlite"], by_name["postgresql"]
    return "\n".join(
        [
            START,
            "## Storage: message inserts and inbox queries, SQLite vs PostgreSQL",
            "",
            *run_lines(NAME, argv),
            f"- Inserts: {args.inserts:,} `messages.add` calls, one durable transaction each "
            "(SQLite WAL with `synchronous=FULL`; PostgreSQL with fsync and "
            f"`synchronous_commit` on, {source} server over loopback TCP). Inbox: "
            f"{args.queries:,} `messages.list(peer, 50)` calls for random peers over "
            f"{args.messages:,} preloaded messages across {len(PEERS)} peers. One process, "
            "one thread; sealed = at-rest encryption on (ChaCha20-Poly1305 payloads, "
            "BLAKE2b blind indexes).",
            "",
            "| backend | inserts/s | inbox median (µs) | inbox p99 (µs) |",
            "|---|---:|---:|---:|",
            *rows,
            "",
            f"PostgreSQL / SQLite: inserts {pg.inserts_per_s / lite.inserts_per_s:.2f}x, "
            f"inbox median {pg.median / lite.median:.2f}x.",
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = arg_parser(__doc__)
    parser.add_argument("--inserts", type=int, default=500, help="timed inserts per backend")
    parser.add_argument("--messages", type=int, default=20_000, help="preloaded messages")
    parser.add_argument("--queries", type=int, default=1_000, help="timed inbox queries")
    args = parser.parse_args(argv)
    results, source = run(args)
    text = section(results, source, args, argv)
    publish(NAME, text, args)


if __name__ == "__main__":
    main()
