"""An attacker against a live relay, run as its own process by test_relay_abuse.py.

``python _abuse_driver.py MODE HOST PORT SOURCE [options]`` attacks the relay
at ``HOST:PORT`` from the loopback address ``SOURCE`` (127.0.0.2, ...: a
source address other than the honest clients' 127.0.0.1) and prints one JSON
object of outcome counts on stdout. The attacker ignores ``busy`` answers and
keeps going (the worst case for the relay). It prints ``ready`` once
imported and waits for a line on stdin before it starts, so that its start-up
does not count as attack. It runs at the lowest CPU priority: a real
attacker spends its own machine's CPU, not the relay's, and on a small test
machine its own work would otherwise slow the relay and the honest clients
down as much as the attack does. Modes:

* ``flood``: ``--links`` links each send ``put_many`` deposits of ``--items``
  envelopes of ``--size`` bytes, to random mailboxes or to ``--victim``, for
  ``--seconds``.
* ``connect``: ``--attempts`` connections, ``--wave`` at a time held open
  together; each does the handshake and one request.
* ``slowloris``: ``--half-open`` TCP connections that send a few handshake
  bytes and stall, and ``--idle`` links that complete the handshake and send
  nothing; reports how long the relay took to close each.
* ``replay``: re-deposits the envelope ``--envelope`` (hex) ``--times`` times.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter

import trio

from dchat_core import MailboxId
from dchat_crypto import SigningKey
from dchat_messaging import SealedEnvelope
from dchat_network import DchatNetworkError, RelayBusyError, RelaySession, open_link


async def _session(args: argparse.Namespace) -> tuple[RelaySession, bytes]:
    """A session from ``args.source`` proving a fresh key, and that key's mailbox."""
    key = SigningKey.generate()
    stream = await trio.open_tcp_stream(args.host, args.port, local_address=args.source)
    try:
        link = await open_link(stream, initiator=True, node_key=key, timeout=10)
    except BaseException:
        await stream.aclose()
        raise
    return RelaySession(link), bytes(MailboxId.derive(key.public_key.to_bytes()))


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, RelayBusyError):
        return f"busy_{exc.reason}"
    return type(exc).__name__


async def flood(args: argparse.Namespace) -> Counter[str]:
    counts: Counter[str] = Counter()
    body = os.urandom(args.size)

    async def one_link() -> None:
        session, _ = await _session(args)
        with trio.move_on_after(args.seconds):
            while True:
                items = []
                for _ in range(args.items):
                    box = bytes.fromhex(args.victim) if args.victim else os.urandom(32)
                    envelope = SealedEnvelope(MailboxId(box), os.urandom(16) + body).to_bytes()
                    items.append((box, envelope))
                try:
                    results = await session.put_many(items)
                except RelayBusyError as exc:
                    counts[_outcome(exc)] += 1
                    continue
                except DchatNetworkError as exc:
                    counts[_outcome(exc)] += 1
                    session, _ = await _session(args)
                    continue
                counts.update("stored" if isinstance(r, bytes) else r for r in results)
        await session.aclose()

    async with trio.open_nursery() as nursery:
        for _ in range(args.links):
            nursery.start_soon(one_link)
    return counts


class _Wave:
    """Connections opened together: each is answered, then all are held until the last is."""

    def __init__(self, size: int) -> None:
        self.size, self.answered = size, 0
        self.all_answered = trio.Event()

    def answer(self) -> None:
        self.answered += 1
        if self.answered == self.size:
            self.all_answered.set()


async def connect(args: argparse.Namespace) -> Counter[str]:
    counts: Counter[str] = Counter()

    async def attempt(wave: _Wave) -> None:
        try:
            session, own = await _session(args)
        except RelayBusyError as exc:  # refused before the handshake
            counts[_outcome(exc)] += 1
            wave.answer()
            return
        except (DchatNetworkError, OSError) as exc:
            counts[f"connect_{type(exc).__name__}"] += 1
            wave.answer()
            return
        try:
            await session.count_prekeys(own)  # a cheap request about our own mailbox
            counts["served"] += 1
        except DchatNetworkError as exc:
            counts[_outcome(exc)] += 1
        wave.answer()
        await wave.all_answered.wait()  # hold the connection until the whole wave is answered
        await session.aclose()

    left = args.attempts
    while left:
        wave = _Wave(min(args.wave, left))
        left -= wave.size
        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                for _ in range(wave.size):
                    nursery.start_soon(attempt, wave)
    return counts


async def slowloris(args: argparse.Namespace) -> dict[str, object]:
    closed_after: list[float] = []
    idle_after: list[float] = []
    counts: Counter[str] = Counter()

    async def half_open() -> None:
        stream = await trio.open_tcp_stream(args.host, args.port, local_address=args.source)
        start = trio.current_time()
        await stream.send_all(b"\x00\x20")  # the first bytes of a frame, then nothing
        with trio.fail_after(60):
            while True:
                try:
                    data = await stream.receive_some(4096)
                except trio.BrokenResourceError:
                    break
                if not data:
                    break
        closed_after.append(trio.current_time() - start)
        await stream.aclose()

    async def idle() -> None:
        session, _ = await _session(args)
        start = trio.current_time()
        with trio.fail_after(60):
            try:
                await session.link.receive()
                counts["idle_message"] += 1
            except DchatNetworkError as exc:
                counts[f"idle_{type(exc).__name__}"] += 1
        idle_after.append(trio.current_time() - start)
        await session.aclose()

    async with trio.open_nursery() as nursery:
        # The idle links first: they need a handshake, within the source's
        # connection rate; a half-open connection refused by it is closed too.
        for _ in range(args.idle):
            nursery.start_soon(idle)
        await trio.sleep(0.5)
        for _ in range(args.half_open):
            nursery.start_soon(half_open)
    return {
        "half_open_closed": len(closed_after),
        "half_open_max_s": max(closed_after, default=0.0),
        "idle_closed": len(idle_after),
        "idle_max_s": max(idle_after, default=0.0),
        **counts,
    }


async def replay(args: argparse.Namespace) -> Counter[str]:
    counts: Counter[str] = Counter()
    envelope = bytes.fromhex(args.envelope)
    box = bytes(SealedEnvelope.from_bytes(envelope).mailbox)
    session, _ = await _session(args)
    for _ in range(args.times):
        try:
            results = await session.put_many([(box, envelope)])
            counts.update(r if isinstance(r, str) else "stored" for r in results)
        except RelayBusyError as exc:
            counts[_outcome(exc)] += 1
    await session.aclose()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["flood", "connect", "slowloris", "replay"])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("source")
    parser.add_argument("--links", type=int, default=4)
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--size", type=int, default=64 * 1024)
    parser.add_argument("--victim", default="")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--attempts", type=int, default=2000)
    parser.add_argument("--wave", type=int, default=250)
    parser.add_argument("--half-open", type=int, default=100)
    parser.add_argument("--idle", type=int, default=50)
    parser.add_argument("--envelope", default="")
    parser.add_argument("--times", type=int, default=100)
    args = parser.parse_args()
    modes = {"flood": flood, "connect": connect, "slowloris": slowloris, "replay": replay}
    os.nice(19)
    print("ready", flush=True)
    sys.stdin.readline()
    result = trio.run(modes[args.mode], args)
    json.dump(dict(result), sys.stdout)


if __name__ == "__main__":
    main()
