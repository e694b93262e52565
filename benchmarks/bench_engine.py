"""Messages per second through the messaging engine, next to the bare Double Ratchet.

All in one process, on one thread, with ``dchat_messaging.testing.MemoryMessageStore``:

* session message: ``MessagingEngine.send`` of a 1 KiB text to one device with an
  established session, and ``MessagingEngine.receive`` of its envelope on the
  other side (open the sealed box, check the sender device, load the session,
  decrypt, parse, store the message and the session, each side one transaction);
* bare ratchet, same run: ``RatchetSession.encrypt`` + ``decrypt`` of the same
  padded plaintext (the 1 KiB text pads to a 4 KiB bucket), nothing else;
* first message: ``send`` (queued: no session yet), ``bundle_received`` (X-Wing
  session setup to a one-time prekey bundle, encrypt, seal) and ``receive``
  (X-Wing decapsulation, session accept, decrypt, prekey state stored), each to
  a fresh pair of identities (set up untimed).

Timing is process CPU time, so other processes on a shared machine distort
little. Each figure is the best of ``--repeats`` rounds after a warm-up, with the
median beside it; every round runs every row once (interleaved). The results
replace this script's section of ``docs/benchmarks.md``.

Usage::

    uv run python benchmarks/bench_engine.py [--messages N] [--firsts N] [--repeats N] [--no-write]
"""

from __future__ import annotations

import statistics
import sys
import time
from functools import partial
from typing import TYPE_CHECKING

from _common import arg_parser, interleaved_rounds, load_at_end, markers, publish, run_lines
from dchat_crypto import RatchetSession
from dchat_identity import ContactCard, Identity
from dchat_messaging import Content, DeviceAddress, DeviceKeys, MessageReceived, MessagingEngine
from dchat_messaging.testing import MemoryMessageStore

if TYPE_CHECKING:
    import argparse

NAME = "bench_engine"
START, END = markers(NAME)
RELAY = "127.0.0.1:7400"
TEXT = "x" * 1024
T0 = 1_800_000_000.0


class Side:
    """One identity's primary device: keys, store, engine."""

    def __init__(self, name: str) -> None:
        identity = Identity.generate()
        self.card = ContactCard.issue(identity, name=name, relay=RELAY)
        keys = DeviceKeys(
            self.card.identity_id,
            identity.signing_key,
            identity.encryption_key,
            self.card.mailbox,
            self.card,
        )
        self.address = DeviceAddress.primary(self.card)
        self.store = MemoryMessageStore()
        self.engine = MessagingEngine(keys, self.store)
        self.bundles: list[bytes] = []

    def publish(self) -> None:
        upload = self.engine.prekey_upload(held=None, now=T0)
        assert upload is not None
        self.bundles = [blob for _, blob in upload.one_time]

    def take_envelopes(self) -> list[bytes]:
        entries = self.store.due(float("inf"), 10_000)
        for entry in entries:
            self.store.mark_sent(entry.message_id)
        return [entry.envelope for entry in entries]


def _text(now: float) -> Content:
    return Content.text_message(TEXT, now_ms=int(now * 1000))


def first_message(sender: Side, receiver: Side, now: float) -> tuple[float, float, float]:
    """Send, bundle_received, receive of a first message; CPU seconds of each."""
    content = _text(now)
    t0 = time.process_time()
    waiting = sender.engine.send(content, [receiver.address], now=now)
    t1 = time.process_time()
    sender.engine.bundle_received(waiting[0], receiver.bundles.pop(), now=now)
    t2 = time.process_time()
    (envelope,) = sender.take_envelopes()
    t3 = time.process_time()
    events = receiver.engine.receive(envelope, now=now)
    t4 = time.process_time()
    assert isinstance(events[0], MessageReceived), events
    return t1 - t0, t2 - t1, t4 - t3


def established() -> tuple[Side, Side]:
    """Alice and Bob with a session both sides have used (no init rides along)."""
    alice, bob = Side("alice"), Side("bob")
    bob.publish()
    alice.publish()
    first_message(alice, bob, T0)
    bob.engine.send(_text(T0), [alice.address], now=T0)
    for envelope in bob.take_envelopes():
        alice.engine.receive(envelope, now=T0)
    return alice, bob


# -- rows: each returns CPU seconds per message (and parts) --------------------------------


def engine_run(pair: tuple[Side, Side], n: int) -> tuple[float, float, float]:
    """``n`` session messages; (total, send, receive) CPU seconds per message."""
    alice, bob = pair
    alice.store.messages.clear()  # keep the stores' per-transaction copies the same size
    bob.store.messages.clear()
    sending = receiving = 0.0
    now = T0 + 1
    for _ in range(n):
        content = _text(now)
        t0 = time.process_time()
        alice.engine.send(content, [bob.address], now=now)
        (envelope,) = alice.take_envelopes()
        t1 = time.process_time()
        events = bob.engine.receive(envelope, now=now)
        t2 = time.process_time()
        sending += t1 - t0
        receiving += t2 - t1
    assert isinstance(events[0], MessageReceived), events
    assert events[0].text == TEXT
    return (sending + receiving) / n, sending / n, receiving / n


def ratchet_run(pair: tuple[RatchetSession, RatchetSession], plain: bytes, n: int) -> float:
    alice, bob = pair
    start = time.process_time()
    for _ in range(n):
        received = bob.decrypt(alice.encrypt(plain, now=T0), now=T0)
    elapsed = time.process_time() - start
    assert received == plain
    return elapsed / n


def ratchet_pair(pair: tuple[Side, Side]) -> tuple[RatchetSession, RatchetSession]:
    """Copies of the engine pair's own ratchet sessions (same keys, same policy)."""
    alice, bob = pair
    sessions = []
    for side, peer in ((alice, bob), (bob, alice)):
        record = side.engine._session(peer.address.device_id)
        assert record is not None
        sessions.append(RatchetSession.from_bytes(record.current.ratchet.to_bytes()))
    return sessions[0], sessions[1]


def first_run(n: int) -> tuple[float, float, float, float]:
    """``n`` first messages between fresh pairs; (total, send, bundle, receive) per message."""
    parts = [0.0, 0.0, 0.0]
    for _ in range(n):
        alice, bob = Side("alice"), Side("bob")
        bob.publish()
        for i, spent in enumerate(first_message(alice, bob, T0)):
            parts[i] += spent
    return sum(parts) / n, parts[0] / n, parts[1] / n, parts[2] / n


# -- report ------------------------------------------------------------------------------------


def measure(args: argparse.Namespace) -> dict[str, list[tuple[float, ...]]]:
    pair = established()
    plain = _text(T0).to_padded()
    bare = ratchet_pair(pair)
    runs = {
        "engine": partial(engine_run, pair, args.messages),
        "ratchet": lambda: (ratchet_run(bare, plain, args.messages),),
        "first": partial(first_run, args.firsts),
    }
    for run in runs.values():  # warm-up
        run()
    return interleaved_rounds(runs, args.repeats)


def _best(results: list[tuple[float, ...]]) -> tuple[tuple[float, ...], float]:
    """The round with the lowest total, and the median total."""
    return min(results, key=lambda r: r[0]), statistics.median(r[0] for r in results)


def section(
    results: dict[str, list[tuple[float, ...]]], args: argparse.Namespace, argv: list[str]
) -> str:
    (engine, e_send, e_recv), engine_median = _best(results["engine"])
    (ratchet,), ratchet_median = _best(results["ratchet"])
    (first, f_send, f_bundle, f_recv), first_median = _best(results["first"])
    padded = len(_text(T0).to_padded())

    def row(name: str, per: float, median: float) -> str:
        return f"| {name} | {1 / per:,.0f} | {per * 1e6:,.1f} | {median * 1e6:,.1f} |"

    return "\n".join(
        [
            START,
            "## Messaging engine (1 KiB text, one device, in-memory store)",
            "",
            *run_lines(NAME, argv, load_at_end()),
            f"- One process, one thread, process CPU time. Session messages: {args.messages:,} "
            f"per round; first messages: {args.firsts:,} per round, each between a fresh pair "
            f"(set up untimed). Best of {args.repeats} interleaved rounds after a warm-up; "
            "the median round beside it.",
            f"- The 1 KiB text pads to {padded:,} bytes; the bare-ratchet row encrypts and "
            "decrypts that padded plaintext with copies of the engine pair's sessions "
            "(default `RatchetPolicy`, header encryption on).",
            "",
            "| workload | messages/s | µs per message | median round (µs) |",
            "|---|---:|---:|---:|",
            row("engine: `send` + `receive`, established session", engine, engine_median),
            row("bare ratchet: `encrypt` + `decrypt`, same plaintext", ratchet, ratchet_median),
            row("engine: first message (X-Wing setup, one-time prekey)", first, first_median),
            "",
            "| part | µs per message |",
            "|---|---:|",
            f"| session message: `send` (encrypt, seal, outbox) | {e_send * 1e6:,.1f} |",
            f"| session message: `receive` (open, decrypt, store) | {e_recv * 1e6:,.1f} |",
            f"| first message: `send` (queued for a bundle) | {f_send * 1e6:,.1f} |",
            f"| first message: `bundle_received` (X-Wing initiate, encrypt, seal) "
            f"| {f_bundle * 1e6:,.1f} |",
            f"| first message: `receive` (X-Wing accept, decrypt, store) | {f_recv * 1e6:,.1f} |",
            "",
            f"- Engine over bare ratchet, per session message: {engine / ratchet:.1f}x "
            f"({(engine - ratchet) * 1e6:,.0f} µs of sealing, state (de)serialization, content "
            "codec and store transactions); a first message costs "
            f"{first / engine:.0f} session messages.",
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = arg_parser(__doc__)
    parser.add_argument("--messages", type=int, default=2000, help="session messages per round")
    parser.add_argument("--firsts", type=int, default=40, help="first messages per round")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    args = parser.parse_args(argv)
    text = section(measure(args), args, argv)
    publish(NAME, text, args)


if __name__ == "__main__":
    main()
