"""Relay under load: one relay process, 10,000 mailboxes and 1,000 connected users.

A relay is started as an operator starts it (``dchat-node run --role relay``)
and driven from this process over real links (Noise over loopback TCP), the
way user nodes drive it:

- **connected users**: ``--users`` links (default 1,000), each proving its own
  mailbox key and holding a ``pull`` open at the relay, so the relay pushes
  mail to them as it arrives (what a user node's mailbox link does); each batch
  is acknowledged in the next pull;
- **mailboxes**: ``--mailboxes`` in all (default 10,000); those without a
  connected user are offline and each holds ``--stored`` envelopes (default 2)
  put before timing;
- **senders**: ``--senders`` links (default 16), each with its own random key
  (as a user node's deposit pool does), putting 1 KiB envelopes one per request.

Timed phases, each ``--messages`` envelopes (default 4,000):

- **puts**: into the offline mailboxes, round robin (stored, nobody to push
  to): the relay's cost of accepting and storing;
- **puts + pushes**: into the connected users' mailboxes, round robin: the
  clock runs from the first put until the users hold every envelope.

For each phase: the rate seen from here (bounded by this load generator, which
shares the machine's cores) and the relay's own CPU seconds over the phase
(user + system, from ``/proc``), from which *per relay core* = envelopes / relay
CPU seconds: what one core of relay would sustain. The relay's resident memory
(``VmRSS``) is sampled every 100 ms; the peak over the run is reported.

Baseline in the same run: a second relay process with 10 mailboxes and 10
connected users, driven the same way; the phases alternate between the two
relays for ``--rounds`` rounds (medians reported), so load from other processes
hits both alike.

All simulated users share the loopback address, so the relays run with the
per-source put buckets off and a per-source connection cap of 4,096 (those
limits model one abusive host; the per-link buckets stay on at their
defaults), and proof of work for tokenless puts is off (every put here is a
stranger's; the work would be the load generator's cost, not the relay's).
Written to a ``dchat.toml`` in each relay's data directory.

Usage::

    uv run python benchmarks/bench_relay_load.py [--users N] [--mailboxes N] [--no-write]
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import trio

import _common

if TYPE_CHECKING:
    import argparse

    from dchat_crypto import SigningKey
    from dchat_network import RelaySession
    from dchat_node import NodeProcess

NAME = "bench_relay_load"
ENVELOPE_TEXT = 1024
FILL_BATCH = 64
PULL_WAIT = 20.0
PHASE_LIMIT = 300.0  # upper bound on any phase (seconds)
RELAY_TOML = """\
[node.relay_limits]
source_puts = 0
source_bytes = 0
max_connections_per_source = 4096
pow_max_bits = 0
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def envelope(mailbox: bytes) -> bytes:
    """A sealed envelope for ``mailbox`` with a random 1 KiB ciphertext."""
    from dchat_core import MailboxId
    from dchat_messaging import SealedEnvelope

    return SealedEnvelope(MailboxId(mailbox), secrets.token_bytes(ENVELOPE_TEXT)).to_bytes()


@dataclass
class Relay:
    """One relay process and the load on it."""

    name: str
    process: NodeProcess
    host: str
    port: int
    users: int
    mailboxes: int
    online: list[bytes] = field(default_factory=list)
    offline: list[bytes] = field(default_factory=list)
    received: int = 0
    arrived: trio.Event = field(default_factory=trio.Event)
    wanted: int = 0
    peak_rss: float = 0.0
    idle_rss: float = 0.0
    results: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def got(self, count: int) -> None:
        self.received += count
        if self.received >= self.wanted:
            self.arrived.set()


def start_relay(root: Path, name: str, users: int, mailboxes: int) -> Relay:
    from dchat_node import NodeProcess, free_port

    data = root / name
    data.mkdir(mode=0o700)
    (data / "dchat.toml").write_text(RELAY_TOML)
    port = free_port()
    process = NodeProcess(
        data, "relay", passphrase=secrets.token_urlsafe(16), listen=f"127.0.0.1:{port}"
    )
    process.start()
    return Relay(name, process, "127.0.0.1", port, users, mailboxes)


async def open_session(relay: Relay, key: SigningKey | None = None) -> RelaySession:
    """A link to ``relay`` proving ``key`` (a fresh random key if none)."""
    from dchat_crypto import SigningKey
    from dchat_network import RelaySession, connect

    link = await connect(relay.host, relay.port, node_key=key or SigningKey.generate(), timeout=30)
    return RelaySession(link)


async def user(relay: Relay, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """One connected user: prove a mailbox key, then hold pulls open and acknowledge batches."""
    from dchat_core import MailboxId
    from dchat_crypto import SigningKey

    key = SigningKey.generate()
    mailbox = bytes(MailboxId.derive(key.public_key.to_bytes()))
    session = await open_session(relay, key)
    relay.online.append(mailbox)
    task_status.started()
    ack: list[bytes] = []
    while True:
        items = await session.pull(mailbox, ack, wait=PULL_WAIT)
        ack = [entry_id for entry_id, _ in items]
        if items:
            relay.got(len(items))


async def fill(relay: Relay, per_box: int) -> None:
    """Create the offline mailboxes, each holding ``per_box`` envelopes."""
    from dchat_network import RelayBusyError

    count = relay.mailboxes - relay.users
    relay.offline = [secrets.token_bytes(32) for _ in range(count)]
    items = [(box, envelope(box)) for box in relay.offline for _ in range(per_box)]
    session = await open_session(relay)
    for start in range(0, len(items), FILL_BATCH):
        while True:
            try:
                results = await session.put_many(items[start : start + FILL_BATCH])
                break
            except RelayBusyError as busy:  # the link's put bucket: wait as told
                await trio.sleep(busy.retry_after)
        refused = [r for r in results if isinstance(r, str)]
        if refused:
            raise RuntimeError(f"fill refused: {refused[:3]}")
    await session.aclose()


async def put_all(relay: Relay, targets: list[bytes], senders: int, messages: int) -> float:
    """Put ``messages`` envelopes round robin into ``targets`` over ``senders`` links."""
    envelopes = [(targets[i % len(targets)], None) for i in range(messages)]
    prepared = [(box, envelope(box)) for box, _ in envelopes]
    sessions = [await open_session(relay) for _ in range(senders)]

    async def send(k: int) -> None:
        for mailbox, data in prepared[k::senders]:
            await sessions[k].put(mailbox, data)

    began = time.monotonic()
    async with trio.open_nursery() as nursery:
        for k in range(senders):
            nursery.start_soon(send, k)
    took = time.monotonic() - began
    for session in sessions:
        await session.aclose()
    return took


async def watch_rss(relays: list[Relay]) -> None:
    while True:
        for relay in relays:
            relay.peak_rss = max(relay.peak_rss, rss_mib(relay.pid))
        await trio.sleep(0.1)


async def phase(relay: Relay, kind: str, senders: int, messages: int) -> None:
    """One timed phase; appends ``(rate, per relay core)`` to ``relay.results[kind]``."""
    cpu0 = cpu_seconds(relay.pid)
    if kind == "puts":
        took = await put_all(relay, relay.offline, senders, messages)
    else:
        relay.wanted, relay.arrived = relay.received + messages, trio.Event()
        began = time.monotonic()
        with trio.fail_after(PHASE_LIMIT):
            await put_all(relay, relay.online, senders, messages)
            await relay.arrived.wait()
        took = time.monotonic() - began
    used = cpu_seconds(relay.pid) - cpu0
    relay.results.setdefault(kind, []).append((messages / took, messages / used))


async def drive(relays: list[Relay], args: argparse.Namespace) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_rss, relays)
        for relay in relays:
            with trio.fail_after(PHASE_LIMIT):
                await fill(relay, args.stored)
                for _ in range(relay.users):
                    await nursery.start(user, relay)
            relay.idle_rss = rss_mib(relay.pid)
            print(
                f"{relay.name}: {relay.mailboxes:,} mailboxes, {relay.users:,} users connected, "
                f"RSS {relay.idle_rss:.0f} MiB",
                file=sys.stderr,
            )
        for relay in relays:  # warm-up, not counted
            await phase(relay, "puts", args.senders, args.messages // 10)
            await phase(relay, "push", args.senders, args.messages // 10)
            relay.results.clear()
        for _ in range(args.rounds):
            for kind in ("puts", "push"):
                for relay in relays:
                    with trio.fail_after(PHASE_LIMIT):
                        await phase(relay, kind, args.senders, args.messages)
        nursery.cancel_scope.cancel()


def section(relays: list[Relay], args: argparse.Namespace, argv: list[str], load: str) -> str:
    def med(relay: Relay, kind: str, which: int) -> float:
        return statistics.median(r[which] for r in relay.results[kind])

    quiet, loaded = relays
    rows = [
        ("puts/s seen (offline mailboxes)", "puts", 0),
        ("puts per relay core-second", "puts", 1),
        ("puts + pushes/s seen (connected users)", "push", 0),
        ("puts + pushes per relay core-second", "push", 1),
    ]
    lines = [
        _common.markers(NAME)[0],
        "## Relay under load: 10,000 mailboxes and 1,000 connected users",
        "",
        *_common.run_lines(NAME, argv, f"load average at start {load}", _common.load_at_end()),
        f"- Load: {args.senders} sender links putting 1 KiB envelopes one per request; "
        f"{args.messages:,} envelopes per phase, {args.rounds} rounds alternating between the "
        f"relays (medians); offline mailboxes hold {args.stored} envelopes each; the load "
        "generator is one Python process sharing the cores.",
        "",
        f"| | {quiet.name} ({quiet.mailboxes:,} mailboxes, {quiet.users:,} users) "
        f"| {loaded.name} ({loaded.mailboxes:,} mailboxes, {loaded.users:,} users) |",
        "|---|---:|---:|",
    ]
    for label, kind, which in rows:
        lines.append(
            f"| {label} | {med(quiet, kind, which):,.0f} | {med(loaded, kind, which):,.0f} |"
        )
    lines += [
        f"| relay RSS, users connected, idle (MiB) | {quiet.idle_rss:.0f} "
        f"| {loaded.idle_rss:.0f} |",
        f"| relay RSS, peak over the run (MiB) | {quiet.peak_rss:.0f} | {loaded.peak_rss:.0f} |",
        "",
        "*Per relay core-second* is envelopes divided by the relay process's CPU seconds in the "
        "phase; *seen* rates are bounded by the load generator. Target for the loaded relay's "
        "RSS: at most 200 MiB.",
        _common.markers(NAME)[1],
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = _common.arg_parser(__doc__)
    parser.add_argument("--users", type=int, default=1_000, help="connected users")
    parser.add_argument("--mailboxes", type=int, default=10_000, help="mailboxes in all")
    parser.add_argument("--stored", type=int, default=2, help="envelopes per offline mailbox")
    parser.add_argument("--senders", type=int, default=16, help="sender links")
    parser.add_argument("--messages", type=int, default=4_000, help="envelopes per phase")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per relay")
    args = parser.parse_args(argv)
    if args.users < 1 or args.mailboxes <= args.users:
        parser.error("need at least one user and more mailboxes than users")
    load = f"{os.getloadavg()[0]:.2f}"
    with tempfile.TemporaryDirectory() as tmp:
        relays = [
            start_relay(Path(tmp), "quiet", 10, 20),
            start_relay(Path(tmp), "loaded", args.users, args.mailboxes),
        ]
        try:
            trio.run(drive, relays, args)
        finally:
            for relay in relays:
                relay.process.stop()
    _common.publish(NAME, section(relays, args, argv, load), args)


if __name__ == "__main__":
    main()
