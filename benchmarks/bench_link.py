"""Link throughput and latency: dchat's link vs the same framing over `noiseprotocol`.

Both sides of each comparison run over loopback TCP (127.0.0.1, a free port) in
one trio process, in the same run:

* ``dchat``: :func:`dchat_network.serve_links` / :func:`dchat_network.connect`
  and ``Link.send`` / ``Link.receive``.
* ``noiseprotocol``: the identical wire format (``Noise_XX_25519_ChaChaPoly_BLAKE2s``,
  prologue ``dchat-link-v1``, u16-framed Noise messages carrying a stream of
  u32-length-prefixed application messages, same identity proofs), driven by the
  ``noiseprotocol`` package over a trio TCP stream. Only the Noise
  implementation differs; before measuring, a baseline client opens a link to the
  dchat server to prove the two speak the same bytes.

Measurements, on 1 KiB messages:

* one-way throughput: N messages streamed, then one request for an ack;
* round-trip latency: request/response pings, median and p99.

A third row, ``dchat, send timeout=None``, runs dchat on both ends with
``Link.send(..., timeout=None)``: the same code without the per-send deadline
(a trio cancel scope) that the default ``timeout=30.0`` opens and the baseline
has no equivalent of, so the table shows what that guarantee costs.

Each measurement runs ``--repeats`` times after a warm-up; the table reports the
best throughput run and the run with the lowest median latency (its p99 alongside).
The results replace this script's section of ``docs/benchmarks.md``.

Usage::

    uv run python benchmarks/bench_link.py [--messages N] [--pings N] [--repeats N]
"""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import trio
from noise.connection import Keypair, NoiseConnection

from _common import arg_parser, markers, publish, run_lines
from dchat_core import canonical_encode
from dchat_crypto import PrivateKey, SigningKey
from dchat_network import Link, LinkClosedError, connect, serve_links

if TYPE_CHECKING:
    import argparse

PROTOCOL = b"Noise_XX_25519_ChaChaPoly_BLAKE2s"
PROLOGUE = b"dchat-link-v1"
BIND_DOMAIN = b"dchat-link-static-v1\x00"
CHUNK = 65535 - 16  # largest plaintext per Noise transport message
READ_SIZE = 65536
SIZE = 1024
DATA, PING, ACK = b"D", b"P", b"A"
WAIT = 60  # upper bound on any single measurement

NAME = "bench_link"
START, END = markers(NAME)


# -- the baseline: the same protocol, driven by noiseprotocol ----------------------------


class NoiseprotocolLink:
    """A link speaking dchat's wire format with `noiseprotocol` doing the Noise part.

    The framing code mirrors ``dchat_network._link.LinkConnection`` so the two
    differ only in the Noise implementation. The peer's identity proof is not
    checked (the handshake is not measured); ours is sent so a dchat peer accepts it.
    """

    def __init__(self, stream: trio.SocketStream, node_key: SigningKey) -> None:
        self.stream = stream
        self.node_key = node_key
        self.static = PrivateKey.generate()
        self.noise = NoiseConnection.from_name(PROTOCOL)
        self.noise.set_prologue(PROLOGUE)
        self.noise.set_keypair_from_private_bytes(Keypair.STATIC, self.static.to_bytes())
        self.inbuf = bytearray()
        self.plain = bytearray()
        self.messages: list[bytes] = []

    def proof(self) -> bytes:
        sig = self.node_key.sign(BIND_DOMAIN + self.static.public_key.to_bytes())
        return canonical_encode({"v": 1, "key": self.node_key.public_key.to_bytes(), "sig": sig})

    async def _send_noise(self, message: bytes) -> None:
        await self.stream.send_all(len(message).to_bytes(2, "big") + message)

    async def _next_noise(self) -> bytes:
        while True:
            if len(self.inbuf) >= 2:
                size = int.from_bytes(self.inbuf[:2], "big")
                if len(self.inbuf) >= 2 + size:
                    message = bytes(self.inbuf[2 : 2 + size])
                    del self.inbuf[: 2 + size]
                    return message
            data = await self.stream.receive_some(READ_SIZE)
            if not data:
                raise EOFError
            self.inbuf += data

    async def handshake(self, *, initiator: bool) -> None:
        if initiator:
            self.noise.set_as_initiator()
            self.noise.start_handshake()
            await self._send_noise(bytes(self.noise.write_message(b"")))
            self.noise.read_message(await self._next_noise())
            await self._send_noise(bytes(self.noise.write_message(self.proof())))
        else:
            self.noise.set_as_responder()
            self.noise.start_handshake()
            self.noise.read_message(await self._next_noise())
            await self._send_noise(bytes(self.noise.write_message(self.proof())))
            self.noise.read_message(await self._next_noise())
        assert self.noise.handshake_finished

    async def send(self, data: bytes) -> None:
        stream = len(data).to_bytes(4, "big") + data
        out = bytearray()
        for start in range(0, len(stream), CHUNK):
            sealed = self.noise.encrypt(stream[start : start + CHUNK])
            out += len(sealed).to_bytes(2, "big") + sealed
        await self.stream.send_all(out)

    async def receive(self) -> bytes:
        while not self.messages:
            self.plain += self.noise.decrypt(await self._next_noise())
            while len(self.plain) >= 4:
                size = int.from_bytes(self.plain[:4], "big")
                if len(self.plain) < 4 + size:
                    break
                self.messages.append(bytes(self.plain[4 : 4 + size]))
                del self.plain[: 4 + size]
        return self.messages.pop(0)

    async def aclose(self) -> None:
        await self.stream.aclose()


class NoDeadlineLink:
    """A dchat :class:`Link` whose sends pass ``timeout=None`` (no per-send cancel scope)."""

    def __init__(self, link: Link) -> None:
        self.link = link

    async def send(self, data: bytes) -> None:
        await self.link.send(data, timeout=None)

    async def receive(self) -> bytes:
        return await self.link.receive()

    async def aclose(self) -> None:
        await self.link.aclose()


AnyLink = Link | NoiseprotocolLink | NoDeadlineLink


# -- one server protocol for both implementations ------------------------------------------


async def serve(link: AnyLink) -> None:
    """Count data messages, echo pings, answer an ack request with the count."""
    count = 0
    while True:
        try:
            message = await link.receive()
        except (LinkClosedError, EOFError, trio.BrokenResourceError):
            return
        kind = message[:1]
        if kind == DATA:
            count += 1
        elif kind == PING:
            await link.send(message)
        elif kind == ACK:
            await link.send(count.to_bytes(8, "big"))
            count = 0


async def start_dchat_server(nursery: trio.Nursery, *, deadlines: bool = True) -> tuple[str, int]:
    key = SigningKey.generate()

    async def handler(link: Link) -> None:
        await serve(link if deadlines else NoDeadlineLink(link))

    return await nursery.start(
        lambda task_status: serve_links(
            handler, "127.0.0.1", 0, node_key=key, task_status=task_status
        )
    )


async def start_baseline_server(nursery: trio.Nursery) -> tuple[str, int]:
    key = SigningKey.generate()

    async def on_connection(stream: trio.SocketStream) -> None:
        link = NoiseprotocolLink(stream, key)
        await link.handshake(initiator=False)
        await serve(link)

    listeners = await nursery.start(partial(trio.serve_tcp, on_connection, 0, host="127.0.0.1"))
    host, port = listeners[0].socket.getsockname()[:2]
    return host, port


async def dial_dchat(address: tuple[str, int]) -> Link:
    return await connect(*address, node_key=SigningKey.generate())


async def dial_baseline(address: tuple[str, int]) -> NoiseprotocolLink:
    link = NoiseprotocolLink(await trio.open_tcp_stream(*address), SigningKey.generate())
    await link.handshake(initiator=True)
    return link


# -- measurements ------------------------------------------------------------------------------


async def throughput(link: AnyLink, n: int) -> float:
    """Seconds to stream ``n`` 1 KiB messages and get them acknowledged."""
    message = DATA + bytes(SIZE - 1)
    start = time.perf_counter()
    for _ in range(n):
        await link.send(message)
    await link.send(ACK)
    received = int.from_bytes(await link.receive(), "big")
    elapsed = time.perf_counter() - start
    assert received == n, (received, n)
    return elapsed


async def round_trips(link: AnyLink, n: int) -> list[float]:
    """Round-trip times, in seconds, of ``n`` 1 KiB pings."""
    message = PING + bytes(SIZE - 1)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        await link.send(message)
        reply = await link.receive()
        times.append(time.perf_counter() - start)
        assert reply == message
    return times


@dataclass
class Result:
    name: str
    seconds: float  # best throughput run
    messages: int
    median: float  # of the latency run with the lowest median
    p99: float

    @property
    def msg_per_s(self) -> float:
        return self.messages / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.messages * SIZE / self.seconds / 1e6


def p99(times: list[float]) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[98]


async def measure(name: str, link: AnyLink, args: argparse.Namespace) -> Result:
    with trio.fail_after(WAIT):
        await throughput(link, max(args.messages // 10, 100))  # warm-up
        await round_trips(link, max(args.pings // 10, 50))
        best = min([await throughput(link, args.messages) for _ in range(args.repeats)])
        runs = [await round_trips(link, args.pings) for _ in range(args.repeats)]
    fastest = min(runs, key=statistics.median)
    result = Result(name, best, args.messages, statistics.median(fastest), p99(fastest))
    print(
        f"{name:>24}: {result.msg_per_s:9.0f} msg/s {result.mb_per_s:7.2f} MB/s  "
        f"rtt median {result.median * 1e6:6.0f} us  p99 {result.p99 * 1e6:6.0f} us",
        file=sys.stderr,
    )
    return result


async def run(args: argparse.Namespace) -> list[Result]:
    async with trio.open_nursery() as nursery:
        dchat_address = await start_dchat_server(nursery)
        no_deadline_address = await start_dchat_server(nursery, deadlines=False)
        baseline_address = await start_baseline_server(nursery)
        with trio.fail_after(WAIT):
            # Same wire format: a noiseprotocol client is served by the dchat server.
            probe = await dial_baseline(dchat_address)
            await probe.send(PING + b"interop")
            assert await probe.receive() == PING + b"interop"
            await probe.aclose()
            ours = await dial_dchat(dchat_address)
            no_deadline = NoDeadlineLink(await dial_dchat(no_deadline_address))
            theirs = await dial_baseline(baseline_address)
        results = [
            await measure("dchat", ours, args),
            await measure("noiseprotocol", theirs, args),
            await measure("dchat, send timeout=None", no_deadline, args),
        ]
        await ours.aclose()
        await no_deadline.aclose()
        await theirs.aclose()
        nursery.cancel_scope.cancel()
    return results


# -- report ----------------------------------------------------------------------------------


def section(results: list[Result], args: argparse.Namespace, argv: list[str]) -> str:
    rows = [
        f"| {r.name} | {r.msg_per_s:,.0f} | {r.mb_per_s:.1f} | "
        f"{r.median * 1e6:.0f} | {r.p99 * 1e6:.0f} |"
        for r in results
    ]
    ours, base, no_deadline = results
    return "\n".join(
        [
            START,
            "## Link throughput (1 KiB messages)",
            "",
            *run_lines(NAME, argv),
            f"- Loopback TCP, one trio process for client and server. Throughput: "
            f"{args.messages:,} messages streamed, then one ack; best of {args.repeats} runs. "
            f"Round trip: {args.pings:,} sequential 1 KiB pings; the run with the lowest "
            f"median of {args.repeats}, its p99 alongside. Warm-up before each.",
            "- Baseline: the same wire format (Noise_XX_25519_ChaChaPoly_BLAKE2s, u16 Noise "
            "frames, u32 application messages) with the `noiseprotocol` package doing Noise.",
            "- `dchat` uses `Link.send`'s default 30 s deadline on every send, which the "
            "baseline does not enforce; `dchat, send timeout=None` is the same code without "
            "it (both ends).",
            "",
            "| implementation | msg/s | MB/s | RTT median (µs) | RTT p99 (µs) |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            f"dchat / noiseprotocol: throughput {ours.msg_per_s / base.msg_per_s:.2f}x, "
            f"median round trip {ours.median / base.median:.2f}x. Without the per-send "
            f"deadline (`send(..., timeout=None)` on both ends): throughput "
            f"{no_deadline.msg_per_s / base.msg_per_s:.2f}x, median round trip "
            f"{no_deadline.median / base.median:.2f}x.",
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = arg_parser(__doc__)
    parser.add_argument("--messages", type=int, default=20_000, help="per throughput run")
    parser.add_argument("--pings", type=int, default=2_000, help="per latency run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement")
    args = parser.parse_args(argv)
    results = trio.run(run, args)
    text = section(results, args, argv)
    publish(NAME, text, args)


if __name__ == "__main__":
    main()
