"""Finalized transfers per second and commit latency with 4 local validator processes.

A fresh testnet (``init_testnet``, cheap test KDF) with ``--senders`` funded
accounts runs as 4 ``dchat-node run --role validator`` processes on loopback.
This process signs ``--senders x --per-sender`` transfers in advance (signing
is not timed), then submits them through the validators' HTTP API
(``POST /v1/chain/txs``, ``--batch`` transactions per request on a keep-alive
client; sender ``s`` always goes to validator ``s % 4`` so each sender's nonces
arrive in order) and watches validator 0's blocks until every transaction is
committed.

Two columns, each on its own fresh testnet in the same run:

* dchat: one submitting thread per validator, as independent wallets talking
  to different nodes would;
* baseline: one request at a time, round robin (the previous way this script
  submitted: throughput then cannot exceed one validator's admission rate).

Per column:

* throughput: committed successful transfers / (last commit seen - first submission);
* commit latency: per transaction, the time its block was first seen minus the
  time its batch was submitted (median and p99; the polling interval, 50 ms,
  is included);
* validator CPU per transfer (from ``/proc``, Linux only) and how busy the
  validators kept the machine, to tell a CPU-bound run from a latency-bound one.

Everything shares the machine's cores: 4 validators (each checks every
transaction's signature once, when it enters its mempool) and the submitting
client. The results replace this script's section of ``docs/benchmarks.md``.

Usage::

    uv run python benchmarks/bench_chain_nodes.py [--senders N] [--per-sender N] [--no-write]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx

from _common import arg_parser, load_at_end, markers, publish, run_lines
from dchat_chain import Transaction
from dchat_chain.lowlevel import NetPlan, tx_hash
from dchat_crypto import KdfParams
from dchat_node.cli._testnet import init_testnet
from dchat_node.validator._keys import load_wallet
from dchat_testing import running_validators

if TYPE_CHECKING:
    import argparse

    from dchat_node import NodeProcess

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


def _queues(per_sender: list[list[bytes]], validators: int) -> list[list[bytes]]:
    """Per validator, its senders' transfers, nonce by nonce (sender ``s`` -> ``s % n``)."""
    queues: list[list[bytes]] = [[] for _ in range(validators)]
    for nonce in range(len(per_sender[0])):
        for s, txs in enumerate(per_sender):
            queues[s % validators].append(txs[nonce])
    return queues


def _post(c: httpx.Client, chunk: list[bytes], sent: dict[bytes, float]) -> None:
    # Recorded before the request: gossip may commit a transaction before we hear back.
    now = time.monotonic()
    sent.update((tx_hash(t), now) for t in chunk)
    answer = c.post("/v1/chain/txs", json={"txs": [t.hex() for t in chunk]}).json()
    refused = [r for r in answer["results"] if not r["accepted"]]
    if refused:
        raise SystemExit(f"refused: {refused[0]}")


def submit(
    clients: list[httpx.Client],
    per_sender: list[list[bytes]],
    batch: int,
    sent: dict[bytes, float],
    *,
    parallel: bool,
) -> None:
    """Submit everything, recording tx hash -> submission time in ``sent``.

    ``parallel``: one submitting thread per validator (independent wallets talking
    to different nodes at once); otherwise one request at a time, round robin.
    Either way each validator gets its senders' transfers in nonce order.
    """
    queues = _queues(per_sender, len(clients))

    def drain(c: httpx.Client, queue: list[bytes]) -> None:
        for i in range(0, len(queue), batch):
            _post(c, queue[i : i + batch], sent)

    if parallel:
        with ThreadPoolExecutor(len(clients)) as pool:
            for done in [pool.submit(drain, c, q) for c, q in zip(clients, queues, strict=True)]:
                done.result()
        return
    for i in range(0, max(len(q) for q in queues), batch):
        for c, queue in zip(clients, queues, strict=True):
            if queue[i : i + batch]:
                _post(c, queue[i : i + batch], sent)


def watch(
    c: httpx.Client, sent: dict[bytes, float], total: int, from_height: int
) -> tuple[list[float], float, int]:
    """Poll blocks (while submission runs) until ``total`` sent transactions are committed.

    Returns the latencies, the time the last one was seen and the failures among
    a sample.
    """
    latencies: list[float] = []
    failed, height = 0, from_height
    last = time.monotonic()
    deadline = time.monotonic() + WAIT
    while len(latencies) < total and time.monotonic() < deadline:
        top = c.get("/v1/chain/status").json()["height"]
        now = time.monotonic()
        while height < top:
            found = c.get(f"/v1/chain/blocks/{height + 1}").json()
            if "txs" not in found:
                break  # decided, not stored yet: the next poll gets it
            height += 1
            for digest in found["txs"]:
                at = sent.get(bytes.fromhex(digest))
                if at is not None:
                    latencies.append(now - at)
                    last = now
        time.sleep(0.05)
    for digest in list(sent)[:200]:  # spot-check results: a failed transfer is not throughput
        if c.get(f"/v1/chain/txs/{digest.hex()}").json().get("code") != 0:
            failed += 1
    return latencies, last, failed


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (NaN where /proc is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def warm_up(clients: list[httpx.Client], blocks: int = 3) -> None:
    """Wait until every link is up and the chain has decided ``blocks`` more heights.

    Validators start one after another and redial peers with a backoff of up to
    5 s, so the first heights need several rounds with growing timeouts; a run
    that starts then measures start-up, not throughput.
    """
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        states = [c.get("/v1/chain/status").json() for c in clients]
        if all(p["connected"] for s in states for p in s["peers"]):
            break
        time.sleep(0.1)
    else:
        raise SystemExit("validator links did not come up within 60 s")
    target = states[0]["height"] + blocks
    while clients[0].get("/v1/chain/status").json()["height"] < target:
        if time.monotonic() > deadline:
            raise SystemExit("the chain made no progress within 60 s")
        time.sleep(0.05)


def run(args: argparse.Namespace, *, parallel: bool) -> dict[str, Any]:
    """One fresh 4-validator testnet, one submission pattern; the measurements."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "net"
        plan = NetPlan(validators=4, accounts=args.senders)
        secret, interval = PASSPHRASE.encode(), args.block_interval
        summary = init_testnet(out, plan, secret, kdf=KdfParams.TESTING, block_interval=interval)
        txs = sign_all(out, summary, args.per_sender)
        with running_validators(out, summary, PASSPHRASE, timeout=60) as nodes:
            clients = [client(n) for n in nodes]
            warm_up(clients)
            start_height = clients[0].get("/v1/chain/status").json()["height"]
            cpu0 = [cpu_seconds(n.pid) for n in nodes]
            sent: dict[bytes, float] = {}
            t0 = time.monotonic()

            def timed_submit() -> float:
                submit(clients, txs, args.batch, sent, parallel=parallel)
                return time.monotonic() - t0

            with ThreadPoolExecutor(1) as pool, client(nodes[0]) as watcher:
                submitting = pool.submit(timed_submit)
                total = sum(len(t) for t in txs)
                latencies, last, failed = watch(watcher, sent, total, start_height)
                submitted = submitting.result()
            busy = sum(cpu_seconds(n.pid) for n in nodes) - sum(cpu0)
            wall = time.monotonic() - t0
            end_height = clients[0].get("/v1/chain/status").json()["height"]
            for c in clients:
                c.close()
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
        "cpu_per_tx": busy / max(1, len(latencies)) / len(nodes),
        "utilisation": busy / wall / (os.cpu_count() or 1),
    }


ROWS: Final = (
    ("transfers committed", lambda r: f"{r['committed']:,} of {r['txs']:,}"),
    ("**finalized transfers per second**", lambda r: f"**{r['committed'] / r['seconds']:,.0f}**"),
    (
        "submission alone (HTTP + check_tx), tx/s",
        lambda r: f"{r['txs'] / r['submit_seconds']:,.0f}",
    ),
    ("blocks (tx/block)", lambda r: f"{r['blocks']} ({r['committed'] / max(1, r['blocks']):,.0f})"),
    ("commit latency median (ms)", lambda r: f"{r['median'] * 1000:,.0f}"),
    ("commit latency p99 (ms)", lambda r: f"{r['p99'] * 1000:,.0f}"),
    ("validator CPU per transfer per validator (µs)", lambda r: f"{r['cpu_per_tx'] * 1e6:,.0f}"),
    ("machine busy with validators", lambda r: f"{r['utilisation']:.0%}"),
    ("failed among 200 sampled", lambda r: f"{r['failed_sample']}"),
)


def section(
    ours: dict[str, Any], base: dict[str, Any], args: argparse.Namespace, argv: list[str]
) -> str:
    ratio = (ours["committed"] / ours["seconds"]) / (base["committed"] / base["seconds"])
    return "\n".join(
        [
            START,
            "## Chain nodes: finalized transfers with 4 validator processes",
            "",
            *run_lines(NAME, argv, load_at_end(), cpu=False),
            f"- 4 validators + the submitting client on one machine, loopback links; a fresh "
            f"testnet per column. {args.senders} senders x {args.per_sender} transfers, "
            f"{args.batch} per API request (keep-alive HTTP/1.1), block_interval "
            f"{args.block_interval} s. Target: 2,000 tx/s.",
            "- dchat: one submitting thread per validator (wallets talk to different nodes "
            "at once). Baseline: the same node code fed one request at a time, round robin "
            "(how this benchmark submitted before), which caps throughput at one "
            "validator's admission rate.",
            "",
            "| measurement | dchat, parallel submission | baseline: one request at a time |",
            "|---|---:|---:|",
            *(f"| {name} | {cell(ours)} | {cell(base)} |" for name, cell in ROWS),
            "",
            f"Finalized throughput, parallel / one at a time: {ratio:.2f}x.",
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
    ours = run(args, parallel=True)
    base = run(args, parallel=False)
    publish(NAME, section(ours, base, args, argv), args)


if __name__ == "__main__":
    main()
