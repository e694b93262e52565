"""Noise handshakes and transport: dchat_crypto vs the `noiseprotocol` package.

Everything runs in one process, in the same run, with no I/O:

* handshakes: complete ``Noise_XX_25519_ChaChaPoly_BLAKE2s`` and
  ``Noise_IK_25519_ChaChaPoly_BLAKE2s`` handshakes, both sides in-process, empty
  payloads, a fresh ephemeral key per side per handshake (each library
  generates its own), static keys generated once before measuring, ending with
  both sides split into transport ciphers and agreeing on the handshake hash;
* transport: one 1 KiB ``encrypt`` on one side plus the matching ``decrypt`` on
  the other, on an XX session.

The static keys are handed to each library as the objects it keeps: a
:class:`dchat_crypto.PrivateKey` to ours, a pre-built ``KeyPair25519`` installed
in the connection to ``noiseprotocol``. Its public API (``set_keypair_from_private_bytes``)
re-imports the key from bytes on every connection, one extra X25519 scalar
multiplication per side; that variant is reported as a separate row so the
headline ratio is against the faster baseline.

Implementations are measured interleaved (ours, baseline, ours, ...) for
``--repeats`` rounds after a warm-up, and each reports its best round. Rounds
are timed in process CPU time (``time.process_time``): the work is single
threaded and does no I/O, so CPU time is its cost, and time spent waiting for a
core that other processes hold (a shared machine) is left out. Other load can
still slow a round (caches, frequency), never speed it up, hence the best round.
Before measuring, a dchat initiator completes each handshake with a
``noiseprotocol`` responder and exchanges a transport message, which proves both
implement the same protocol.

Usage::

    uv run python benchmarks/bench_noise.py [--handshakes N] [--messages N] [--repeats N]
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from noise.backends.default.keypairs import KeyPair25519
from noise.connection import Keypair, NoiseConnection

from _common import arg_parser, interleaved_rounds, load_averages, markers, publish, run_lines
from dchat_crypto import HandshakeState, PrivateKey

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

    from dchat_crypto.hazmat import NoiseTransport

XX = "Noise_XX_25519_ChaChaPoly_BLAKE2s"
IK = "Noise_IK_25519_ChaChaPoly_BLAKE2s"
SIZE = 1024

NAME = "bench_noise"
START, END = markers(NAME)

INITIATOR_STATIC = PrivateKey.generate()
RESPONDER_STATIC = PrivateKey.generate()
# noiseprotocol's own key objects for the same two static keys, built once.
THEIR_INITIATOR_STATIC = KeyPair25519.from_private_bytes(INITIATOR_STATIC.to_bytes())
THEIR_RESPONDER_STATIC = KeyPair25519.from_private_bytes(RESPONDER_STATIC.to_bytes())
THEIR_RESPONDER_PUBLIC = KeyPair25519.from_public_bytes(RESPONDER_STATIC.public_key.to_bytes())


# -- one complete handshake, per implementation ----------------------------------------------


def ours(protocol: str) -> tuple[NoiseTransport, NoiseTransport]:
    initiator = HandshakeState(
        protocol,
        initiator=True,
        static=INITIATOR_STATIC,
        remote_static=RESPONDER_STATIC.public_key if protocol == IK else None,
    )
    responder = HandshakeState(protocol, initiator=False, static=RESPONDER_STATIC)
    writer, reader = initiator, responder
    while not (initiator.is_complete and responder.is_complete):
        reader.read_message(writer.write_message(b""))
        writer, reader = reader, writer
    assert initiator.handshake_hash == responder.handshake_hash
    return initiator.split(), responder.split()


def _their_connection(protocol: str, *, initiator: bool, public_api: bool) -> NoiseConnection:
    conn = NoiseConnection.from_name(protocol.encode())
    static = INITIATOR_STATIC if initiator else RESPONDER_STATIC
    if public_api:
        conn.set_keypair_from_private_bytes(Keypair.STATIC, static.to_bytes())
        if initiator and protocol == IK:
            conn.set_keypair_from_public_bytes(
                Keypair.REMOTE_STATIC, RESPONDER_STATIC.public_key.to_bytes()
            )
    else:
        # What set_keypair_from_* store, built once instead of per connection.
        keys = conn.noise_protocol.keypairs
        keys["s"] = THEIR_INITIATOR_STATIC if initiator else THEIR_RESPONDER_STATIC
        if initiator and protocol == IK:
            keys["rs"] = THEIR_RESPONDER_PUBLIC
    if initiator:
        conn.set_as_initiator()
    else:
        conn.set_as_responder()
    conn.start_handshake()
    return conn


def theirs(protocol: str, *, public_api: bool = False) -> tuple[NoiseConnection, NoiseConnection]:
    initiator = _their_connection(protocol, initiator=True, public_api=public_api)
    responder = _their_connection(protocol, initiator=False, public_api=public_api)
    writer, reader = initiator, responder
    while not (initiator.handshake_finished and responder.handshake_finished):
        reader.read_message(writer.write_message(b""))
        writer, reader = reader, writer
    assert initiator.get_handshake_hash() == responder.get_handshake_hash()
    return initiator, responder


def check_interop() -> None:
    """A dchat initiator completes each handshake with a noiseprotocol responder."""
    for protocol in (XX, IK):
        initiator = HandshakeState(
            protocol,
            initiator=True,
            static=INITIATOR_STATIC,
            remote_static=RESPONDER_STATIC.public_key if protocol == IK else None,
        )
        responder = _their_connection(protocol, initiator=False, public_api=True)
        responder.read_message(initiator.write_message(b""))
        initiator.read_message(responder.write_message(b""))
        if protocol == XX:
            responder.read_message(initiator.write_message(b""))
        assert responder.handshake_finished
        assert initiator.handshake_hash == responder.get_handshake_hash()
        transport = initiator.split()
        assert responder.decrypt(transport.encrypt(b"interop")) == b"interop"
        assert transport.decrypt(responder.encrypt(b"back")) == b"back"


# -- measurements ----------------------------------------------------------------------------


def time_handshakes(run: Callable[[], object], n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        run()
    return time.process_time() - start


def time_transport_ours(n: int) -> float:
    send, recv = ours(XX)
    message = bytes(SIZE)
    start = time.process_time()
    for _ in range(n):
        plaintext = recv.decrypt(send.encrypt(message))
    elapsed = time.process_time() - start
    assert plaintext == message
    return elapsed


def time_transport_theirs(n: int) -> float:
    send, recv = theirs(XX)
    message = bytes(SIZE)
    start = time.process_time()
    for _ in range(n):
        plaintext = recv.decrypt(send.encrypt(message))
    elapsed = time.process_time() - start
    assert plaintext == message
    return elapsed


@dataclass
class Row:
    label: str
    count: int
    seconds: list[float]

    @property
    def best(self) -> float:
        """Operations per second in the fastest round."""
        return self.count / min(self.seconds)

    @property
    def median(self) -> float:
        ordered = sorted(self.seconds)
        return self.count / ordered[len(ordered) // 2]


def measure(args: argparse.Namespace) -> dict[str, list[Row]]:
    def handshakes(run: Callable[[], object]) -> Callable[[int], float]:
        return lambda n: time_handshakes(run, n)

    cases: dict[str, tuple[int, list[tuple[str, Callable[[int], float]]]]] = {
        "XX handshakes": (
            args.handshakes,
            [
                ("dchat", handshakes(lambda: ours(XX))),
                ("noiseprotocol", handshakes(lambda: theirs(XX))),
                ("noiseprotocol, public API", handshakes(lambda: theirs(XX, public_api=True))),
            ],
        ),
        "IK handshakes": (
            args.handshakes,
            [
                ("dchat", handshakes(lambda: ours(IK))),
                ("noiseprotocol", handshakes(lambda: theirs(IK))),
                ("noiseprotocol, public API", handshakes(lambda: theirs(IK, public_api=True))),
            ],
        ),
        "1 KiB encrypt + decrypt": (
            args.messages,
            [("dchat", time_transport_ours), ("noiseprotocol", time_transport_theirs)],
        ),
    }
    results: dict[str, list[Row]] = {}
    for title, (count, runs) in cases.items():
        for _, run in runs:
            run(max(count // 10, 10))  # warm-up
        rounds = interleaved_rounds(
            {label: partial(run, count) for label, run in runs}, args.repeats
        )
        rows = [Row(label, count, rounds[label]) for label, _ in runs]
        for row in rows:
            print(
                f"{title:>24} {row.label:>26}: best {row.best:10,.0f}/s  "
                f"median {row.median:10,.0f}/s",
                file=sys.stderr,
            )
        results[title] = rows
    return results


# -- report ----------------------------------------------------------------------------------


def section(
    results: dict[str, list[Row]], args: argparse.Namespace, argv: list[str], load: str
) -> str:
    lines = [
        START,
        "## Noise handshakes and transport (in-process)",
        "",
        *run_lines(NAME, argv, f"load average at start {load}"),
        f"- Handshakes: {args.handshakes:,} complete handshakes per round (both sides "
        "in-process, empty payloads, fresh ephemeral keys, static keys generated once, "
        "ending in Split). Transport: "
        f"{args.messages:,} x (1 KiB encrypt + decrypt) per round on an XX session. "
        f"Implementations interleaved for {args.repeats} rounds after a warm-up, each "
        "round timed in process CPU time; best round and median round reported.",
        "- Baseline: the `noiseprotocol` package. Its main row gets its static key as a "
        "pre-built `KeyPair25519`, like ours gets a `PrivateKey`; the *public API* row "
        "hands it over with `set_keypair_from_private_bytes` on every connection, which "
        "costs one more X25519 scalar multiplication per side.",
        "",
        "| operation | implementation | best (ops/s) | median (ops/s) | dchat / this (best) |",
        "|---|---|---:|---:|---:|",
    ]
    for title, rows in results.items():
        ours_best = rows[0].best
        for row in rows:
            ratio = "" if row is rows[0] else f"{ours_best / row.best:.2f}x"
            lines.append(
                f"| {title} | {row.label} | {row.best:,.0f} | {row.median:,.0f} | {ratio} |"
            )
    lines.append(END)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = arg_parser(__doc__)
    parser.add_argument("--handshakes", type=int, default=1_000, help="per round")
    parser.add_argument("--messages", type=int, default=50_000, help="per round")
    parser.add_argument("--repeats", type=int, default=5, help="rounds per implementation")
    args = parser.parse_args(argv)
    load = load_averages()
    check_interop()
    results = measure(args)
    text = section(results, args, argv, load)
    publish(NAME, text, args)


if __name__ == "__main__":
    main()
