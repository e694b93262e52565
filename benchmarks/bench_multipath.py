"""Multi-path delivery: two home relays against one, same run, user nodes as processes.

Two relays and two pairs of user nodes are started as a user starts them
(``dchat-node run``). In the *single-path* pair bob has one home relay; in the
*multi-path* pair bob's card lists both relays, so alice deposits every
message at each and bob receives it twice (the second copy a duplicate). Each
pair's alice sends 1 KiB texts to its bob through the API's WebSocket (16
senders, as ``bench_e2e.py``); the rows alternate, so load from elsewhere hits
both alike. Measured per pair:

- **delivered**: the time from the first send until bob's node holds all N;
- **CPU per delivered message**: user + system CPU of alice, bob and the
  relays over that run, divided by N (the relays: the one the single-path pair
  uses, both for the multi-path pair);
- **latency**: paced at 100 msg/s, from just before a send until its event
  reaches a client following bob's events.

The last printed line is ``multipath: single <X> msg/s, <A> ms CPU/msg; two
relays <Y> msg/s, <B> ms CPU/msg (<R> x CPU)``.
"""

from __future__ import annotations

import json
import secrets
import statistics
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _common
import bench_e2e

if TYPE_CHECKING:
    import argparse

    from dchat_node import NodeProcess

NAME = "bench_multipath"
PAIRS = ("single", "multi")


def _user(path: Path, passphrase: str, relays: list[str]) -> NodeProcess:
    from dchat_node import NodeProcess

    path.mkdir(mode=0o700)
    (path / "dchat.toml").write_text(f"[node]\nrelays = {json.dumps(relays)}\n")
    node = NodeProcess(path, "user", passphrase=passphrase)
    node.start()
    return node


def start(root: Path) -> tuple[list[NodeProcess], dict[str, dict[str, NodeProcess]]]:
    """Two relays, and per pair an alice and a bob that hold each other's cards."""
    from dchat_node import NodeProcess, free_port

    passphrase = secrets.token_urlsafe(16)
    relays = []
    for name in ("relay-a", "relay-b"):
        relay = NodeProcess(
            root / name, "relay", passphrase=passphrase, listen=f"127.0.0.1:{free_port()}"
        )
        relay.start()
        relays.append(relay)
    links = [relay.info["link"] for relay in relays]
    homes = {"single": links[:1], "multi": links}
    pairs: dict[str, dict[str, NodeProcess]] = {}
    for pair, home in homes.items():
        nodes = {who: _user(root / f"{pair}-{who}", passphrase, home) for who in ("alice", "bob")}
        with nodes["alice"].client() as alice, nodes["bob"].client() as bob:
            alice.create_identity("alice")
            bob.create_identity("bob")
            alice.add_contact("bob", bob.card())
            bob.add_contact("alice", alice.card())
        pairs[pair] = {**nodes, "relay-a": relays[0]} | (
            {"relay-b": relays[1]} if pair == "multi" else {}
        )
    return relays, pairs


def measure(nodes: dict[str, NodeProcess], messages: int) -> tuple[float, float]:
    """One throughput run: (msg/s delivered, ms CPU per message over the pair's processes)."""
    before = {name: bench_e2e.cpu_seconds(node.pid) for name, node in nodes.items()}
    seconds = bench_e2e.send_all(nodes, messages, bench_e2e.SENDERS)
    cpu = sum(bench_e2e.cpu_seconds(node.pid) - before[name] for name, node in nodes.items())
    return messages / seconds, cpu / messages * 1000


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dchat-bench-multipath-") as tmp:
        relays, pairs = start(Path(tmp))
        try:
            for nodes in pairs.values():
                bench_e2e.warm_up(nodes)
            rounds: dict[str, list[tuple[float, float]]] = {pair: [] for pair in PAIRS}
            for _ in range(args.rounds):
                for pair in PAIRS:
                    rounds[pair].append(measure(pairs[pair], args.messages))
            latency = {
                pair: bench_e2e.latencies(pairs[pair], args.latency_messages) for pair in PAIRS
            }
        finally:
            for node in {id(n): n for nodes in pairs.values() for n in nodes.values()}.values():
                node.stop()
            for relay in relays:
                relay.stop()
    result: dict[str, Any] = {}
    for pair in PAIRS:
        cuts = statistics.quantiles(latency[pair], n=100)
        result[pair] = {
            "rate": statistics.median(rate for rate, _ in rounds[pair]),
            "cpu_ms": statistics.median(cpu for _, cpu in rounds[pair]),
            "p50": cuts[49] * 1000,
            "p99": cuts[98] * 1000,
        }
    return result


def section(result: dict[str, Any], args: argparse.Namespace, argv: list[str]) -> str:
    start_marker, end_marker = _common.markers(NAME)
    single, multi = result["single"], result["multi"]
    rows = [
        ("delivered, 16 concurrent senders", "rate", "{:,.0f} msg/s"),
        ("CPU per delivered message (alice, bob, relays)", "cpu_ms", "{:.2f} ms"),
        ("latency send → event at bob, 100 msg/s, p50", "p50", "{:.1f} ms"),
        ("latency send → event at bob, 100 msg/s, p99", "p99", "{:.1f} ms"),
    ]
    lines = [
        start_marker,
        "## Multi-path delivery: two home relays against one (user nodes as processes)",
        "",
        *_common.run_lines(NAME, argv, _common.load_at_end()),
        "",
        f"1 KiB texts from alice to bob through alice's API socket; N = {args.messages}, "
        f"median of {args.rounds} alternating rounds per row; latency over "
        f"{args.latency_messages} paced messages.",
        "",
        "| measure | one relay | two relays | ratio |",
        "|---|---|---|---|",
        *(
            f"| {label} | {fmt.format(single[key])} | {fmt.format(multi[key])} | "
            f"{multi[key] / single[key]:.2f} |"
            for label, key, fmt in rows
        ),
        end_marker,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = _common.arg_parser(__doc__)
    parser.add_argument("--messages", type=int, default=2000, help="N per throughput run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per pair")
    parser.add_argument("--latency-messages", type=int, default=500, help="paced messages")
    args = parser.parse_args(argv)
    result = run(args)
    _common.publish(NAME, section(result, args, argv), args)
    single, multi = result["single"], result["multi"]
    print(
        f"multipath: single {single['rate']:.0f} msg/s, {single['cpu_ms']:.2f} ms CPU/msg; "
        f"two relays {multi['rate']:.0f} msg/s, {multi['cpu_ms']:.2f} ms CPU/msg "
        f"({multi['cpu_ms'] / single['cpu_ms']:.2f} x CPU)"
    )


if __name__ == "__main__":
    main()
