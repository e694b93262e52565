"""End-to-end delivery: a relay and two user nodes as processes, 1 KiB messages through the API.

A relay, alice and bob are started as a user starts them (``dchat-node run``),
each its own process; alice sends 1 KiB texts to bob through her node's API.
The senders hold the API's WebSocket (``/v1/socket``) through the SDK's
``RemoteSocket``, one each; the same runs over plain HTTP (``POST
/v1/messages`` on keep-alive connections) are the baseline. Measured in one run:

- **delivered, 16 senders**: 16 threads send concurrently; the time from the
  first send until bob's node holds all N (its ``received`` counter);
- **delivered, sequential**: one thread sends N one after another, same clock;
- **latency**: alice sends paced at 100 msg/s over a socket; for each message,
  the time from just before its send until its ``message`` event reaches a
  client following bob's events on a socket (the SDK's ``RemoteSocket.events``);
- **CPU per delivered message**: user + system CPU of the three processes over
  concurrent socket run, divided by N; bob's includes answering this script's
  ``/status`` polls (one every 25 ms). Apart: the load generator's own CPU (it
  shares the two cores);
- **ceiling**: the bare link echo of ``bench_link.py`` (1 KiB messages over one
  link, no storage, no encryption beyond the link's) in the same run, and the
  ratio of the end-to-end rate to it.

The last printed line is ``e2e: <X> msg/s delivered (16 senders), <Y> msg/s
sequential, p50 <A> ms, p99 <B> ms``.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import trio

import _common

if TYPE_CHECKING:
    import argparse

    from dchat_node import NodeProcess

NAME = "bench_e2e"
TEXT = "x" * 1024
SENDERS = 16
PACE = 100.0  # messages per second in the latency run
WAIT = 300.0  # upper bound on any phase


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Api:
    """A keep-alive HTTP/1.1 client of a node's API, on the standard library.

    The load generator shares the machine's two cores with the three nodes, so
    it is kept lean (``http.client`` spends a fraction of ``httpx``'s CPU per
    request); the requests are the API's own, as any client sends them.
    """

    IDLE = 2.0
    """Reconnect before a request after this long unused (the server closes idle
    keep-alive connections after 5 s; a POST is never sent twice)."""

    def __init__(self, node: NodeProcess) -> None:
        url = urlsplit(node.info["url"])
        self._conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60.0)
        self._used = time.monotonic()
        self._headers = {
            "Authorization": f"Bearer {node.info['token']}",
            "Content-Type": "application/json",
        }

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request; the answer's JSON. Raises on a status other than 2xx."""
        data = None if body is None else json.dumps(body).encode()
        if time.monotonic() - self._used > self.IDLE:
            self._conn.close()  # the next request opens a fresh connection
        self._conn.request(method, path, body=data, headers=self._headers)
        reply = self._conn.getresponse()
        raw = reply.read()
        self._used = time.monotonic()
        if not 200 <= reply.status < 300:
            raise SystemExit(f"{method} {path}: {reply.status} {raw[:200]!r}")
        return json.loads(raw)

    def send(self, text: str) -> None:
        """``POST /v1/messages`` of ``text`` to bob."""
        self.call("POST", "/v1/messages", {"to": "bob", "text": text})

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Socket:
    """A sender on the API's WebSocket, through the SDK (``RemoteSocket``)."""

    def __init__(self, node: NodeProcess) -> None:
        from dchat_sdk import RemoteSocket

        self._socket = RemoteSocket(node.info["url"], node.info["token"], timeout=60.0)

    def send(self, text: str) -> None:
        """Send ``text`` to bob."""
        self._socket.send("bob", text)

    def close(self) -> None:
        self._socket.close()


def sender(node: NodeProcess, transport: str) -> Api | Socket:
    """A client of ``node`` that sends over ``transport`` (``socket`` or ``http``)."""
    return Socket(node) if transport == "socket" else Api(node)


def api(node: NodeProcess) -> Api:
    """A keep-alive client of ``node``'s API."""
    return Api(node)


def received(bob: Api) -> int:
    """Messages bob's node has received so far."""
    return int(bob.call("GET", "/status")["received"])


def wait_received(bob: Api, target: int, period: float = 0.025) -> float:
    """Block until bob has ``target`` messages; returns the time (monotonic) it saw them."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if received(bob) >= target:
            return time.monotonic()
        time.sleep(period)
    raise SystemExit(f"bob did not receive {target} messages within {WAIT:.0f} s")


def send_all(
    nodes: dict[str, NodeProcess], count: int, senders: int, transport: str = "socket"
) -> float:
    """Send ``count`` messages with ``senders`` threads; seconds until bob holds them all."""
    clients = [sender(nodes["alice"], transport) for _ in range(senders)]
    with api(nodes["bob"]) as bob:
        start_count = received(bob)
        began = time.monotonic()

        def post(i: int) -> None:
            clients[i % senders].send(TEXT)

        with ThreadPoolExecutor(senders) as pool:
            shares = [range(k, count, senders) for k in range(senders)]
            list(pool.map(lambda share: [post(i) for i in share], shares))
        done = wait_received(bob, start_count + count)
    for client in clients:
        client.close()
    return done - began


def latencies(nodes: dict[str, NodeProcess], count: int) -> list[float]:
    """Send ``count`` messages paced at :data:`PACE`/s; each one's send-to-event seconds."""
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    with nodes["bob"].client(timeout=60) as client, client.socket() as bob:
        _, start = client.event_page()  # the log's end now: every later event is followed

        def follow() -> None:
            for event in bob.events(after=start):
                if event.kind == "message" and event.data.get("direction") == "in":
                    seen.setdefault(event.data["text"], time.monotonic())
                    if len(seen) >= count:
                        return

        watcher = threading.Thread(target=follow, daemon=True)
        watcher.start()
        alice = sender(nodes["alice"], "socket")
        try:
            began = time.monotonic()
            for i in range(count):
                time.sleep(max(0.0, began + i / PACE - time.monotonic()))
                text = f"{i:06d}" + TEXT[6:]
                sent[text] = time.monotonic()
                alice.send(text)
        finally:
            alice.close()
        watcher.join(WAIT)
    if len(seen) < count:
        raise SystemExit("the latency run did not complete")
    return [seen[text] - at for text, at in sent.items()]


def warm_up(nodes: dict[str, NodeProcess]) -> None:
    """Set up the session (the first message's X-Wing setup) and the links."""
    with api(nodes["alice"]) as alice, api(nodes["bob"]) as bob:
        base = received(bob)
        for _ in range(20):
            alice.send(TEXT)
        wait_received(bob, base + 20)


def link_ceiling(messages: int) -> float:
    """The bare link echo's messages per second (``bench_link.py``'s workload)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_link

    async def measure() -> float:
        async with trio.open_nursery() as nursery:
            address = await bench_link.start_dchat_server(nursery)
            link = await bench_link.dial_dchat(address)
            await bench_link.throughput(link, 1000)  # warm-up
            rate = messages / await bench_link.throughput(link, messages)
            await link.aclose()
            nursery.cancel_scope.cancel()
        return rate

    return trio.run(measure)


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dchat-bench-e2e-") as tmp:
        nodes = _common.start_nodes(Path(tmp))
        try:
            warm_up(nodes)
            pids = {name: node.pid for name, node in nodes.items()}
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            ours = time.process_time()
            concurrent = send_all(nodes, args.messages, SENDERS)
            split = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
            load = time.process_time() - ours
            cpu = sum(split.values())
            sequential = send_all(nodes, args.messages, 1)
            lat = latencies(nodes, min(args.messages, args.latency_messages))
            http_concurrent = send_all(nodes, args.messages, SENDERS, "http")
            http_sequential = send_all(nodes, args.messages, 1, "http")
        finally:
            for node in nodes.values():
                node.stop()
    ceiling = link_ceiling(args.messages * 10)
    cuts = statistics.quantiles(lat, n=100)
    return {
        "concurrent": args.messages / concurrent,
        "sequential": args.messages / sequential,
        "p50": cuts[49] * 1000,
        "p99": cuts[98] * 1000,
        "cpu_ms": cpu / args.messages * 1000,
        "cpu_split": {name: t / args.messages * 1000 for name, t in split.items()},
        "load_cpu_ms": load / args.messages * 1000,
        "ceiling": ceiling,
        "http_concurrent": args.messages / http_concurrent,
        "http_sequential": args.messages / http_sequential,
    }


def section(result: dict[str, Any], args: argparse.Namespace, argv: list[str]) -> str:
    start, end = _common.markers(NAME)
    lines = [
        start,
        "## End-to-end delivery (relay + two user nodes, as processes)",
        "",
        *_common.run_lines(NAME, argv, _common.load_at_end()),
        "",
        f"1 KiB texts from alice to bob through alice's API; N = {args.messages}. The senders "
        "hold the API's WebSocket (the SDK's `RemoteSocket`); the same runs over HTTP "
        "(`POST /v1/messages`, keep-alive) are the baseline.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| delivered, {SENDERS} concurrent senders | {result['concurrent']:,.0f} msg/s |",
        f"| delivered, one sequential sender | {result['sequential']:,.0f} msg/s |",
        f"| latency send → event at bob, 100 msg/s, p50 | {result['p50']:.1f} ms |",
        f"| latency send → event at bob, 100 msg/s, p99 | {result['p99']:.1f} ms |",
        f"| CPU per delivered message (3 processes) | {result['cpu_ms']:.2f} ms |",
        *(f"| … of which {name} | {ms:.2f} ms |" for name, ms in result["cpu_split"].items()),
        f"| load generator (this script, {SENDERS} threads), not counted above | "
        f"{result['load_cpu_ms']:.2f} ms |",
        f"| baseline over HTTP POST: {SENDERS} concurrent senders | "
        f"{result['http_concurrent']:,.0f} msg/s |",
        f"| baseline over HTTP POST: one sequential sender | "
        f"{result['http_sequential']:,.0f} msg/s |",
        f"| ceiling: bare link echo, 1 KiB | {result['ceiling']:,.0f} msg/s |",
        f"| end to end / ceiling ({SENDERS} senders) | "
        f"{result['concurrent'] / result['ceiling']:.1%} |",
        "",
        "Latency: from just before alice's send until the message's event reaches a client "
        "following bob's events on a socket.",
        end,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = _common.arg_parser(__doc__)
    parser.add_argument("--messages", type=int, default=2000, help="N per throughput run")
    parser.add_argument("--latency-messages", type=int, default=500, help="paced messages")
    args = parser.parse_args(argv)
    result = run(args)
    text = section(result, args, argv)
    print(text)
    if not args.no_write:
        _common.write_section(NAME, text)
    print(
        f"e2e: {result['concurrent']:.0f} msg/s delivered ({SENDERS} senders), "
        f"{result['sequential']:.0f} msg/s sequential, p50 {result['p50']:.1f} ms, "
        f"p99 {result['p99']:.1f} ms"
    )


if __name__ == "__main__":
    main()
