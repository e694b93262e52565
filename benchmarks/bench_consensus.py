"""Consensus: block sync, light-client header checks and rounds in the in-process harness.

All rows use dchat-chain's public API on a 4-validator chain (equal power)
whose blocks carry two small transactions each and whose application is the
harness's hash-chain app (so the application costs next to nothing and the
figures are the chain's own cost):

* **sync**: a new node fetches N blocks from a peer's store in batches of
  ``--batch`` (responses pre-encoded, so the client's decoding *is* timed),
  authenticates and executes them. Two policies: the default, which verifies
  one commit certificate per batch and authenticates the blocks below it by
  the hash chain; and the baseline ``verify_every``, one
  ``bls_fast_aggregate_verify`` per block.
* **light client**: one header check = header hash equals the certificate's
  block hash + ``CommitCertificate.verify`` (one pairing check). Baseline: the
  same check without aggregation, verifying each of the 4 precommit signatures.
* **consensus**: heights decided per second by 4 engines in the deterministic
  harness (no network, 1 ms virtual delays, no faults). Every height is one
  round: proposal, 4 prevotes, 4 precommits, certificate, execution. Baseline:
  the same run with one signature cache per engine instead of a shared one, which
  is what 4 separate processes pay (each verifies every vote itself).

The chain for the sync rows is generated directly (every block signed by all
4 validators), not by running consensus for 10,000 heights. The results
replace this script's section of ``docs/benchmarks.md``.

Usage::

    uv run python benchmarks/bench_consensus.py [--blocks N] [--batch N] [--no-write]
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from _common import arg_parser, load_at_end, markers, publish, run_lines
from dchat_chain import ChainState, CommitCertificate
from dchat_chain._block_commit import make_bitmap
from dchat_chain._consensus_sim import CHAIN_ID, HashApp, Simulation, genesis_keys
from dchat_chain.lowlevel import (
    BlockSyncClient,
    MemoryBlockStore,
    SignatureCache,
    SyncRequest,
    Vote,
    VoteKind,
    execute_block,
    serve_sync,
)
from dchat_crypto import bls_aggregate, bls_verify

if TYPE_CHECKING:
    import argparse

NAME = "bench_consensus"
START, END = markers(NAME)


@dataclass(frozen=True)
class Row:
    name: str
    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds


def build_chain(n: int) -> tuple[ChainState, MemoryBlockStore]:
    """A chain of ``n`` blocks, each certified by all four validators."""
    keys, validators = genesis_keys(4)
    genesis = ChainState.genesis(CHAIN_ID, validators, HashApp().app_hash, 0)
    state, app, store = genesis, HashApp(), MemoryBlockStore()
    last_commit: CommitCertificate | None = None
    for height in range(1, n + 1):
        block = state.make_block(
            0, height * 1000, [b"tx-%d-a" % height, b"tx-%d-b" % height], last_commit
        )
        indices = [validators.index_of(v.validator_id) for v in state.validators.validators]
        votes = [
            Vote.create(keys[i], CHAIN_ID, VoteKind.PRECOMMIT, height, 0, block.hash(), i)
            for i in indices
            if i is not None
        ]
        bitmap = make_bitmap(range(4), 4)
        cert = CommitCertificate(
            height, 0, block.hash(), bitmap, bls_aggregate(v.signature for v in votes)
        )
        store.save(block, cert)
        state, _ = execute_block(state, app, block)
        last_commit = cert
    return genesis, store


def measure_sync(genesis: ChainState, store: MemoryBlockStore, batch: int, *, every: bool) -> Row:
    responses = []
    start = 1
    while start <= store.height():
        responses.append(serve_sync(store, SyncRequest(start, batch)).to_bytes())
        start += batch
    client = BlockSyncClient(genesis, HashApp(), batch=batch, verify_every=every)
    began = time.perf_counter()
    for data in responses:
        client.receive(data)
    elapsed = time.perf_counter() - began
    assert client.state.height == store.height() + 1
    name = (
        "sync, verify every certificate (baseline)"
        if every
        else f"sync, one certificate per {batch} blocks"
    )
    return Row(name, store.height(), elapsed)


def measure_light_client(store: MemoryBlockStore, n: int) -> list[Row]:
    keys, validators = genesis_keys(4)
    pairs = [(store.block(h), store.certificate(h)) for h in range(1, n + 1)]
    began = time.perf_counter()
    for block, cert in pairs:
        assert block is not None
        assert cert is not None
        assert block.hash() == cert.block_hash
        cert.verify(validators, CHAIN_ID)
    aggregated = time.perf_counter() - began
    singles = [
        [
            Vote.create(k, CHAIN_ID, VoteKind.PRECOMMIT, c.height, 0, c.block_hash, i)
            for i, k in enumerate(keys)
        ]
        for _, c in pairs[: n // 4]
    ]
    began = time.perf_counter()
    for votes in singles:
        for vote in votes:
            key = validators.validators[vote.validator_index].bls_public_key
            bls_verify(key, vote.sign_bytes(CHAIN_ID), vote.signature)
    one_by_one = time.perf_counter() - began
    return [
        Row("light client: header + aggregate certificate", n, aggregated),
        Row("light client: 4 precommits one by one (baseline)", len(singles), one_by_one),
    ]


def measure_consensus(heights: int, *, shared: bool) -> Row:
    sim = Simulation(1, max_delay_ms=1)
    began = time.perf_counter()
    for node in sim.nodes:
        if not shared:
            sim.signatures = SignatureCache()  # the engine booted next gets its own
        sim._boot(node)
    sim.run(10**9, target_height=heights)
    elapsed = time.perf_counter() - began
    if shared:
        name = "consensus heights, 4 engines, one shared signature cache"
    else:
        name = "consensus heights, 4 engines, a cache each (baseline: 4 processes)"
    return Row(name, sim.min_honest_height(), elapsed)


def section(rows: list[Row], args: argparse.Namespace, argv: list[str]) -> str:
    lines = [
        START,
        "## Consensus: block sync, light-client checks, rounds (4 validators)",
        "",
        *run_lines(NAME, argv, load_at_end()),
        f"- Sync: {args.blocks:,} generated blocks (2 small txs each, all 4 validators sign), "
        f"batches of {args.batch}, responses pre-encoded (client decoding timed). Light client: "
        f"{args.headers:,} headers. Consensus: {args.heights} heights, no faults, "
        "1 ms virtual delays.",
        "",
        "| measurement | count | per second | ms each |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.name} | {row.count:,} | {row.per_second:,.0f} | {1000 / row.per_second:.3f} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = arg_parser(__doc__)
    parser.add_argument("--blocks", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--headers", type=int, default=2_000)
    parser.add_argument("--heights", type=int, default=200)
    args = parser.parse_args(argv)
    print(f"building a chain of {args.blocks:,} blocks ...", file=sys.stderr)
    genesis, store = build_chain(args.blocks)
    rows = [
        measure_sync(genesis, store, args.batch, every=False),
        measure_sync(genesis, store, args.batch, every=True),
        *measure_light_client(store, min(args.headers, args.blocks)),
        measure_consensus(args.heights, shared=True),
        measure_consensus(args.heights, shared=False),
    ]
    text = section(rows, args, argv)
    publish(NAME, text, args)


if __name__ == "__main__":
    main()
