"""Session setup cost: X-Wing operations and full prekey session setups vs DH only.

Measured in one process, in the same run:

* X-Wing (``dchat_crypto.XWingPrivateKey``/``XWingPublicKey``): key generation,
  encapsulation and decapsulation, next to one X25519 key generation + DH for scale.
* Session setup with dchat's construction: ``initiate_session`` (bundle
  verification, X-Wing encapsulation, Noise ``Xpsk0`` write) and
  ``accept_session`` (X-Wing decapsulation, Noise read, identity check), with and
  without a one-time prekey.
* Baseline, DH only: the same construction without X-Wing -- Ed25519 bundle
  verification, the same ``Noise_Xpsk0_25519_ChaChaPoly_BLAKE2s`` handshake with
  the PSK from the DH(e, static) [+ DH(e, one-time prekey)] outputs only, the same
  identity payload and HKDF -- i.e. an X3DH-style setup, built from
  ``dchat_crypto`` parts.

Each figure is the best of ``--repeats`` timed runs of ``--n`` operations after a
warm-up. The results replace this script's section of ``docs/benchmarks.md``.

Usage::

    uv run python benchmarks/bench_session.py [--n N] [--repeats N] [--no-write]
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from _common import arg_parser, interleaved_rounds, markers, publish, run_lines
from dchat_core import canonical_decode, canonical_encode
from dchat_crypto import (
    HandshakeState,
    PrekeySecrets,
    PrivateKey,
    PublicKey,
    SessionInit,
    SigningKey,
    VerifyKey,
    XWingPrivateKey,
    accept_session,
    initiate_session,
)
from dchat_crypto.hazmat import handshake_with_ephemeral, hkdf_sha256

if TYPE_CHECKING:
    import argparse

NAME = "bench_session"
START, END = markers(NAME)
NOW = 1_800_000_000.0
AD = b"bench"
PROTOCOL = "Noise_Xpsk0_25519_ChaChaPoly_BLAKE2s"
WARM_UP = 20


Op = Callable[[int], object]


def measure(ops: dict[str, Op], n: int, repeats: int) -> dict[str, float]:
    """Operations per second of each op: best of ``repeats`` runs of ``n`` calls.

    The runs are interleaved (round r times every op once), so load changes on a
    shared machine hit all rows alike.
    """
    for op in ops.values():  # warm-up
        for i in range(WARM_UP):
            op(i)

    def timed_run(op: Op) -> float:
        start = time.perf_counter()
        for i in range(n):
            op(i)
        return time.perf_counter() - start

    runs = {name: partial(timed_run, op) for name, op in ops.items()}
    rounds = interleaved_rounds(runs, repeats)
    return {name: n / min(elapsed) for name, elapsed in rounds.items()}


# -- X-Wing -----------------------------------------------------------------------------------


def xwing_ops() -> dict[str, Op]:
    key = XWingPrivateKey.generate()
    public = key.public_key
    cts = [public.encapsulate()[1] for _ in range(64)]
    x_key, x_peer = PrivateKey.generate(), PrivateKey.generate().public_key
    return {
        "X-Wing keygen": lambda _i: XWingPrivateKey.generate(),
        "X-Wing encapsulate": lambda _i: public.encapsulate(),
        "X-Wing decapsulate": lambda i: key.decapsulate(cts[i % 64]),
        "X25519 keygen + DH (scale)": lambda _i: (PrivateKey.generate(), x_key.exchange(x_peer)),
    }


# -- dchat session setup ----------------------------------------------------------------------


class HybridSetup:
    """dchat's initiate_session/accept_session; every bundle is used once."""

    def __init__(self, *, one_time: bool, count: int) -> None:
        self.alice_id, self.alice_static = SigningKey.generate(), PrivateKey.generate()
        bob_id, self.bob_static = SigningKey.generate(), PrivateKey.generate()
        self.prekeys = PrekeySecrets.generate(
            bob_id.public_key,
            self.bob_static.public_key,
            now=NOW,
            one_time_count=count if one_time else 0,
        )
        ids = self.prekeys.one_time_prekey_ids
        self.bundles = (
            [self.prekeys.bundle(bob_id, one_time_prekey_id=i) for i in ids]
            if one_time
            else [self.prekeys.bundle(bob_id)] * count
        )
        self.pending: list[SessionInit] = []

    def initiate(self, _i: int = 0) -> SessionInit:
        bundle = self.bundles.pop()
        init = initiate_session(
            self.alice_id, self.alice_static, bundle, now=NOW, associated_data=AD
        )[0]
        self.pending.append(init)
        return init

    def accept(self, _i: int = 0) -> None:
        init = self.pending.pop()
        accept_session(self.prekeys, self.bob_static, init, now=NOW, associated_data=AD)

    def both(self, _i: int = 0) -> None:
        self.initiate()
        self.accept()


# -- baseline: the same construction, DH only -------------------------------------------------


class DhOnlySetup:
    """X3DH-style setup over the same Noise pattern, without X-Wing."""

    def __init__(self, *, one_time: bool) -> None:
        self.alice_id, self.alice_static = SigningKey.generate(), PrivateKey.generate()
        self.bob_id, self.bob_static = SigningKey.generate(), PrivateKey.generate()
        self.spk = PrivateKey.generate()
        self.opk = PrivateKey.generate() if one_time else None
        body = {
            "v": 1,
            "ik": self.bob_id.public_key.to_bytes(),
            "ek": self.bob_static.public_key.to_bytes(),
            "spk_id": 1,
            "spk": self.spk.public_key.to_bytes(),
            "exp": int(NOW) + 86400,
        }
        if self.opk is not None:
            body |= {"opk_id": 2, "opk": self.opk.public_key.to_bytes()}
        self.body = canonical_encode(body)
        self.sig = self.bob_id.sign(b"dchat-prekey-bundle-v1\x00" + self.body)

    def _psk(self, dhs: list[bytes]) -> bytes:
        return hkdf_sha256(b"".join(dhs), salt=b"", info=b"dchat-session-v1 psk", length=32)

    def initiate(self) -> bytes:
        self.bob_id.public_key.verify(self.sig, b"dchat-prekey-bundle-v1\x00" + self.body)
        e = PrivateKey.generate()
        dhs = [e.exchange(self.bob_static.public_key)]
        if self.opk is not None:
            dhs.append(e.exchange(self.opk.public_key))
        state = handshake_with_ephemeral(
            PROTOCOL,
            initiator=True,
            ephemeral=e,
            prologue=self.body,
            static=self.alice_static,
            remote_static=self.spk.public_key,
            psks=[self._psk(dhs)],
        )
        proof = self.alice_id.sign(
            b"dchat-session-static-v1\x00" + self.alice_static.public_key.to_bytes()
        )
        message = state.write_message(
            canonical_encode({"v": 1, "ik": self.alice_id.public_key.to_bytes(), "sig": proof})
        )
        hkdf_sha256(state.handshake_hash, salt=b"", info=b"secrets", length=96)
        return message

    def accept(self, message: bytes) -> None:
        e = PublicKey.from_bytes(message[:32])
        dhs = [self.bob_static.exchange(e)]
        if self.opk is not None:
            dhs.append(self.opk.exchange(e))
        state = HandshakeState(
            PROTOCOL, initiator=False, prologue=self.body, static=self.spk, psks=[self._psk(dhs)]
        )
        payload = state.read_message(message)
        remote = state.remote_static
        assert remote is not None
        fields = canonical_decode(payload)
        ik = VerifyKey(fields["ik"])
        ik.verify(fields["sig"], b"dchat-session-static-v1\x00" + remote.to_bytes())
        hkdf_sha256(state.handshake_hash, salt=b"", info=b"secrets", length=96)


def setup_ops(n: int, repeats: int) -> dict[str, dict[str, Op]]:
    """Initiate, accept and initiate+accept ops per setup kind."""
    count = WARM_UP + n * repeats
    kinds: dict[str, dict[str, Op]] = {}
    for one_time in (True, False):
        label = "with one-time prekey" if one_time else "no one-time prekey"
        split, joint = (
            HybridSetup(one_time=one_time, count=count),
            HybridSetup(one_time=one_time, count=count),
        )
        kinds[f"dchat (X-Wing), {label}"] = {
            "initiate": split.initiate,
            "accept": split.accept,
            "both": joint.both,
        }
        base = DhOnlySetup(one_time=one_time)
        messages = [base.initiate() for _ in range(64)]
        kinds[f"DH only, {label}"] = {
            "initiate": lambda _i, b=base: b.initiate(),
            "accept": lambda i, b=base, m=messages: b.accept(m[i % 64]),
            "both": lambda _i, b=base: b.accept(b.initiate()),
        }
    return kinds


# -- report -------------------------------------------------------------------------------------


def section(
    xwing: dict[str, float],
    setups: dict[str, tuple[float, float, float]],
    args: argparse.Namespace,
    argv: list[str],
) -> str:
    ops = [f"| {name} | {rate:,.0f} | {1e6 / rate:.0f} |" for name, rate in xwing.items()]
    rows = [
        f"| {name} | {i:,.0f} | {a:,.0f} | {b:,.0f} | {1e6 / b:.0f} |"
        for name, (i, a, b) in setups.items()
    ]
    ratio = []
    for kind in ("with one-time prekey", "no one-time prekey"):
        hybrid, dh_only = setups[f"dchat (X-Wing), {kind}"][2], setups[f"DH only, {kind}"][2]
        ratio.append(
            f"- {kind}: X-Wing hybrid / DH only, full setups per second {hybrid / dh_only:.2f}x."
        )
    return "\n".join(
        [
            START,
            "## Session setup (prekeys + X-Wing)",
            "",
            *run_lines(NAME, argv),
            f"- One process, single thread. Each figure: best of {args.repeats} runs of "
            f"{args.n:,} operations after a warm-up; runs of all rows interleaved.",
            "- Baseline: the same construction without X-Wing (Ed25519 bundle check, "
            "Noise_Xpsk0_25519_ChaChaPoly_BLAKE2s with the PSK from the extra DH outputs "
            "only, the same identity payload), an X3DH-style DH-only setup.",
            "",
            "| operation | ops/s | µs/op |",
            "|---|---:|---:|",
            *ops,
            "",
            "| setup | initiate/s | accept/s | initiate+accept/s | µs per setup |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            *ratio,
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = arg_parser(__doc__)
    parser.add_argument("--n", type=int, default=300, help="operations per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure")
    args = parser.parse_args(argv)
    kinds = setup_ops(args.n, args.repeats)
    ops: dict[str, Op] = dict(xwing_ops())
    ops |= {f"{kind}|{step}": op for kind, steps in kinds.items() for step, op in steps.items()}
    rates = measure(ops, args.n, args.repeats)
    xwing = {name: rates[name] for name in xwing_ops()}
    setups = {
        kind: (rates[f"{kind}|initiate"], rates[f"{kind}|accept"], rates[f"{kind}|both"])
        for kind in kinds
    }
    text = section(xwing, setups, args, argv)
    publish(NAME, text, args)


if __name__ == "__main__":
    main()
