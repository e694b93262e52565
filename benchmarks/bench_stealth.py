"""Stealth payments: the wallet's scan rate (transfers/s) and the cost of paying and spending.

A currency chain of ``--blocks`` blocks with ``--per-block`` stealth transfers
each (one in ``--mine`` to the scanning wallet, the rest to other meta-addresses)
is produced in process by :class:`dchat_chain._light_sim.SignedChain` (real
blocks and certificates, 4 validators). The wallet's :class:`StealthScan` then
scans it from genesis over in-memory ``/v1/chain/headers`` and
``/v1/chain/blocks/{h}/txs`` answers (JSON, hex): header verification, the
``txs_root`` check, transaction decoding and one match per stealth transfer.
No HTTP: the figure is the wallet's CPU cost. The match alone
(``StealthKeys.owns``: one scalar multiplication, the view tag, for one in 256
others a second scalar multiplication) is timed on its own, against one X25519
exchange (``cryptography``), the least any Diffie-Hellman scan must do.

Paying (``stealth_payment``) and signing with a one-time key
(``ScalarSigningKey.sign``) are timed against Ed25519 signing with
``cryptography``. Rates are per CPU-second of this process (per core); rows are
interleaved over ``--repeats`` rounds after a warm-up, best and median shown.

Usage::

    uv run python benchmarks/bench_stealth.py [--blocks N] [--per-block K] [--no-write]
"""

from __future__ import annotations

import secrets
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from _common import arg_parser, interleaved_rounds, load_at_end, markers, publish, run_lines
from dchat_chain import CurrencyChainApp, Transaction
from dchat_chain._light_sim import SignedChain
from dchat_chain.lowlevel import (
    NetPlan,
    StealthKeys,
    StealthMemo,
    StealthScan,
    block_txs_answer,
    genesis_anchor,
    plan_testnet,
    stealth_payment,
)
from dchat_core import canonical_encode

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

NAME = "bench_stealth"
START, END = markers(NAME)
WALLET = StealthKeys.from_seed(b"bench wallet seed".ljust(32, b"\0"))


def build(blocks: int, per_block: int, mine: int) -> tuple[bytes, Any, int]:
    """Genesis, an answering function over the produced chain, and how many are ours."""
    addresses = [f"127.0.0.1:{9000 + i}" for i in range(4)]  # never listened on
    net = plan_testnet(NetPlan(validators=4, accounts=1), addresses, secrets.token_bytes)
    genesis, payer = net.currency_genesis, net.wallets[0]
    chain_id, vals = genesis_anchor(genesis)
    app = CurrencyChainApp.from_genesis(genesis)
    chain = SignedChain(chain_id, app, vals, [v.keys.bls for v in net.validators])
    others = [StealthKeys.from_seed(secrets.token_bytes(32)).meta_address for _ in range(16)]
    nonce, ours, stored = 0, 0, {}
    for _ in range(blocks):
        txs = []
        for _ in range(per_block):
            to = WALLET.meta_address if nonce % mine == 0 else others[nonce % len(others)]
            ours += to == WALLET.meta_address
            account, memo = stealth_payment(to)
            body = {"to": account, "amount": 1, "stealth": memo.to_bytes()}
            tx = Transaction.create(
                payer, chain_id=chain_id, nonce=nonce, fee=0, kind="transfer", body=body
            )
            txs.append(tx.raw)
            nonce += 1
        chain.produce(txs)
        stored[chain.height] = txs
    items = {
        h: {
            "height": h,
            "header": canonical_encode(chain.headers[h].to_obj()).hex(),
            "certificate": chain.certificates[h].to_bytes().hex(),
            "next_validators": None,
        }
        for h in stored
    }

    class _Blocks:  # what block_txs_answer reads: range(height, 1) -> [(block, cert)]
        def range(self, height: int, _n: int) -> list[Any]:
            block = type("B", (), {"header": chain.headers[height], "txs": stored[height]})
            return [(block, None)]

    def fetch(path: str) -> dict[str, Any]:
        if path.endswith("/txs"):
            answer = block_txs_answer(_Blocks(), int(path.split("/")[4]))  # type: ignore[arg-type]
            assert answer is not None
            return answer
        start = int(path.split("from=")[1].split("&")[0])
        limit = int(path.split("limit=")[1])
        page = [items[h] for h in range(start, min(start + limit, len(items) + 1))]
        return {"chain_id": chain_id, "tip": len(items), "headers": page}

    return genesis, fetch, ours


def scan_run(genesis: bytes, fetch: Callable[[str], Any], blocks: int, ours: int) -> float:
    """CPU seconds for a fresh scan of every block."""
    scan = StealthScan.restore(None, genesis, WALLET)
    began = time.process_time()
    scan.scan_to(blocks)
    while (request := scan.next_request()) is not None:
        scan.receive(fetch(request))
    elapsed = time.process_time() - began
    assert len(scan.finds) == ours, (len(scan.finds), ours)
    return elapsed


def timed(action: Callable[[], object], n: int) -> Callable[[], float]:
    def run() -> float:
        began = time.process_time()
        for _ in range(n):
            action()
        return time.process_time() - began

    return run


def main(argv: list[str]) -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--blocks", type=int, default=40)
    parser.add_argument("--per-block", type=int, default=50)
    parser.add_argument("--mine", type=int, default=10, help="One transfer in MINE is ours.")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    genesis, fetch, ours = build(args.blocks, args.per_block, args.mine)
    total = args.blocks * args.per_block
    n = 500
    mine = [stealth_payment(WALLET.meta_address) for _ in range(n)]
    other = StealthKeys.from_seed(bytes(32)).meta_address
    theirs = [stealth_payment(other) for _ in range(n)]
    cycle_mine, cycle_theirs = iter(mine * 100), iter(theirs * 100)
    key = WALLET.spending_key(*mine[0])
    ed = Ed25519PrivateKey.generate()
    x = X25519PrivateKey.generate()
    peer = X25519PrivateKey.generate().public_key()
    message = b"m" * 200
    probe: tuple[bytes, StealthMemo] = mine[0]
    assert WALLET.owns(*probe)
    assert not any(WALLET.owns(*t) for t in theirs)
    rows: dict[str, tuple[int, Callable[[], float]]] = {
        "scan": (total, lambda: scan_run(genesis, fetch, args.blocks, ours)),
        "miss": (n, timed(lambda: WALLET.owns(*next(cycle_theirs)), n)),
        "match": (n, timed(lambda: WALLET.owns(*next(cycle_mine)), n)),
        "x25519": (n, timed(lambda: x.exchange(peer), n)),
        "pay": (n, timed(lambda: stealth_payment(WALLET.meta_address), n)),
        "sign": (n, timed(lambda: key.sign(message), n)),
        "ed25519": (n, timed(lambda: ed.sign(message), n)),
    }
    runs = {k: v[1] for k, v in rows.items()}
    interleaved_rounds(runs, 1)  # warm-up
    results = interleaved_rounds(runs, args.repeats)
    rates = {
        k: (rows[k][0] / min(v), rows[k][0] / statistics.median(v)) for k, v in results.items()
    }
    publish(NAME, section(rates, args, argv, ours, total), args)


def section(
    rates: dict[str, tuple[float, float]],
    args: argparse.Namespace,
    argv: list[str],
    ours: int,
    total: int,
) -> str:
    def row(label: str, impl: str, key: str, base: str | None = None) -> str:
        best, median = rates[key]
        ratio = "" if base is None else f"{rates[base][0] / best:.1f}x"
        return f"| {label} | {impl} | {best:,.0f} | {median:,.0f} | {1e6 / best:,.0f} | {ratio} |"

    return "\n".join(
        [
            START,
            "## Stealth payments: scan rate, paying, one-time signatures (`bench_stealth.py`)",
            "",
            *run_lines(NAME, argv, load_at_end()),
            f"- Scan: {args.blocks} blocks of {args.per_block} stealth transfers ({total} in all, "
            f"{ours} ours), 4 validators; `StealthScan` from genesis over in-memory JSON answers "
            "(header certificates, `txs_root`, decoding, matching). Rates per CPU-second of one "
            f"thread; best and median of {args.repeats} interleaved rounds after a warm-up.",
            "- Match: `StealthKeys.owns` on another wallet's memos (the common case: one "
            "scalar multiplication, the view tag) and on ours (then the one-time account is "
            "derived and compared). Baseline: one X25519 exchange (`cryptography`). "
            "libsodium's `crypto_scalarmult_ed25519_noclamp` first checks that the point lies "
            "in the prime-order subgroup (a multiplication by L) and works on Edwards "
            "coordinates; X25519 does neither, hence most of the gap.",
            "- Pay: `stealth_payment` (ephemeral key, shared point, tweak, one-time account). "
            "Sign: `ScalarSigningKey.sign` (a one-time key's Ed25519 signature, 200-byte "
            "message). Baseline of both: Ed25519 signing with `cryptography`.",
            "",
            "| operation | implementation | best (ops/s per core) | median (ops/s) "
            "| µs per op (best) | dchat time / baseline |",
            "|---|---|---:|---:|---:|---:|",
            row("scan of committed blocks (transfers)", "dchat `StealthScan`", "scan"),
            row("check a transfer not ours", "dchat `StealthKeys.owns`", "miss", "x25519"),
            row("check a transfer that is ours", "dchat `StealthKeys.owns`", "match", "x25519"),
            row("one Diffie-Hellman", "X25519 exchange", "x25519"),
            row("pay: derive a one-time account", "dchat `stealth_payment`", "pay", "ed25519"),
            row("sign with a one-time key", "dchat `ScalarSigningKey.sign`", "sign", "ed25519"),
            row("sign", "Ed25519 (`cryptography`)", "ed25519"),
            END,
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
