"""Identity: document-chain verification, sync merges and SLIP-0039 recovery shares.

All rows use dchat_identity's public API in one process:

* documents: a chain of ``--versions`` identity documents, each listing 8
  device certificates (one device changes per version, a revocation every
  tenth version). ``DocumentChain.update`` verifies each new version against
  the previous one and skips re-verifying certificates it already checked;
  the baseline verifies every version on its own (``IdentityDocument.from_bytes``,
  every embedded signature) plus ``verify_update``, as a verifier without a
  cache would.
* sync: 10,000 operations from 3 replicas (registers, contact adds and
  removes), shuffled with 10 % duplicates, merged into an empty ``SyncState``;
  and the same through encrypted, device-signed sync messages of 500 operations
  (``open_sync_message`` then merge), which is what a device actually does.
* recovery shares: SLIP-0039 split of a 32-byte secret 3-of-5 and combine of 3
  shares (``shamir-mnemonic``), and the full ``setup_guardians`` (split plus
  sealing each share to its guardian).

Each row runs ``--repeats`` times after a warm-up and reports the best run.
The results replace this script's section of ``docs/benchmarks.md``.

Usage::

    uv run python benchmarks/bench_identity.py [--versions N] [--repeats N] [--no-write]
"""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from _common import arg_parser, markers, publish, run_lines
from dchat_crypto import PrivateKey, SigningKey
from dchat_identity import (
    DeviceCertificate,
    DeviceRevocation,
    DocumentChain,
    Guardian,
    Identity,
    IdentityDocument,
    setup_guardians,
)
from dchat_identity.lowlevel import (
    SyncKey,
    SyncReplica,
    SyncState,
    combine_shares,
    open_sync_message,
    seal_sync_message,
    split_secret,
    verify_update,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

NAME = "bench_identity"
START, END = markers(NAME)
NOW = 1_700_000_000.0
OPS = 10_000


@dataclass(frozen=True)
class Row:
    name: str
    seconds: float  # best time for one run
    items: int  # documents or operations per run; 1 for single operations
    unit: str


def best_time(operation: Callable[[], object], repeats: int) -> float:
    operation()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        operation()
        best = min(best, time.perf_counter() - start)
    return best


def _cert(owner: Identity, n: int) -> DeviceCertificate:
    return DeviceCertificate.issue(
        owner.signing_key,
        owner.identity_id,
        SigningKey.from_bytes(n.to_bytes(32, "big")).public_key,
        PrivateKey.from_bytes((n + 1).to_bytes(32, "big")).public_key,
        name=f"device {n}",
        now=NOW,
    )


def build_chain(versions: int) -> list[bytes]:
    owner = Identity.generate()
    certs = [_cert(owner, n) for n in range(8)]
    doc = IdentityDocument.genesis(
        owner.signing_key, owner.encryption_key.public_key, now=NOW, devices=tuple(certs)
    )
    docs, revoked = [doc], []
    for seq in range(2, versions + 1):
        certs = [*certs[1:], _cert(owner, 100 + seq)]  # one device replaced
        if seq % 10 == 0:
            revoked.append(
                DeviceRevocation.issue(
                    owner.signing_key, owner.identity_id, certs[0].device_key, seq=seq, now=NOW
                )
            )
            certs = [*certs[1:], _cert(owner, 10000 + seq)]
        doc = doc.successor(
            owner.signing_key, now=NOW + seq, devices=tuple(certs), revoked=tuple(revoked)
        )
        docs.append(doc)
    return [d.to_bytes() for d in docs]


def chain_rows(versions: int, repeats: int) -> list[Row]:
    encoded = build_chain(versions)

    def incremental() -> None:
        chain = DocumentChain(IdentityDocument.from_bytes(encoded[0]))
        for raw in encoded[1:]:
            chain.update(raw)

    def one_by_one() -> None:
        prev = IdentityDocument.from_bytes(encoded[0])
        for raw in encoded[1:]:
            doc = IdentityDocument.from_bytes(raw)
            verify_update(prev, doc)
            prev = doc

    return [
        Row(f"DocumentChain.update, chain of {versions}", best_time(incremental, repeats),
            versions, "docs"),
        Row(f"baseline: each document verified on its own, {versions}",
            best_time(one_by_one, repeats), versions, "docs"),
    ]  # fmt: skip


def sync_rows(repeats: int) -> list[Row]:
    rng = random.Random(4)
    replicas = [SyncReplica(bytes([65 + i])) for i in range(3)]
    ops = []
    for step in range(OPS):
        replica, now = replicas[step % 3], NOW + step / 100
        choice = rng.random()
        if choice < 0.4:
            ops.append(replica.set(f"settings/k{rng.randrange(50)}", rng.randrange(1000), now=now))
        elif choice < 0.8:
            ops.append(replica.add("contacts", f"c{rng.randrange(2000)}", now=now))
        else:
            ops.append(replica.remove("contacts", f"c{rng.randrange(2000)}", now=now))
    delivery = ops + rng.sample(ops, OPS // 10)
    rng.shuffle(delivery)

    def merge() -> None:
        state = SyncState()
        for op in delivery:
            state.apply(op)

    owner, device = Identity.generate(), SigningKey.generate()
    doc = IdentityDocument.genesis(
        owner.signing_key, owner.encryption_key.public_key, now=NOW,
        devices=(DeviceCertificate.issue(owner.signing_key, owner.identity_id, device.public_key,
                                         owner.encryption_key.public_key, name="d", now=NOW),),
    )  # fmt: skip
    chain, key = DocumentChain(doc), SyncKey(os.urandom(32))
    messages = [
        seal_sync_message(ops[i : i + 500], key=key, device_key=device, subject=owner.identity_id)
        for i in range(0, OPS, 500)
    ]

    def receive() -> None:
        state = SyncState()
        for message in messages:
            for op in open_sync_message(message, key=key, chain=chain):
                state.apply(op)

    return [
        Row(f"merge {OPS:,} ops (shuffled, +10 % duplicates)", best_time(merge, repeats),
            len(delivery), "ops"),
        Row(f"open {len(messages)} sync messages + merge {OPS:,} ops", best_time(receive, repeats),
            OPS, "ops"),
    ]  # fmt: skip


def share_rows(repeats: int) -> list[Row]:
    secret = os.urandom(32)
    shares = split_secret(secret, 3, 5)
    guardians = [Guardian(SigningKey.generate().public_key, PrivateKey.generate().public_key)
                 for _ in range(5)]  # fmt: skip
    subject = Identity.generate().identity_id
    return [
        Row("SLIP-0039 split 3-of-5 (32-byte secret)",
            best_time(lambda: split_secret(secret, 3, 5), repeats), 1, "op"),
        Row("SLIP-0039 combine 3 shares", best_time(lambda: combine_shares(shares[1:4]), repeats),
            1, "op"),
        Row("setup_guardians 3-of-5 (split + seal 5 shares)",
            best_time(lambda: setup_guardians(subject, guardians, 3), repeats), 1, "op"),
    ]  # fmt: skip


def _rate(row: Row) -> str:
    return f"{row.items / row.seconds:,.0f} {row.unit}/s" if row.items > 1 else "-"


def section(rows: list[Row], args: argparse.Namespace, argv: list[str]) -> str:
    table = [f"| {r.name} | {r.seconds * 1e3:,.2f} | {_rate(r)} |" for r in rows]
    chain, base = rows[0], rows[1]
    return "\n".join(
        [
            START,
            "## Identity: document chains, sync merges, recovery shares",
            "",
            *run_lines(NAME, argv),
            f"- Best of {args.repeats} runs after a warm-up. Documents list 8 device "
            "certificates; one device changes per version and every tenth version revokes one. "
            "Sync operations: 40 % register writes, 40 % contact adds, 20 % removes, 3 replicas.",
            "",
            "| workload | ms per run | throughput |",
            "|---|---:|---:|",
            *table,
            "",
            f"Verifying the chain incrementally is {base.seconds / chain.seconds:.1f}x faster "
            "than verifying each version on its own: a chain verifier checks only the "
            "certificates that are new in a version (each version costs two or three Ed25519 "
            "verifications instead of nine or more).",
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = arg_parser(__doc__)
    parser.add_argument("--versions", type=int, default=200, help="documents in the chain")
    parser.add_argument("--repeats", type=int, default=5, help="runs per row")
    args = parser.parse_args(argv)
    rows = [
        *chain_rows(args.versions, args.repeats),
        *sync_rows(args.repeats),
        *share_rows(args.repeats),
    ]
    text = section(rows, args, argv)
    publish(NAME, text, args)


if __name__ == "__main__":
    main()
