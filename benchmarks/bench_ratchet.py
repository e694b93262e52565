"""Double Ratchet throughput and state-serialization cost, on one core.

All measurements are in one process on one thread, with 1 KiB plaintexts:

* one-way stream: Alice encrypts, Bob decrypts, message after message; no DH
  ratchet steps (rotation policy off), so this is the symmetric-ratchet path;
* one-way stream with the default policy: the same, but after 100 messages the
  headers carry the ratchet request flag (Bob never answers, nothing breaks);
* ping-pong: the direction flips on every message, so every message makes the
  receiver do a DH ratchet step (two X25519 exchanges and a key generation);
* out of order: batches of 50 messages delivered in reverse, so all but one of
  each batch go through the skipped-key store;
* state serialization: ``to_bytes`` and ``from_bytes`` of a session with an empty
  skipped-key store and with a full one (2,000 keys, the default bound).

A reference row, "bare AEAD", encrypts and decrypts the same 1 KiB with one
cached ChaCha20-Poly1305 key: the floor that any per-message-key design pays
above (there is no other Double Ratchet in the project's dependencies to run
side by side). Each figure is the best of ``--repeats`` rounds after a warm-up; every round
runs every row once (interleaved), so load from other processes hits all rows alike.
The results replace this script's section of ``docs/benchmarks.md``.

Usage::

    uv run python benchmarks/bench_ratchet.py [--messages N] [--repeats N] [--no-write]
"""

from __future__ import annotations

import os
import sys
import time
from functools import partial
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from _common import arg_parser, interleaved_rounds, markers, publish, run_lines
from dchat_crypto import PrivateKey, RatchetPolicy, RatchetSession, SessionSecrets

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

SIZE = 1024
AD = b"alice-identity-id|bob-identity-id"
OFF = RatchetPolicy(rotate_after_messages=None, rotate_after_seconds=None)

NAME = "bench_ratchet"
START, END = markers(NAME)


def make_pair(policy: RatchetPolicy) -> tuple[RatchetSession, RatchetSession]:
    secrets = SessionSecrets(os.urandom(32), os.urandom(32), os.urandom(32))
    bob_key = PrivateKey.generate()
    alice = RatchetSession.initiator(
        secrets, bob_key.public_key, associated_data=AD, policy=policy, now=0.0
    )
    bob = RatchetSession.responder(secrets, bob_key, associated_data=AD, policy=policy, now=0.0)
    return alice, bob


# -- workloads: each returns (seconds, operations) ------------------------------------------


def one_way(n: int, policy: RatchetPolicy = OFF) -> tuple[float, int]:
    alice, bob = make_pair(policy)
    plaintext = os.urandom(SIZE)
    start = time.perf_counter()
    for _ in range(n):
        received = bob.decrypt(alice.encrypt(plaintext, now=0.0), now=0.0)
    elapsed = time.perf_counter() - start
    assert received == plaintext
    return elapsed, n


def one_way_default_policy(n: int) -> tuple[float, int]:
    return one_way(n, RatchetPolicy())


def ping_pong(n: int) -> tuple[float, int]:
    alice, bob = make_pair(OFF)
    plaintext = os.urandom(SIZE)
    sender, receiver = alice, bob
    start = time.perf_counter()
    for _ in range(n):
        received = receiver.decrypt(sender.encrypt(plaintext, now=0.0), now=0.0)
        sender, receiver = receiver, sender
    elapsed = time.perf_counter() - start
    assert received == plaintext
    return elapsed, n


def out_of_order(n: int, batch: int = 50) -> tuple[float, int]:
    alice, bob = make_pair(OFF)
    plaintext = os.urandom(SIZE)
    rounds = max(n // batch, 1)
    start = time.perf_counter()
    for _ in range(rounds):
        messages = [alice.encrypt(plaintext, now=0.0) for _ in range(batch)]
        for message in reversed(messages):
            assert bob.decrypt(message, now=0.0) == plaintext
    elapsed = time.perf_counter() - start
    assert bob.skipped_key_count == 0
    return elapsed, rounds * batch


def bare_aead(n: int) -> tuple[float, int]:
    cipher, nonce, plaintext = ChaCha20Poly1305(os.urandom(32)), os.urandom(12), os.urandom(SIZE)
    start = time.perf_counter()
    for _ in range(n):
        received = cipher.decrypt(nonce, cipher.encrypt(nonce, plaintext, AD), AD)
    elapsed = time.perf_counter() - start
    assert received == plaintext
    return elapsed, n


def session_with_skipped(count: int) -> RatchetSession:
    alice, bob = make_pair(RatchetPolicy(max_skip=count, max_stored_skipped=max(count, 1)))
    messages = [alice.encrypt(b"", now=0.0) for _ in range(count + 1)]
    bob.decrypt(messages[-1], now=0.0)
    assert bob.skipped_key_count == count
    return bob


def serialize(session: RatchetSession, n: int) -> tuple[float, int]:
    start = time.perf_counter()
    for _ in range(n):
        session.to_bytes()
    return time.perf_counter() - start, n


def deserialize(session: RatchetSession, n: int) -> tuple[float, int]:
    data = session.to_bytes()
    start = time.perf_counter()
    for _ in range(n):
        RatchetSession.from_bytes(data)
    return time.perf_counter() - start, n


def best_interleaved(
    jobs: list[tuple[Callable[[int], tuple[float, int]], int]], repeats: int
) -> list[float]:
    """Seconds per operation of each job: the best of ``repeats`` rounds.

    Every round runs every job once, so a burst of load from other processes on
    a shared machine hits all rows alike instead of one.
    """
    for work, n in jobs:
        work(max(n // 10, 10))  # warm-up

    def per_op(work: Callable[[int], tuple[float, int]], n: int) -> float:
        seconds, ops = work(n)
        return seconds / ops

    runs = {i: partial(per_op, work, n) for i, (work, n) in enumerate(jobs)}
    rounds = interleaved_rounds(runs, repeats)
    return [min(rounds[i]) for i in range(len(jobs))]


# -- report ------------------------------------------------------------------------------------


def measure(
    args: argparse.Namespace,
) -> tuple[list[tuple[str, float]], list[tuple[str, int, float, float]]]:
    n = args.messages
    workloads = [
        ("one-way stream, rotation off", one_way, n),
        ("one-way stream, default policy", one_way_default_policy, n),
        ("ping-pong (DH step every message)", ping_pong, max(n // 4, 100)),
        ("out of order (batches of 50 reversed)", out_of_order, n),
        ("bare AEAD (reference floor)", bare_aead, n),
    ]
    sessions = [(count, session_with_skipped(count)) for count in (0, 2000)]
    jobs = [(work, count) for _, work, count in workloads]
    for count, session in sessions:
        iterations = max(n // (100 if count else 10), 20)
        jobs.append((lambda k, s=session: serialize(s, k), iterations))
        jobs.append((lambda k, s=session: deserialize(s, k), iterations))
    results = best_interleaved(jobs, args.repeats)
    rows = [(name, per_op) for (name, _, _), per_op in zip(workloads, results, strict=False)]
    for name, per_op in rows:
        print(f"{name:>40}: {1 / per_op:9.0f} pairs/s  {per_op * 1e6:7.1f} us", file=sys.stderr)
    storage = []
    timings = results[len(workloads) :]
    for i, (count, session) in enumerate(sessions):
        size = len(session.to_bytes())
        encode, decode = timings[2 * i], timings[2 * i + 1]
        storage.append((f"{count:,} skipped keys", size, encode, decode))
        print(
            f"{count:>5} skipped: {size:7,} bytes  to_bytes {encode * 1e6:8.1f} us  "
            f"from_bytes {decode * 1e6:8.1f} us",
            file=sys.stderr,
        )
    return rows, storage


def section(
    rows: list[tuple[str, float]],
    storage: list[tuple[str, int, float, float]],
    args: argparse.Namespace,
    argv: list[str],
) -> str:
    return "\n".join(
        [
            START,
            "## Double Ratchet (1 KiB messages, one core)",
            "",
            *run_lines(NAME, argv),
            f"- Load average when the run started (shared machine): {args.load:.2f}",
            f"- One process, one thread; a pair is one `encrypt` plus the peer's `decrypt`. "
            f"{args.messages:,} pairs per run (ping-pong: a quarter of that); best of "
            f"{args.repeats} rounds after a warm-up, every row run once per round "
            "(interleaved). Header encryption is always on.",
            "- No other Double Ratchet is among the project's dependencies, so there is no "
            "side-by-side baseline; the bare-AEAD row is the floor (one cached "
            "ChaCha20-Poly1305 key, no ratchet).",
            "",
            "| workload | pairs/s | µs per pair |",
            "|---|---:|---:|",
            *[f"| {name} | {1 / per_op:,.0f} | {per_op * 1e6:.1f} |" for name, per_op in rows],
            "",
            "| state | encoded size (bytes) | `to_bytes` (µs) | `from_bytes` (µs) |",
            "|---|---:|---:|---:|",
            *[
                f"| {name} | {size:,} | {enc * 1e6:.1f} | {dec * 1e6:.1f} |"
                for name, size, enc, dec in storage
            ],
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = arg_parser(__doc__)
    parser.add_argument("--messages", type=int, default=20_000, help="pairs per run")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    args = parser.parse_args(argv)
    args.load = os.getloadavg()[0]
    rows, storage = measure(args)
    text = section(rows, storage, args, argv)
    publish(NAME, text, args)


if __name__ == "__main__":
    main()
