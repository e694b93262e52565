"""Chain applications: the state machines' share of the chain's transaction budget.

All rows use dchat_chain's public API in one process, one thread:

* transfers applied per second: ``CurrencyChainApp.apply_block`` + ``commit`` on
  blocks of ``--block`` signed transfers from distinct senders, (a) *cold*: the
  application decodes and verifies every signature inside ``apply_block`` (a
  syncing node), and (b) *admitted*: the same kind of block after the
  transactions went through ``check_tx`` (a validator that saw them in its
  mempool, so verified signatures are reused from the cache);
* ``check_tx`` per second (the mempool admission cost paid before the block);
* mempool: ``Mempool.add`` (which runs ``check_tx``) + one ``reap`` of the whole pool;
* Merkle: updates per second on a tree of ``--keys`` entries, in batches of
  1,000 including the new root; proofs built and verified per second.

Each row is the best of ``--repeats`` runs after a warm-up; fresh transactions
are signed outside the timed region. The issue's target is 2,000 *finalized*
transactions per second for the whole chain on this 2-core machine, so the
application's share must stay well under 0.5 ms per transaction.
The results replace this script's section of ``docs/benchmarks.md``.

Usage::

    uv run python benchmarks/bench_chain_apps.py [--block N] [--keys N] [--repeats N] [--no-write]
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from _common import arg_parser, load_at_end, markers, publish, run_lines
from dchat_chain import CurrencyChainApp, Mempool, Transaction
from dchat_chain.lowlevel import BlockContext, MerkleTree, verify_proof
from dchat_core import canonical_encode
from dchat_crypto import SigningKey

if TYPE_CHECKING:
    import argparse

NAME = "bench_chain_apps"
START, END = markers(NAME)


@dataclass(frozen=True)
class Row:
    name: str
    unit: str
    seconds: float  # best run
    count: int  # operations in that run

    @property
    def rate(self) -> float:
        return self.count / self.seconds


class Transfers:
    """A currency chain with ``n`` funded senders and a supply of signed blocks."""

    def __init__(self, n: int) -> None:
        self.keys = [SigningKey(hashlib.sha256(i.to_bytes(4, "big")).digest()) for i in range(n)]
        self.public = [k.public_key.to_bytes() for k in self.keys]
        accounts = [[pk, 10**12] for pk in self.public]
        genesis = {"v": 1, "kind": "currency", "chain_id": "bench", "accounts": accounts}
        self.app = CurrencyChainApp.from_genesis(canonical_encode(genesis))
        self.nonce = 0

    def next_block(self) -> list[bytes]:
        """One signed transfer per sender (to the next sender), at the next nonce."""
        n = len(self.keys)
        txs = [
            Transaction.create(
                key,
                chain_id="bench",
                nonce=self.nonce,
                fee=1,
                kind="transfer",
                body={"to": self.public[(i + 1) % n], "amount": 3},
            ).raw
            for i, key in enumerate(self.keys)
        ]
        self.nonce += 1
        return txs

    def apply(self, txs: list[bytes]) -> float:
        height = self.app.height + 1
        start = time.perf_counter()
        result = self.app.apply_block(BlockContext("bench", height, height, b""), txs)
        self.app.commit()
        elapsed = time.perf_counter() - start
        assert all(r.code == 0 for r in result.tx_results)
        return elapsed


def check_all(app: CurrencyChainApp, txs: list[bytes]) -> float:
    start = time.perf_counter()
    for tx in txs:
        app.check_tx(tx)
    return time.perf_counter() - start


def pool_round(app: CurrencyChainApp, txs: list[bytes]) -> tuple[float, list[bytes]]:
    pool = Mempool(app)
    start = time.perf_counter()
    for tx in txs:
        pool.add(tx)
    reaped = pool.reap(1 << 30, len(txs))
    elapsed = time.perf_counter() - start
    assert len(reaped) == len(txs)
    return elapsed, reaped


def transfer_rows(args: argparse.Namespace) -> list[Row]:
    chain = Transfers(args.block)
    chain.apply(chain.next_block())  # warm-up
    cold, admitted, checks, pools = [], [], [], []
    for _ in range(args.repeats):
        cold.append(chain.apply(chain.next_block()))
        txs = chain.next_block()
        checks.append(check_all(chain.app, txs))
        admitted.append(chain.apply(txs))
        elapsed, reaped = pool_round(chain.app, chain.next_block())
        pools.append(elapsed)
        chain.apply(reaped)
    n = args.block
    return [
        Row(
            f"transfers applied, cold (verify in apply_block), blocks of {n}", "tx/s", min(cold), n
        ),
        Row(
            f"transfers applied, admitted (after check_tx), blocks of {n}", "tx/s", min(admitted), n
        ),
        Row("check_tx (decode, signature, nonce, dry run)", "tx/s", min(checks), n),
        Row(f"mempool add {n} + reap", "tx/s", min(pools), n),
    ]


def merkle_rows(args: argparse.Namespace) -> list[Row]:
    keys = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(args.keys)]
    tree = MerkleTree.from_items({k: b"v0" for k in keys})
    tree.root  # noqa: B018 - hash everything once, outside the timing
    batch = 1_000
    updates, proofs, verifies = [], [], []
    for round_ in range(args.repeats):
        changes = {
            keys[(round_ * 7919 + i * 104729) % len(keys)]: b"v%d" % round_ for i in range(batch)
        }
        start = time.perf_counter()
        tree = tree.update(changes)
        root = tree.root
        updates.append(time.perf_counter() - start)
        probe = list(changes)
        start = time.perf_counter()
        built = [tree.prove(k)[1].encode() for k in probe]
        proofs.append(time.perf_counter() - start)
        value = b"v%d" % round_
        start = time.perf_counter()
        ok = all(verify_proof(root, k, value, p) for k, p in zip(probe, built, strict=True))
        verifies.append(time.perf_counter() - start)
        assert ok
    size = f"{args.keys:,} keys"
    return [
        Row(f"Merkle updates + root, batches of {batch}, {size}", "updates/s", min(updates), batch),
        Row(f"Merkle proofs built + encoded, {size}", "proofs/s", min(proofs), batch),
        Row(f"Merkle proofs verified, {size}", "proofs/s", min(verifies), batch),
    ]


def section(rows: list[Row], args: argparse.Namespace, argv: list[str]) -> str:
    table = [
        f"| {r.name} | {r.rate:,.0f} {r.unit} | {r.seconds / r.count * 1e6:,.1f} |" for r in rows
    ]
    cold, admitted = rows[0], rows[1]
    share = 1e6 / 2_000
    return "\n".join(
        [
            START,
            "## Chain applications (currency state machine, mempool, Merkle state)",
            "",
            *run_lines(NAME, argv, load_at_end()),
            f"- One process, one thread. Each row: the best of {args.repeats} runs after a "
            "warm-up. Transfers: Ed25519-signed, distinct senders, fee 1; apply_block "
            "includes the Merkle root of the new state, commit adopts it.",
            "",
            "| operation | rate | µs per op |",
            "|---|---:|---:|",
            *table,
            "",
            f"At the 2,000 tx/s chain target a transaction has {share:.0f} µs in total. The "
            f"application takes {cold.seconds / cold.count * 1e6:.0f} µs of it when it must "
            f"verify the signature itself, {admitted.seconds / admitted.count * 1e6:.0f} µs "
            "for a transaction it already admitted through check_tx (whose cost is paid "
            "earlier, when the transaction arrives).",
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = arg_parser(__doc__)
    parser.add_argument("--block", type=int, default=1_000, help="transactions per block")
    parser.add_argument("--keys", type=int, default=100_000, help="entries in the Merkle tree")
    parser.add_argument("--repeats", type=int, default=5, help="runs per row")
    args = parser.parse_args(argv)
    rows = transfer_rows(args) + merkle_rows(args)
    text = section(rows, args, argv)
    publish(NAME, text, args)


if __name__ == "__main__":
    main()
