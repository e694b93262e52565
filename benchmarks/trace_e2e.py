"""Where a message's latency goes: stage stamps across the relay and two user nodes.

A diagnosis tool beside ``bench_e2e.py`` (it writes nothing to the docs): the
three nodes start with ``benchmarks/_lattrace`` on their ``PYTHONPATH``, whose
``sitecustomize`` wraps each step of a message's way and stamps it with
``time.monotonic()`` (one clock for every process of the machine). Alice sends
paced texts to bob over the API socket, as in ``bench_e2e.py``'s latency run,
while a client follows bob's events; then the stamps are joined per message
(by text, message id and envelope hash) and the median and 99th percentile of
each stage is printed. The product never imports the tracer: without this
script's environment the nodes run as always.

``uv run python benchmarks/trace_e2e.py [--messages N] [--pace P]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import _common
import bench_e2e

STAGES = [
    ("client -> alice API", ("x", "x.sent"), ("a", "a.ws")),
    ("alice: wait for group commit", ("a", "a.ws"), ("a", "a.fn0")),
    ("alice: encrypt + queue (send_text)", ("a", "a.fn0"), ("a", "a.fn1")),
    ("alice: rest of group + commit", ("a", "a.fn1"), ("a", "a.gend")),
    ("alice: woken outbox, due read", ("a", "a.gend"), ("a", "a.due")),
    ("alice: route", ("a", "a.due"), ("a", "a.put0")),
    ("link alice -> relay", ("a", "a.put0"), ("r", "r.triage")),
    ("relay: queue + worker trip", ("r", "r.triage"), ("r", "r.serve")),
    ("relay: store + commit", ("r", "r.serve"), ("r", "r.gend")),
    ("relay: wake parked pull + read", ("r", "r.gend"), ("r", "r.resume")),
    ("link relay -> bob", ("r", "r.resume"), ("b", "b.recv")),
    ("bob: wait for group commit", ("b", "b.recv"), ("b", "b.fn0")),
    ("bob: decrypt + store (accept)", ("b", "b.fn0"), ("b", "b.fn1")),
    ("bob: rest of group + commit", ("b", "b.fn1"), ("b", "b.gend")),
    ("bob: back in the event loop", ("b", "b.gend"), ("b", "b.handled")),
    ("bob: notify + event page read", ("b", "b.handled"), ("b", "b.page")),
    ("bob: socket send", ("b", "b.page"), ("b", "b.wssent")),
    ("bob API -> client", ("b", "b.wssent"), ("x", "x.seen")),
]


def read_stamps(path: Path) -> dict[str, list[tuple[str, float, str]]]:
    """Stage -> list of (key, time, extra) from one process's file."""
    stamps: dict[str, list[tuple[str, float, str]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        parts = line.split(" ", 3)
        stamps[parts[0]].append((parts[1], float(parts[2]), parts[3] if len(parts) > 3 else ""))
    return stamps


def first(stamps: list[tuple[str, float, str]]) -> dict[str, tuple[float, str]]:
    out: dict[str, tuple[float, str]] = {}
    for key, at, extra in stamps:
        out.setdefault(key, (at, extra))
    return out


def join(files: dict[str, Path], sent: dict[str, float], seen: dict[str, float]) -> list[dict]:
    """Per message (by index), the time of each stage."""
    a, r, b = (read_stamps(files[n]) for n in ("alice", "relay", "bob"))
    a_gend = {k: at for k, at, _ in a["g.end"]}
    r_gend = {k: at for k, at, _ in r["g.end"]}
    b_gend = {k: at for k, at, _ in b["g.end"]}
    a_ws, a_fn0, a_fn1 = first(a["a.ws"]), first(a["a.fn0"]), first(a["a.fn1"])
    a_due, a_route, a_put0 = first(a["a.due"]), first(a["a.route"]), first(a["a.put0"])
    r_tri, r_srv = first(r["r.triage"]), first(r["r.serve"])
    r_push = {**first(r["r.pushnow"]), **first(r["r.resume"])}
    b_recv, b_fn0, b_fn1 = first(b["b.recv"]), first(b["b.fn0"]), first(b["b.fn1"])
    b_handled, b_page, b_ws = first(b["b.handled"]), first(b["b.page"]), first(b["b.wssent"])
    by_content = {content: h for h, (_, content) in b_fn1.items()}  # content id -> envelope
    by_envelope = {h: m for m, (_, h) in a_route.items()}  # envelope -> outbox entry id
    rows = []
    for idx in sent:
        try:
            bm = a_fn1[idx][1]
            h = by_content[bm]
            m = by_envelope[h]
            row = {
                "x.sent": sent[idx], "a.ws": a_ws[idx][0], "a.fn0": a_fn0[idx][0],
                "a.fn1": a_fn1[idx][0], "a.gend": a_gend[a_fn0[idx][1]],
                "a.due": a_due[m][0], "a.put0": a_put0[h][0], "r.triage": r_tri[h][0],
                "r.serve": r_srv[h][0], "r.gend": r_gend[r_srv[h][1]], "r.resume": r_push[h][0],
                "b.recv": b_recv[h][0], "b.fn0": b_fn0[h][0], "b.fn1": b_fn1[h][0],
                "b.gend": b_gend[b_fn0[h][1]], "b.handled": b_handled[h][0],
                "b.page": b_page[bm][0], "b.wssent": b_ws[bm][0], "x.seen": seen[idx],
            }  # fmt: skip
        except KeyError:
            continue
        rows.append(row)
    return rows


def latencies(nodes: dict, count: int, pace: float) -> tuple[dict, dict]:
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    with nodes["bob"].client(timeout=60) as client, client.socket() as bob:
        _, start = client.event_page()

        def follow() -> None:
            for event in bob.events(after=start):
                if event.kind == "message" and event.data.get("direction") == "in":
                    seen.setdefault(event.data["text"][:6], time.monotonic())
                    if len(seen) >= count:
                        return

        watcher = threading.Thread(target=follow, daemon=True)
        watcher.start()
        alice = bench_e2e.sender(nodes["alice"], "socket")
        try:
            began = time.monotonic()
            for i in range(count):
                time.sleep(max(0.0, began + i / pace - time.monotonic()))
                text = f"{i:06d}" + bench_e2e.TEXT[6:]
                sent[text[:6]] = time.monotonic()
                alice.send(text)
        finally:
            alice.close()
        watcher.join(bench_e2e.WAIT)
    return sent, seen


def q(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100)[p - 1] * 1000 if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--pace", type=float, default=100.0)
    parser.add_argument("--keep", help="copy the stamp files to this folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dchat-trace-") as tmp:
        out = Path(tmp) / "stamps"
        out.mkdir()
        here = Path(__file__).parent / "_lattrace"
        os.environ["DCHAT_LATTRACE"] = str(out)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [str(here), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        nodes = _common.start_nodes(Path(tmp))
        files = {name: out / f"{node.pid}.txt" for name, node in nodes.items()}
        try:
            bench_e2e.warm_up(nodes)
            sent, seen = latencies(nodes, args.messages, args.pace)
        finally:
            for node in nodes.values():
                node.stop()
        rows = join(files, sent, seen)
        if args.keep:
            import shutil

            shutil.copytree(out, args.keep, dirs_exist_ok=True)
    total = [seen[i] - sent[i] for i in sent if i in seen]
    print(f"{len(rows)} of {len(sent)} messages joined; load {_common.load_averages()}")
    print(f"{'stage':40} {'p50 ms':>8} {'p99 ms':>8}")
    for name, (_, start), (_, end) in STAGES:
        d = [row[end] - row[start] for row in rows]
        print(f"{name:40} {q(d, 50):8.2f} {q(d, 99):8.2f}")
    print(f"{'total send -> event':40} {q(total, 50):8.2f} {q(total, 99):8.2f}")


if __name__ == "__main__":
    sys.exit(main())
