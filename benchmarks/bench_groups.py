"""Cost of one message to a private group of 10, 100 and 1,000 members, next to pairwise fan-out.

All in one process with user agents (``dchat_testing.AgentNode``: a
``UserMessaging`` over a memory store each), no network; the relay's work is
counted as the envelopes it would have to store and their bytes. The sender is
``alice``, admin of three groups (of 10, 100 and 1,000 members, invited in
bulk); one member (``m1``) receives, the others' envelopes are counted and
dropped. Rows, per group size, each one 200-character text:

* sender keys: ``Groups.send_text`` (encrypt once under alice's sender chain,
  then the same ciphertext sealed to every member device in its pairwise
  session), and the outbox taken;
* pairwise fan-out, same run: the text sent as a 1:1 message to each member
  (``send_as``), what a client without group encryption would do;

and, at 1,000 members, a membership change: alice removes one member (the
``remove`` to everyone; her new chain waits for her next message), then adds
it back (the signed ``add`` to everyone, the invitation); what the removal
costs one ordinary member that has shared its own chain (it applies the
update and rotates), from which the whole group's cost is extrapolated (every
member applies it, so the group pays about n times that); and the next
message of m1 and of alice after the change, which carries the new chain.

Timing is process CPU time (other processes on a shared machine distort it
little, though caches and memory bandwidth are shared). Each figure is the
median of ``--repeats`` rounds after a warm-up, rows interleaved per round.

Usage::

    uv run python benchmarks/bench_groups.py [--sizes 10,100,1000] [--repeats N] [--no-write]
"""

from __future__ import annotations

import statistics
import sys
import time
from typing import TYPE_CHECKING

from _common import arg_parser, interleaved_rounds, load_at_end, markers, publish, run_lines
from dchat_messaging import Content
from dchat_testing import AGENT_T0, AgentNode

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

NAME = "bench_groups"
START, END = markers(NAME)
TEXT = "x" * 200
NOW = AGENT_T0


class Run:
    """alice, the member pool, and one group per size (set up untimed)."""

    def __init__(self, sizes: list[int]) -> None:
        bundles: dict[bytes, bytes] = {}
        self.alice = AgentNode("alice", bundles)
        self.pool = [AgentNode(f"m{i}", bundles) for i in range(1, max(sizes) + 1)]
        self.m1 = self.pool[0]
        for node in self.pool:
            self.alice.agent.contacts.add(node.card.name, node.card.to_text(), now=NOW)
        self.m1.agent.contacts.add("alice", self.alice.card.to_text(), now=NOW)
        self.groups: dict[int, str] = {}
        for size in sizes:
            gid, _ = self.alice.agent.groups.create(f"g{size}", now=NOW)
            names = [n.card.name for n in self.pool[: size - 1]]
            self.alice.agent.groups.invite_many(gid, names, now=NOW)
            self.groups[size] = gid
            self.to_m1(self.alice.outgoing())
        self.extra = self.pool[max(sizes) - 2]  # the biggest group's last member

    def to_m1(self, mail: list[tuple[bytes, bytes]]) -> int:
        """Deliver what is ``m1``'s; the number of envelopes for it."""
        mine = [env for box, env in mail if box == bytes(self.m1.card.mailbox)]
        if mine:
            self.m1.agent.accept_many(self.m1.engine, mine, now=NOW + 1)
        return len(mine)

    def trim(self) -> None:
        """Keep the memory stores' per-transaction copies the same size round after round."""
        for node in (self.alice, self.m1):
            node.store.messages.clear()  # type: ignore[attr-defined]
            node.store.events.clear()  # type: ignore[attr-defined]


def _taken(node: AgentNode, act: Callable[[], object]) -> tuple[float, int, int, list]:
    """CPU of ``act`` and of taking the outbox; envelopes, bytes, the mail."""
    start = time.process_time()
    act()
    mail = node.outgoing()
    spent = time.process_time() - start
    return spent, len(mail), sum(len(env) for _, env in mail), mail


def _received(run: Run, mail: list[tuple[bytes, bytes]]) -> float:
    start = time.process_time()
    assert run.to_m1(mail) >= 1
    return time.process_time() - start


def group_row(run: Run, size: int) -> tuple[float, ...]:
    run.trim()
    send = lambda: run.alice.agent.groups.send_text(run.groups[size], TEXT, now=NOW)  # noqa: E731
    spent, count, size_b, mail = _taken(run.alice, send)
    return spent, count, size_b, _received(run, mail)


def pairwise_row(run: Run, size: int) -> tuple[float, ...]:
    run.trim()
    agent = run.alice.agent
    cards = [agent.contacts.find(n.card.name) for n in run.pool[: size - 1]]

    def send() -> None:
        for card in cards:
            agent.send_as(card, Content.text_message(TEXT, now_ms=int(NOW * 1000)), now=NOW)

    spent, count, size_b, mail = _taken(run.alice, send)
    return spent, count, size_b, _received(run, mail)


def change_row(run: Run, size: int) -> tuple[float, ...]:
    """Remove ``extra`` and add it back (alice); m1's cost of applying the removal, and of
    its next message (which hands out its new chain); alice's next message likewise."""
    run.trim()
    gid, groups = run.groups[size], run.alice.agent.groups
    remove = _taken(run.alice, lambda: groups.remove(gid, run.extra.card.name, now=NOW))
    start = time.process_time()
    run.to_m1(remove[3])
    m1_mail = run.m1.outgoing()
    m1_spent = time.process_time() - start
    m1_bytes = sum(len(env) for _, env in m1_mail)
    m1_groups = run.m1.agent.groups
    m1_next = _taken(run.m1, lambda: m1_groups.send_text(gid, TEXT, now=NOW))
    add = _taken(run.alice, lambda: groups.invite(gid, run.extra.card.name, now=NOW))
    run.to_m1(add[3])
    run.m1.outgoing()  # m1 shares its chain with the newcomer (dropped)
    alice_next = _taken(run.alice, lambda: groups.send_text(gid, TEXT, now=NOW))
    run.to_m1(alice_next[3])
    return (*add[:3], *remove[:3], m1_spent, len(m1_mail), m1_bytes, *m1_next[:3], *alice_next[:3])


def measure(args: argparse.Namespace) -> tuple[dict[str, list[tuple[float, ...]]], Run]:
    start = time.perf_counter()
    run = Run(args.sizes)
    big = max(args.sizes)
    run.m1.agent.groups.join(run.groups[big], now=NOW)  # m1 shares a chain: it rotates on removals
    run.m1.outgoing()
    print(f"set up in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    runs: dict[str, Callable[[], tuple[float, ...]]] = {}
    for size in args.sizes:
        runs[f"group {size}"] = lambda s=size: group_row(run, s)
        runs[f"pairwise {size}"] = lambda s=size: pairwise_row(run, s)
    runs["change"] = lambda: change_row(run, big)
    for row in runs.values():  # warm-up
        row()
    return interleaved_rounds(runs, args.repeats), run


def _median(results: list[tuple[float, ...]], i: int) -> float:
    return statistics.median(r[i] for r in results)


def section(
    results: dict[str, list[tuple[float, ...]]], args: argparse.Namespace, argv: list[str]
) -> str:
    lines = [
        START,
        "## Private groups: one message to 10, 100 and 1,000 members (`bench_groups.py`)",
        "",
        *run_lines(NAME, argv, load_at_end()),
        "- The machine is shared with three other agents' builds and tests: CPU times are",
        "  process times (little distorted by the others), wall time is not reported.",
        "",
        "One 200-character text from alice. *Sender CPU*: sealing and queueing every",
        "envelope. *Envelopes* and *bytes*: what alice uploads and the relays must store",
        "(one sealed envelope per member device either way). *Receiver CPU*: one member",
        f"opening its envelope. Median of {args.repeats} rounds, rows interleaved.",
        "",
        "| members | scheme | sender CPU (ms) | envelopes | bytes sent = stored at relays "
        "| receiver CPU (ms) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for size in args.sizes:
        for scheme, key in (("sender keys", "group"), ("pairwise fan-out", "pairwise")):
            r = results[f"{key} {size}"]
            lines.append(
                f"| {size:,} | {scheme} | {_median(r, 0) * 1e3:,.1f} | {_median(r, 1):,.0f} "
                f"| {_median(r, 2):,.0f} | {_median(r, 3) * 1e3:,.2f} |"
            )
    big, c = max(args.sizes), results["change"]
    whole = _median(c, 3) + (big - 2) * _median(c, 6)  # alice + the 998 others
    lines += [
        "",
        f"Membership change at {big:,} members (alice is the admin; m1 an ordinary member "
        "that has shared its chain):",
        "",
        "| change | CPU (ms) | envelopes | bytes |",
        "|---|---:|---:|---:|",
        f"| add one, {big - 1:,} → {big:,} (alice: `add` to all, invitation) "
        f"| {_median(c, 0) * 1e3:,.1f} | {_median(c, 1):,.0f} | {_median(c, 2):,.0f} |",
        f"| remove one, {big:,} → {big - 1:,} (alice: `remove` to all; she rotates) "
        f"| {_median(c, 3) * 1e3:,.1f} | {_median(c, 4):,.0f} | {_median(c, 5):,.0f} |",
        f"| the removal at one member (apply, rotate; the new chain waits for its next message) "
        f"| {_median(c, 6) * 1e3:,.1f} | {_median(c, 7):,.0f} | {_median(c, 8):,.0f} |",
        f"| the removal, whole group (alice + {big - 2:,} members like m1, extrapolated) "
        f"| {whole:,.1f} s | {_median(c, 4) + (big - 2) * _median(c, 7):,.0f} "
        f"| {_median(c, 5) + (big - 2) * _median(c, 8):,.0f} |",
        f"| m1's next message after the removal (`group.kmsg`: the text with its new chain) "
        f"| {_median(c, 9) * 1e3:,.1f} | {_median(c, 10):,.0f} | {_median(c, 11):,.0f} |",
        f"| alice's next message after the change (likewise) "
        f"| {_median(c, 12) * 1e3:,.1f} | {_median(c, 13):,.0f} | {_median(c, 14):,.0f} |",
        "",
        "A removal rotates every member's sender chain at once, but a member hands its",
        "new chain out with its next message, in the same envelope per member (so a",
        "message after a change costs about what any message costs, and members who",
        "do not post pay nothing): before this, every member sealed its new chain to",
        "every other at once, about 275 ms each, 275 s CPU and a million envelopes for",
        "the group (this benchmark, 2026-12-07, before the change).",
        END,
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--sizes", default="10,100,1000", help="group sizes, comma separated")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    results, _ = measure(args)
    publish(NAME, section(results, args, argv), args)


if __name__ == "__main__":
    main(sys.argv[1:])
