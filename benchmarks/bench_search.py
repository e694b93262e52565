"""Search index: the CPU it adds to storing a message, and search latency, in one run.

The user node's setting: a sealed SQLite database (WAL, ``synchronous=FULL``)
in a temporary directory. Measurements:

* per message stored (``db.messages.add``; one message per durable
  transaction, as when idle; 50, as a node's group commit under load; and all
  1000 in one, which leaves the commit out):
  process CPU time and wall time with the search index, and without it (the
  same code with the index write patched to a no-op for that row: the
  baseline), rows interleaved round by round, each on a fresh database; medians;
* the index write alone: cutting the text into terms and computing their
  blind tokens (no database), per message; and the later merge of the
  pending rows into ``search_terms`` (which a search does), per message;
* search latency (``db.search.candidates``, limit 20) over ``--messages``
  stored texts: a word in one text, and a word in every text; median and p99.

Texts are chat-sized: 8 to 24 words drawn from a 2,000-word vocabulary
(seeded), about 60 to 180 characters.

Usage::

    uv run python benchmarks/bench_search.py [--store N] [--messages N] [--repeats N]
"""

from __future__ import annotations

import contextlib
import functools
import random
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

from _common import arg_parser, interleaved_rounds, load_at_end, markers, publish, run_lines
from dchat_storage import _messages as messages_module
from dchat_storage import open_database
from dchat_storage._sealing import AeadSealer
from dchat_storage._terms import term_token
from dchat_storage.lowlevel import StorageKey, search_terms

if TYPE_CHECKING:
    import argparse

    from dchat_storage import Database

NAME = "bench_search"
START, END = markers(NAME)
PEERS = [f"dchat1peer{n:04d}" for n in range(20)]
BATCHES = (1, 50, 1000)
"""Messages per transaction: one (idle), a group commit under load, all (no commit cost)."""


def texts(count: int, seed: int = 7) -> list[str]:
    """``count`` chat-sized texts over a fixed vocabulary."""
    rng = random.Random(seed)
    vocabulary = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(2000)
    ]
    return [" ".join(rng.choices(vocabulary, k=rng.randint(8, 24))) for _ in range(count)]


def store(db: Database, bodies: list[str], offset: int, batch: int = 1) -> None:
    """Store ``bodies``, ``batch`` messages per transaction."""
    for start in range(0, len(bodies), batch):
        with db.transaction():
            for n, body in enumerate(bodies[start : start + batch], offset + start):
                peer = PEERS[n % len(PEERS)]
                db.messages.add(n.to_bytes(16, "big"), "in", peer, body, float(n), float(n))


def timed_store(
    workdir: Path, bodies: list[str], *, indexed: bool, batch: int
) -> tuple[float, float]:
    """(CPU µs, wall µs) per message stored into a fresh sealed database."""
    path = workdir / f"{time.monotonic_ns()}.sqlite3"
    with open_database(path, key=StorageKey.generate()) as db:
        store(db, bodies[:20], 10**6)  # warm the connection and statement caches
        no_index = mock.patch.object(messages_module, "index_message", return_value=None)
        with contextlib.nullcontext() if indexed else no_index:
            cpu, wall = time.process_time(), time.perf_counter()
            store(db, bodies, 0, batch)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    for f in workdir.glob(path.name + "*"):
        f.unlink()
    return cpu / len(bodies) * 1e6, wall / len(bodies) * 1e6


def index_only(bodies: list[str]) -> float:
    """CPU µs per message to cut a text into terms and compute their tokens."""
    sealer = AeadSealer(StorageKey.generate())
    cpu = time.process_time()
    for body in bodies:
        [term_token(sealer, t) for t in search_terms(body)]
    return (time.process_time() - cpu) / len(bodies) * 1e6


def scan_all(db: Database, query: str, count: int) -> float:
    """ms to search without an index: open every sealed row and check its text."""
    wanted = set(search_terms(query))
    start = time.perf_counter()
    found = [m for m in db.messages.list(limit=count) if wanted <= set(search_terms(m.body))]
    assert len(found) == 1
    return (time.perf_counter() - start) * 1000


def index_bytes(workdir: Path, bodies: list[str]) -> float:
    """Bytes of database pages in use per message that the index adds (once merged)."""
    sizes = []
    for indexed in (False, True):
        path = workdir / f"size-{indexed}.sqlite3"
        no_index = mock.patch.object(messages_module, "index_message", return_value=None)
        with open_database(path, key=StorageKey.generate()) as db:
            with contextlib.nullcontext() if indexed else no_index:
                store(db, bodies, 0, batch=500)
            db.search.merge()
        with contextlib.closing(sqlite3.connect(path)) as raw:  # closed: WAL checkpointed
            pages, free, size = (
                raw.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("page_count", "freelist_count", "page_size")
            )
        sizes.append((pages - free) * size)  # pages in use (the merge frees pending ones)
    return (sizes[1] - sizes[0]) / len(bodies)


def latencies(db: Database, query: str, count: int) -> tuple[float, float]:
    """(median, p99) ms of ``count`` searches."""
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        db.search.candidates(query, limit=20)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main(argv: list[str] | None = None) -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--store", type=int, default=1000, help="messages stored per row")
    parser.add_argument("--messages", type=int, default=20000, help="texts searched over")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args(argv)
    bodies = texts(args.store)
    terms = statistics.mean(len(search_terms(b)) for b in bodies)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        runs = {
            (batch, indexed): functools.partial(
                timed_store, workdir, bodies, indexed=indexed, batch=batch
            )
            for batch in BATCHES
            for indexed in (False, True)
        }
        rounds = interleaved_rounds(runs, args.repeats)
        alone = statistics.median(index_only(bodies) for _ in range(args.repeats))
        with open_database(workdir / "search.sqlite3", key=StorageKey.generate()) as db:
            many = texts(args.messages, seed=11)
            many[len(many) // 2] += " zanzibarquux"
            many = [f"{body} common" for body in many]
            store(db, many, 0, batch=500)
            cpu = time.process_time()
            merged = db.search.merge()
            merge = (time.process_time() - cpu) / args.messages * 1e6
            assert merged == db.search.count()
            rare = latencies(db, "zanzibarquux", args.queries)
            common = latencies(db, "common", args.queries)
            rows_per_message = db.search.count() / args.messages
            scan = scan_all(db, "zanzibarquux", args.messages)
        size = index_bytes(workdir, many)
    text = report(
        args, rounds, (alone, merge), terms, (rare, common, scan), (rows_per_message, size)
    )
    publish(NAME, text, args)


def _median(values: list[tuple[float, float]], i: int) -> float:
    return statistics.median(v[i] for v in values)


def report(
    args: argparse.Namespace,
    rounds: dict[tuple[int, bool], list[tuple[float, float]]],
    parts: tuple[float, float],
    terms: float,
    searches: tuple[tuple[float, float], tuple[float, float], float],
    sizes: tuple[float, float],
) -> str:
    (alone, merge), (rare, common, scan), (rows, size) = parts, searches, sizes
    table = []
    for batch in BATCHES:
        with_cpu, without_cpu = _median(rounds[batch, True], 0), _median(rounds[batch, False], 0)
        with_wall, without_wall = _median(rounds[batch, True], 1), _median(rounds[batch, False], 1)
        table += [
            f"| {batch} | without the index | {without_cpu:.0f} | {without_wall:.0f} |",
            f"| {batch} | with the index | {with_cpu:.0f} | {with_wall:.0f} |",
            f"| {batch} | added by the index | {with_cpu - without_cpu:+.0f}"
            f" | {with_wall - without_wall:+.0f} |",
        ]
    lines = [
        START,
        "## Search index (bench_search.py)",
        "",
        *run_lines(NAME, [], "sealed SQLite, WAL, synchronous=FULL", load_at_end()),
        f"- {args.store} messages stored per row, {args.repeats} rounds interleaved (medians);"
        f" texts of {terms:.1f} distinct words on average. CPU is the process's (user +"
        " system) per message",
        "",
        "| messages per transaction | storing a message | CPU µs | wall µs |",
        "|---|---|---|---|",
        *table,
        f"| - | terms + tokens alone (no database) | {alone:.1f} | - |",
        f"| - | merged into `search_terms` later (by a search) | {merge:.1f} | - |",
        "",
        f"Search over {args.messages} stored texts ({rows:.1f} index rows per text, {size:.0f}"
        f" bytes of database pages in use per text), `candidates(query, limit=20)`, {args.queries}"
        " queries:",
        "",
        "| query | median ms | p99 ms |",
        "|---|---|---|",
        f"| a word in one text | {rare[0]:.2f} | {rare[1]:.2f} |",
        f"| a word in every text | {common[0]:.2f} | {common[1]:.2f} |",
        f"| no index: open every sealed row, check its text (once) | {scan:.0f} | - |",
        END,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
