"""Light-client catch-up as the wallet does it: header verifications per second.

A currency chain of ``--headers`` empty blocks is produced in process by
:class:`dchat_chain._light_sim.SignedChain` (real blocks, every validator
precommits, certificates aggregated) for each validator-set size in
``--validators``. The headers are served as ``/v1/chain/headers`` pages (JSON,
hex, 64 per page) from memory, and the wallet's own :class:`WalletLightReader`
catches up from genesis: page parsing, header decoding, one aggregate
certificate verification per header, one state-file write at the end. No HTTP:
the figure is the client's CPU cost, not the network's.

Baseline, same headers: each signer's precommit signature verified one by one
(``bls_verify``), which is what a client would do without BLS aggregation.
Each row is the best of ``--repeats`` interleaved rounds.

Usage::

    uv run python benchmarks/bench_light.py [--headers N] [--validators 4,16] [--no-write]
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _common import arg_parser, interleaved_rounds, load_at_end, markers, publish, run_lines
from dchat_chain import CurrencyChainApp, LightClient
from dchat_chain._block_commit import VoteKind, bitmap_indices, vote_sign_bytes
from dchat_chain._light_sim import SignedChain
from dchat_chain.lowlevel import NetPlan, WalletLightReader, genesis_anchor, plan_testnet
from dchat_core import canonical_encode
from dchat_crypto import bls_verify

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from dchat_crypto import BlsPublicKey, BlsSignature

NAME = "bench_light"
START, END = markers(NAME)


def build(validators: int, headers: int) -> tuple[bytes, list[dict[str, Any]], list[Any]]:
    """Genesis, header pages' items, and per-header (message, [(pk, sig)]) for the baseline."""
    addresses = [f"127.0.0.1:{9000 + i}" for i in range(validators)]  # never listened on
    net = plan_testnet(NetPlan(validators=validators, accounts=0), addresses, secrets.token_bytes)
    keys, genesis = [v.keys for v in net.validators], net.currency_genesis
    chain_id, vals = genesis_anchor(genesis)
    chain = SignedChain(
        chain_id, CurrencyChainApp.from_genesis(genesis), vals, [k.bls for k in keys]
    )
    by_pk = {k.bls.public_key.to_bytes(): k.bls for k in keys}
    items, singles = [], []
    for _ in range(headers):
        chain.produce()
        h = chain.height
        header, cert = chain.headers[h], chain.certificates[h]
        items.append(
            {
                "height": h,
                "header": canonical_encode(header.to_obj()).hex(),
                "certificate": cert.to_bytes().hex(),
                "next_validators": None,
            }
        )
        members = vals.validators
        message = vote_sign_bytes(chain_id, VoteKind.PRECOMMIT, h, cert.round, cert.block_hash)
        signers = bitmap_indices(cert.signers, len(members)) or []
        pairs: list[tuple[BlsPublicKey, BlsSignature]] = []
        for i in signers:
            pk = members[i].bls_public_key
            pairs.append((pk, by_pk[pk.to_bytes()].sign(message)))
        singles.append((message, pairs))
    return genesis, items, singles


def wallet_catch_up(genesis: bytes, items: list[dict[str, Any]]) -> float:
    """Seconds for a fresh WalletLightReader to verify every header (pages of 64)."""

    def fetch(path: str) -> dict[str, Any]:
        start = int(path.split("from=")[1].split("&")[0])
        limit = int(path.split("limit=")[1])
        return {"chain_id": "", "tip": len(items), "headers": items[start - 1 : start - 1 + limit]}

    with tempfile.TemporaryDirectory() as tmp:
        reader = WalletLightReader.open(fetch, Path(tmp) / "bench.light", genesis)
        began = time.perf_counter()
        reader.catch_up(len(items))
        elapsed = time.perf_counter() - began
    assert isinstance(reader.client, LightClient)
    assert reader.client.height == len(items)
    return elapsed


def one_by_one(singles: list[Any]) -> float:
    """Seconds to verify every precommit signature of every header separately."""
    began = time.perf_counter()
    for message, pairs in singles:
        for pk, sig in pairs:
            bls_verify(pk, message, sig)
    return time.perf_counter() - began


def main(argv: list[str]) -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--headers", type=int, default=300)
    parser.add_argument("--validators", default="4,16")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    for size in [int(v) for v in args.validators.split(",")]:
        genesis, items, singles = build(size, args.headers)
        runs: dict[str, Callable[[], float]] = {
            "wallet": lambda g=genesis, i=items: wallet_catch_up(g, i),
            "single": lambda s=singles: one_by_one(s),
        }
        best = {k: min(v) for k, v in interleaved_rounds(runs, args.repeats).items()}
        rows.append((size, best["wallet"], best["single"]))
    publish(NAME, section(rows, args, argv), args)


def section(rows: list[tuple[int, float, float]], args: argparse.Namespace, argv: list[str]) -> str:
    n = args.headers
    table = [
        f"| {size} | {n / wallet:,.0f} | {n / single:,.0f} | {single / wallet:.1f}x |"
        for size, wallet, single in rows
    ]
    return "\n".join(
        [
            START,
            "## Light-client catch-up in the wallet (header verifications/s)",
            "",
            *run_lines(NAME, argv, load_at_end()),
            f"- {n} empty currency-chain headers, every validator signing; best of "
            f"{args.repeats} interleaved rounds. Wallet: `WalletLightReader.catch_up` from genesis "
            "over in-memory `/v1/chain/headers` pages (parsing, one aggregate verification "
            "per header, state file written once). Baseline: each precommit verified alone.",
            "",
            "| validators | wallet headers/s | one-by-one headers/s | speed-up |",
            "|---:|---:|---:|---:|",
            *table,
            END,
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
