"""Relay store: puts/s and pushes/s over 1,000,000 stored envelopes, SQLite vs PostgreSQL.

Both backends in one run, measured the same way in the same process, each over
a store that already holds ``--stored`` envelopes (default 1,000,000):

* ``sqlite``: a file in a temporary directory (WAL, ``synchronous=FULL``), a
  relay's default ``node.db``.
* ``postgresql``: a real server over loopback TCP, from
  ``DCHAT_TEST_POSTGRES_URL`` or a throwaway server started here with ``fsync``
  on (so both make every commit durable); a fresh database, dropped afterwards.

Both stores are filled first (about 2 GB of disk together) and flushed to
disk (a PostgreSQL ``CHECKPOINT``, then ``sync``); then the timed work runs in
``--rounds`` rounds that alternate between the backends, so a burst of load
from other processes on a shared machine hits both alike; each figure is the
median over the rounds.

The fill goes through :meth:`dchat_storage.lowlevel.MailboxRepo.put_bulk` (the
documented bulk path: one multi-row statement per batch, 10,000 rows per
transaction; not timed as a rate), spread over ``--mailboxes`` mailboxes of
offline users, 512-byte filler envelopes with increasing arrival times; then
a WAL checkpoint on SQLite and ``VACUUM ANALYZE`` on PostgreSQL (what automatic
checkpoints and autovacuum do after such a load), both counted in "fill".

What is timed is the relay's own code: :class:`dchat_network.RelayServer`
answering encoded requests against the database's ``MailboxRepo``, each
request in its own durable transaction (what the node's group commit does for
a request that arrives alone):

* puts/s: ``put`` of 1 KiB envelopes, round-robin into ``--live`` mailboxes of
  online users (quota check, insert, commit);
* pushes/s: envelopes taken out for delivery to a subscribed mailbox: ``pull``
  requests that acknowledge what the previous one delivered and fetch the
  next, either one envelope per pull (an online user receiving as messages
  arrive) or up to ``MAX_BATCH`` (64) per pull (catching up). Each round takes
  out all it put, so the store stays at ``--stored`` envelopes.

Before timing, the relay's queries are EXPLAINed at full size and the run
fails unless each one uses an index (the plans are printed with
``--show-plans``): fetch, the quota's usage row, ack, the duplicate check of put, and
the TTL sweep. The metrics scrape's ``usage()`` sums every entry by nature; it
must at least read an index, not the table.

Usage::

    uv run python benchmarks/bench_relay.py [--stored N] [--puts N] [--no-write]
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from _common import arg_parser, load_at_end, markers, publish, run_lines
from dchat_network import RelayClient, RelayServer
from dchat_network.lowlevel import MAX_BATCH, RelayBatch
from dchat_storage import Database, open_database
from dchat_storage.testing import ENV_URL, postgres_database, postgres_server

if TYPE_CHECKING:
    import argparse

NAME = "bench_relay"
START, END = markers(NAME)
FILL_ENVELOPE = 512
PUT_ENVELOPE = 1024
FILL_BATCH = 10_000


def mailbox_of(envelope: bytes) -> bytes:
    """The benchmark's envelopes name their mailbox in their first 32 bytes."""
    return envelope[:32]


def _mailbox(n: int, kind: bytes) -> bytes:
    return kind + n.to_bytes(8, "big") + bytes(32 - len(kind) - 8)


# The relay's statements, as the repositories issue them (parameters inlined for EXPLAIN).
_MB = "'\\x" + ("ab" * 32) + "'"
_QUERIES = {
    "fetch": "SELECT entry_id, mailbox, envelope, received_at FROM mailbox_entries"
    " WHERE mailbox = {mb} ORDER BY received_at, seq LIMIT 64",
    "quota (usage row)": "SELECT size FROM mailbox_usage WHERE mailbox = {mb}",
    "ack": "DELETE FROM mailbox_entries WHERE seq IN (SELECT seq FROM mailbox_entries"
    " WHERE mailbox = {mb} AND entry_id IN ({mb}, {mb}) LIMIT 500) RETURNING mailbox, size",
    "put (unique check)": "SELECT 1 FROM mailbox_entries WHERE mailbox = {mb} AND entry_id = {mb}",
    "TTL sweep": "DELETE FROM mailbox_entries WHERE seq IN (SELECT seq FROM mailbox_entries"
    " WHERE received_at < 5.0 LIMIT 500) RETURNING mailbox, size",
    "usage (metrics)": "SELECT count(*), coalesce(sum(size), 0) FROM mailbox_entries",
}


def fill(db: Database, stored: int, mailboxes: int) -> float:
    """Store ``stored`` filler envelopes through the bulk path; seconds taken."""
    started = time.perf_counter()
    done = 0
    while done < stored:
        count = min(FILL_BATCH, stored - done)
        noise = os.urandom(count * (FILL_ENVELOPE - 40))
        step = FILL_ENVELOPE - 40
        rows = []
        for i in range(count):
            n = done + i
            mailbox = _mailbox(n % mailboxes, b"off")
            body = n.to_bytes(8, "big") + noise[i * step : (i + 1) * step]
            rows.append((mailbox, mailbox + body, 1000.0 + n * 0.001))
        db.mailboxes.put_bulk(rows)
        done += count
    # After the load, what an idle relay's background work would have done before
    # the first timed request: SQLite's automatic checkpoints copy the load out of
    # the WAL; PostgreSQL's autovacuum (insert-triggered since 13) gathers
    # statistics and sets the visibility map that lets usage() scan the index alone.
    raw = db._engine.raw_connection()
    try:
        if db.backend == "sqlite":
            busy = raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy[0] == 0, busy
        else:
            driver = raw.driver_connection
            driver.autocommit = True
            driver.execute("VACUUM ANALYZE mailbox_entries")
            driver.autocommit = False
    finally:
        raw.close()
    return time.perf_counter() - started


def plans(db: Database) -> dict[str, str]:
    """EXPLAIN each relay query; the plan's text per query."""
    found = {}
    mb = _MB if db.backend == "postgresql" else "X'" + "ab" * 32 + "'"
    prefix = "EXPLAIN " if db.backend == "postgresql" else "EXPLAIN QUERY PLAN "
    with db._access.read("explain") as conn:
        for name, query in _QUERIES.items():
            rows = conn.execute(text(prefix + query.format(mb=mb))).all()
            found[name] = "\n".join(str(row[-1]) for row in rows)
    return found


def uses_index(plan: str) -> bool:
    lowered = plan.lower()
    return (
        "index" in lowered
        and "seq scan" not in lowered
        and "scan mailbox_entries\n" not in (lowered + "\n")
    )


def settle(pg: Database) -> None:
    """Flush the fills to disk before timing, so no timed fsync queues behind them.

    Two gigabytes just written are mostly dirty pages in the OS cache (and, for
    PostgreSQL, in its shared buffers until a checkpoint); a commit's fsync in
    the first timed rounds would wait for their write-back.
    """
    raw = pg._engine.raw_connection()
    try:
        driver = raw.driver_connection
        driver.autocommit = True
        with contextlib.suppress(Exception):  # CHECKPOINT needs pg_checkpoint or superuser
            driver.execute("CHECKPOINT")
        driver.autocommit = False
    finally:
        raw.close()
    os.sync()


class Relay:
    """One backend's store after the fill, and the relay code that serves it."""

    def __init__(self, name: str, db: Database, args: argparse.Namespace) -> None:
        self.name, self.db = name, db
        self.fill_s = fill(db, args.stored, args.mailboxes)
        self.plans = plans(db)
        bad = [query for query, plan in self.plans.items() if not uses_index(plan)]
        if bad:
            raise SystemExit(f"{name}: not indexed at {args.stored:,} rows: {bad}\n{self.plans}")
        self.server = RelayServer(db.mailboxes, mailbox_of, quota=1 << 40)
        self.client = RelayClient()
        self.live = [_mailbox(n, b"on") for n in range(args.live)]
        self.noise = os.urandom(PUT_ENVELOPE - 32 - 8)
        self.sent = 0
        self.rates: dict[str, list[float]] = {"puts": [], "single": [], "batched": []}

    def request(self, owner: bytes, data: bytes) -> RelayBatch | None:
        """One request in its own durable transaction, as the node's group commit runs it."""
        with self.db.transaction():
            reply = self.server.handle(owner, data, 2e9)
        assert not reply.close, reply.message
        return reply.message if isinstance(reply.message, RelayBatch) else None

    def put(self, count: int) -> float:
        """Seconds to put ``count`` envelopes round-robin into the live mailboxes."""
        began = time.perf_counter()
        for _ in range(count):
            mailbox = self.live[self.sent % len(self.live)]
            envelope = mailbox + self.sent.to_bytes(8, "big") + self.noise
            self.request(mailbox, self.client.put(mailbox, envelope))
            self.sent += 1
        return time.perf_counter() - began

    def drain(self, mailboxes: list[bytes], limit: int) -> tuple[int, float]:
        """Pull every mailbox empty, ``limit`` per pull; envelopes taken and seconds."""
        taken, began = 0, time.perf_counter()
        for mailbox in mailboxes:
            ack: list[bytes] = []
            while True:
                batch = self.request(mailbox, self.client.pull(mailbox, ack, limit=limit))
                assert batch is not None
                if not batch.items:
                    break
                ack = [entry_id for entry_id, _ in batch.items]
                taken += len(ack)
        return taken, time.perf_counter() - began

    def round(self, puts: int) -> None:
        """Put ``puts`` envelopes, then take them all out (half one by one, half batched)."""
        self.rates["puts"].append(puts / self.put(puts))
        half = len(self.live) // 2
        single, single_s = self.drain(self.live[:half], 1)
        batched, batched_s = self.drain(self.live[half:], MAX_BATCH)
        assert single + batched == puts
        self.rates["single"].append(single / single_s)
        self.rates["batched"].append(batched / batched_s)


@dataclass
class Result:
    name: str
    fill_s: float
    size_mb: float
    puts_per_s: float
    pushes_single: float
    pushes_batched: float
    plans: dict[str, str] = field(default_factory=dict)


def run(args: argparse.Namespace) -> tuple[list[Result], str]:
    """Fill both stores, then time rounds alternating between them (load hits both alike)."""
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dchat-bench-")))
        server = stack.enter_context(postgres_server(durable=True))
        source = "from DCHAT_TEST_POSTGRES_URL" if os.environ.get(ENV_URL) else "throwaway"
        url = stack.enter_context(postgres_database(server))
        relays = [
            Relay("sqlite", stack.enter_context(open_database(tmp / "relay.db")), args),
            Relay("postgresql", stack.enter_context(open_database(url)), args),
        ]
        settle(relays[1].db)
        for relay in relays:
            relay.round(len(relay.live))  # warm-up: connections, statement caches
            relay.rates = {key: [] for key in relay.rates}
        for _ in range(args.rounds):
            for relay in relays:
                relay.round(args.puts // args.rounds)
        results = []
        for relay in relays:
            assert relay.db.mailboxes.count() == args.stored
            median = {key: statistics.median(values) for key, values in relay.rates.items()}
            results.append(
                Result(
                    relay.name,
                    relay.fill_s,
                    relay.db.size_bytes() / 1e6,
                    median["puts"],
                    median["single"],
                    median["batched"],
                    relay.plans,
                )
            )
    return results, source


def section(
    results: list[Result], source: str, args: argparse.Namespace, argv: list[str], load_start: str
) -> str:
    rows = [
        f"| {r.name} | {r.puts_per_s:,.0f} | {r.pushes_single:,.0f} | {r.pushes_batched:,.0f} "
        f"| {r.fill_s:,.0f} | {r.size_mb:,.0f} |"
        for r in results
    ]
    by_name = {r.name: r for r in results}
    lite, pg = by_name["sqlite"], by_name["postgresql"]
    return "\n".join(
        [
            START,
            "## Relay store: puts and pushes over 1,000,000 stored envelopes",
            "",
            *run_lines(NAME, argv, load_at_end()),
            f"- Store: {args.stored:,} envelopes already held ({FILL_ENVELOPE}-byte fillers "
            f"over {args.mailboxes:,} offline mailboxes, loaded through `MailboxRepo.put_bulk`; "
            f"PostgreSQL {source} server over loopback TCP, fsync and `synchronous_commit` on; "
            "SQLite WAL with `synchronous=FULL`).",
            f"- Timed: `RelayServer` answering encoded requests, each in its own durable "
            f"transaction. Puts: {args.puts:,} `put` of {PUT_ENVELOPE}-byte envelopes "
            f"round-robin over {args.live} online mailboxes. Pushes: envelopes taken out for "
            "delivery by `pull` requests that ack the previous delivery and fetch the next, "
            f"one per pull (half the online mailboxes) or up to {MAX_BATCH} per pull (the "
            f"other half). In {args.rounds} rounds alternating between the backends (both "
            "stores filled and flushed to disk first); each figure is the median of the "
            "rounds. One process, "
            "one thread.",
            "- Every relay query (fetch, quota usage row, ack, put's unique check, TTL sweep) was "
            "EXPLAINed at full size and uses an index on both backends; the metrics scrape's "
            "`usage()` reads the covering index `(received_at, size)`, not the table.",
            f"- The machine is shared with other work (2 cores; 1-min load average "
            f"{load_start} at the start): absolute figures move several-fold between runs "
            "here; compare the rows of one run.",
            "",
            "| backend | puts/s | pushes/s, 1 per pull | pushes/s, batched | fill (s) "
            "| database (MB) |",
            "|---|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"PostgreSQL / SQLite: puts {pg.puts_per_s / lite.puts_per_s:.2f}x, pushes one at "
            f"a time {pg.pushes_single / lite.pushes_single:.2f}x, batched "
            f"{pg.pushes_batched / lite.pushes_batched:.2f}x.",
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = arg_parser(__doc__)
    parser.add_argument("--stored", type=int, default=1_000_000, help="envelopes held before")
    parser.add_argument("--mailboxes", type=int, default=50_000, help="offline mailboxes")
    parser.add_argument("--live", type=int, default=20, help="online mailboxes")
    parser.add_argument("--puts", type=int, default=2_000, help="timed puts per backend")
    parser.add_argument("--rounds", type=int, default=5, help="rounds the puts are split into")
    parser.add_argument("--show-plans", action="store_true", help="print the query plans")
    args = parser.parse_args(argv)
    load_start = f"{os.getloadavg()[0]:.2f}"
    results, source = run(args)
    if args.show_plans:
        for result in results:
            for query, plan in result.plans.items():
                print(f"-- {result.name}: {query}\n{plan}\n", file=sys.stderr)
    publish(NAME, section(results, source, args, argv, load_start), args)


if __name__ == "__main__":
    main()
