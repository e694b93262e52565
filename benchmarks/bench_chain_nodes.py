"""Finalized transfers per second and commit latency with 4 local validator processes.

A fresh testnet (``init_testnet``, cheap test KDF) with ``--senders`` funded
accounts runs as 4 ``dchat-node run --role validator`` processes on loopback.
This process signs ``--senders x --per-sender`` transfers in advance (signing
is not timed), then submits them through the validators' HTTP API
(``POST /v1/chain/txs``, ``--batch`` transactions per request; sender ``s``
always goes to validator ``s % 4`` so each sender's nonces arrive in order)
and watches validator 0's blocks until every transaction is committed.

* throughput: committed successful transfers / (last commit seen - first submission);
* commit latency: per transaction, the time its block was first seen minus the
  time its batch was submitted (median and p99; the polling interval, 50 ms,
  is included).

Everything shares the machine's cores: 4 validators (each checks every
transaction's signature when it enters its mempool) and the submitting client.
The results replace this script's section of ``docs/benchmarks.md``.

Usage::

    uv run python benchmarks/bench_chain_nodes.py [--senders N] [--per-sender N] [--no-write]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from _common import arg_parser, load_at_end, markers, publish, run_lines
from dchat_chain import Transaction, tx_hash
from dchat_crypto import KdfParams
from dchat_node import NodeProcess
from dchat_node._validator_keys import load_wallet
from dchat_node._validator_testnet import NetPlan, init_testnet

if TYPE_CHECKING:
    import argparse

NAME = "bench_chain_nodes"
START, END = markers(NAME)
PASSPHRASE = "bench passphrase"
WAIT = 300.0  # upper bound on the whole run


def sign_all(out: Path, summary: dict[str, Any], per_sender: int) -> list[list[bytes]]:
    """Per sender, its transfers in nonce order (to the next sender's account)."""
    accounts = summary["accounts"]
    keys = [load_wallet(out / a["wallet"], PASSPHRASE.encode()) for a in accounts]
    txs = []
    for i, key in enumerate(keys):
        to = bytes.fromhex(accounts[(i + 1) % len(accounts)]["account"])
        txs.append(
            [
                Transaction.create(
                    key,
                    chain_id=summary["currency_chain"],
                    nonce=n,
                    fee=1,
                    kind="transfer",
                    body={"to": to, "amount": 1},
                ).raw
                for n in range(per_sender)
            ]
        )
    return txs


def client(node: NodeProcess) -> httpx.Client:
    headers = {"Authorization": f"Bearer {node.info['token']}"}
    return httpx.Client(base_url=node.info["url"], headers=headers, timeout=30.0)


def submit(
    clients: list[httpx.Client], per_sender: list[list[bytes]], batch: int
) -> dict[bytes, float]:
    """Submit everything; returns tx hash -> submission time."""
    sent: dict[bytes, float] = {}
    queues: list[list[bytes]] = [[] for _ in clients]
    for nonce in range(len(per_sender[0])):
        for s, txs in enumerate(per_sender):
            queues[s % len(clients)].append(txs[nonce])
    while any(queues):
        for c, queue in zip(clients, queues, strict=True):
            chunk, queue[:] = queue[:batch], queue[batch:]
            if not chunk:
                continue
            now = time.monotonic()
            answer = c.post("/v1/chain/txs", json={"txs": [t.hex() for t in chunk]}).json()
            refused = [r for r in answer["results"] if not r["accepted"]]
            if refused:
                raise SystemExit(f"refused: {refused[0]}")
            sent.update((tx_hash(t), now) for t in chunk)
    return sent


def watch(
    c: httpx.Client, sent: dict[bytes, float], from_height: int
) -> tuple[list[float], float, int]:
    """Poll blocks until every sent tx is committed; latencies, last commit time, failures."""
    latencies, seen, failed, height = [], 0, 0, from_height
    last = time.monotonic()
    deadline = time.monotonic() + WAIT
    while seen < len(sent) and time.monotonic() < deadline:
        top = c.get("/v1/chain/status").json()["height"]
        now = time.monotonic()
        for h in range(height + 1, top + 1):
            for digest in c.get(f"/v1/chain/blocks/{h}").json()["txs"]:
                at = sent.get(bytes.fromhex(digest))
                if at is not None:
                    latencies.append(now - at)
                    seen += 1
                    last = now
        height = top
        time.sleep(0.05)
    for digest in list(sent)[:200]:  # spot-check results: a failed transfer is not throughput
        if c.get(f"/v1/chain/txs/{digest.hex()}").json().get("code") != 0:
            failed += 1
    return latencies, last, failed


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "net"
        plan = NetPlan(validators=4, accounts=args.senders, block_interval=args.block_interval)
        summary = init_testnet(out, plan, PASSPHRASE.encode(), kdf=KdfParams.TESTING)
        txs = sign_all(out, summary, args.per_sender)
        nodes = [
            NodeProcess(out / v["dir"], "validator", passphrase=PASSPHRASE, listen=v["listen"])
            for v in summary["validators"]
        ]
        try:
            for node in nodes:
                node.start(timeout=60)
            clients = [client(n) for n in nodes]
            time.sleep(2.0)  # links up, a few empty blocks
            start_height = clients[0].get("/v1/chain/status").json()["height"]
            t0 = time.monotonic()
            sent = submit(clients, txs, args.batch)
            submitted = time.monotonic() - t0
            latencies, last, failed = watch(clients[0], sent, start_height)
            end_height = clients[0].get("/v1/chain/status").json()["height"]
            for c in clients:
                c.close()
        finally:
            for node in nodes:
                node.kill()
    latencies.sort()
    return {
        "txs": len(sent),
        "committed": len(latencies),
        "failed_sample": failed,
        "seconds": last - t0,
        "submit_seconds": submitted,
        "blocks": end_height - start_height,
        "median": statistics.median(latencies) if latencies else float("nan"),
        "p99": latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
    }


def section(r: dict[str, Any], args: argparse.Namespace, argv: list[str]) -> str:
    rate = r["committed"] / r["seconds"]
    return "\n".join(
        [
            START,
            "## Chain nodes: finalized transfers with 4 validator processes",
            "",
            *run_lines(NAME, argv, load_at_end(), cpu=False),
            f"- 4 validators + the submitting client on one machine, loopback links. "
            f"{args.senders} senders x {args.per_sender} transfers, {args.batch} per API "
            f"request, block_interval {args.block_interval} s. Target: 2,000 tx/s.",
            "",
            "| measurement | value |",
            "|---|---:|",
            f"| transfers committed | {r['committed']:,} of {r['txs']:,} |",
            f"| finalized transfers per second | {rate:,.0f} |",
            f"| submission alone (HTTP + check_tx on the receiving validator) | "
            f"{r['txs'] / r['submit_seconds']:,.0f} tx/s |",
            f"| blocks | {r['blocks']} ({r['committed'] / max(1, r['blocks']):,.0f} tx/block) |",
            f"| commit latency median | {r['median'] * 1000:,.0f} ms |",
            f"| commit latency p99 | {r['p99'] * 1000:,.0f} ms |",
            f"| failed among 200 sampled | {r['failed_sample']} |",
            "",
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = arg_parser(__doc__)
    parser.add_argument("--senders", type=int, default=500)
    parser.add_argument("--per-sender", type=int, default=16, help="at most 17 (mempool gap)")
    parser.add_argument("--batch", type=int, default=500, help="transactions per API request")
    parser.add_argument("--block-interval", type=float, default=0.2)
    args = parser.parse_args(argv)
    text = section(run(args), args, argv)
    publish(NAME, text, args)


if __name__ == "__main__":
    main()
