"""Privacy libraries: Sphinx onion packets, blind tokens and contact proofs, each beside a baseline.

Everything runs in one process, in the same run, with no I/O, on the public API
of ``dchat_privacy`` (README of packages/dchat-privacy, docs/protocol.md
sections 28-30):

* Sphinx peel: ``OnionRelay.process`` on the first hop of a 3-hop first message
  (5462 bytes: header, replay check, body layer), one relay core. The relay is
  new each round so the same pre-built messages are not replays. Baseline: what
  a relay would do with a plain onion layer of the same size: one X25519
  exchange, SHA-256 of the secret, one ChaCha20-Poly1305 open (`cryptography`).
* 3-hop latency: ``build_message`` over three relays plus the three
  ``process`` calls, one message at a time, CPU time per message (median and
  p99); baseline: three nested X25519 + ChaCha20-Poly1305 layers sealed by the
  sender (a fresh ephemeral key each) and opened one per hop.
* Onion deposits on loopback (protocol §39): three relay hosts
  (``dchat_network.RelayHost`` over in-memory mailboxes) in this process, on
  127.0.0.1; the wall-clock time of one deposit of a 1,000-byte envelope
  through three hops (``OnionPool.deposit`` of an ``onion:`` route: build, three
  links, three peels, the store) against a direct ``put_many`` of the same
  envelope at the same relay over a pooled link, alternating, one at a time.
  All hops share this process's one thread, so their CPU time adds up (on
  separate machines it would overlap with the network's).
* Blind tokens (RFC 9474, RSABSSA-SHA384-PSS-Randomized) at 2048 and 3072 bits,
  in requests of 10: the client's ``request_tokens`` (prepare + blind), the
  issuer's ``TokenIssuer.issue`` of the decoded request, the client's
  ``PendingTokens.finalize`` (unblind + verify) and the relay's
  ``TokenRedeemer.redeem`` (verify + spent set; a new redeemer each round).
  Baseline: RSA-PSS (SHA-384, 48-byte salt) sign and verify with the same key
  through `cryptography` (OpenSSL).
* Paid tokens at a relay (protocol section 40), RSA-2048: ``TokenShop.sell``
  (decode, payment checks, the payment recorded as used, blind signatures;
  an in-memory store) against ``TokenIssuer.issue`` alone, and a paid deposit
  through ``RelayServer.handle`` (a ``put`` with a ``0x03`` token on a relay
  that asks every stranger for work: verify, spent set, store) against a
  ``put`` with no authorization on a quiet relay (an in-memory mailbox store).
* Contact proofs on ristretto255: ``prove_contact`` and ``verify_contact``
  (unlinkable mode) for rings of 8, 64 and 256 keys. Baseline: one Ed25519
  sign and one verify (`cryptography`).
* Put authorization by contact proof (protocol section 41), the whole path
  per deposit: the sender's ``prove_deposits`` (ring decoded, the owner's
  signature checked, one proof) and the relay's ``ContactRings.check``
  (nonce consumed, proof decoded and verified; nonces issued outside the
  timing). Baseline: the put-token check a relay does instead
  (``PutAuthorizer.authorize`` with a registered token).

* Cover traffic (``--case cover``, its own section): a user's loop and drop
  streams (``dchat_privacy.lowlevel.CoverScheduler``) run for a simulated day at
  each budget, no real mail, giving envelopes/s and bytes/s up (deposits) and
  down (loops coming back) and drops left at relays per day; the CPU of one
  cover envelope (``dchat_messaging``'s ``CoverTraffic``: build a loop or a drop,
  open a returned loop) timed beside a bare ``dchat_crypto.seal`` of the same
  size, and the two multiplied into CPU seconds per hour of cover.

Implementations are measured interleaved (ours, baseline, ours, ...) for
``--repeats`` rounds after a warm-up round, each round timed in process CPU time
(``time.process_time``): the work is single threaded, so a rate is per core,
and time spent waiting for a core that other processes hold is left out. The
best round is reported with the median beside it.

Usage::

    uv run python benchmarks/bench_privacy.py [--packets N] [--samples N] [--tokens N]
        [--proofs N] [--deposits N] [--repeats N] [--case all|cover]
"""

from __future__ import annotations

import hashlib
import random
import statistics
import sys
import time
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from _common import (
    arg_parser,
    interleaved_rounds,
    load_at_end,
    load_averages,
    markers,
    publish,
    run_lines,
)
from dchat_core import MailboxId, NodeId
from dchat_crypto import PrivateKey, SigningKey, seal
from dchat_messaging.lowlevel import (
    DEFAULT_COVER_BUDGET,
    CoverDeposit,
    CoverTraffic,
    envelope_size,
)
from dchat_messaging.testing import MemoryMessageStore
from dchat_network import RelayLimits, RelayServer
from dchat_network.lowlevel import (
    ContactRings,
    PutAuthorizer,
    RelayPut,
    TokenSettings,
    TokenShop,
    auth_paid,
    auth_token,
    buy_request,
    encode_relay_message,
    prove_deposits,
    token_hash,
)
from dchat_privacy import (
    ContactContext,
    ContactRing,
    ContactSecret,
    OnionPrivateKey,
    OnionPublicKey,
    OnionRelay,
    TokenIssuer,
    TokenIssuerKey,
    TokenRedeemer,
    build_message,
    prove_contact,
    request_tokens,
    verify_contact,
)
from dchat_privacy.lowlevel import (
    MESSAGE_SIZE,
    CoverScheduler,
    Deliver,
    Forward,
    decode_token_request,
    read_body,
    ring_statement,
)

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

NAME = "bench_privacy"
START, END = markers(NAME)
COVER_NAME = "bench_privacy_cover"
COVER_BUDGETS = (DEFAULT_COVER_BUDGET, 1_000, 8_000)  # bytes/s; the first is `cover on`'s

TARGET_PEELS = 2_000  # issue 18: Sphinx packets peeled per second per relay core
DATA = bytes(1000)  # a first message's data: a sealed envelope's worth
BATCH = 10  # tokens per request
REDEEMER = bytes(range(32))
RING_SIZES = (8, 64, 256)
NONCE = bytes(12)  # every baseline layer has a fresh X25519 key, hence a fresh AEAD key
LAYER = 32 + 16  # ephemeral public key + tag
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


@dataclass
class Row:
    label: str
    count: int
    seconds: list[float]

    @property
    def best(self) -> float:
        """Operations per CPU-second in the fastest round."""
        return self.count / min(self.seconds)

    @property
    def median(self) -> float:
        return self.count / statistics.median(self.seconds)


# (label, operations per round, run(n) -> CPU seconds); the first entry is dchat's.
Case = list[tuple[str, int, "Callable[[int], float]"]]


def timed(op: Callable[[int], object], n: int) -> float:
    start = time.process_time()
    for i in range(n):
        op(i)
    return time.process_time() - start


# -- Sphinx ------------------------------------------------------------------------------------


class Route:
    """Three onion relays' keys and a route over them ending at a mailbox."""

    def __init__(self) -> None:
        self.keys = [OnionPrivateKey.generate() for _ in range(3)]
        self.route: list[tuple[OnionPublicKey, bytes]] = [
            (key.public_key, b"relay-%d" % i) for i, key in enumerate(self.keys)
        ]
        self.route[-1] = (self.keys[-1].public_key, b"mailbox")

    def message(self) -> bytes:
        return build_message(self.route, DATA, session_key=OnionPrivateKey.generate())[0]

    def relays(self) -> list[OnionRelay]:
        return [OnionRelay(key, epoch=1) for key in self.keys]


def _seal(public: X25519PublicKey, plaintext: bytes) -> bytes:
    ephemeral = X25519PrivateKey.generate()
    key = hashlib.sha256(ephemeral.exchange(public)).digest()
    sealed = ChaCha20Poly1305(key).encrypt(NONCE, plaintext, None)
    return ephemeral.public_key().public_bytes_raw() + sealed


def _open(private: X25519PrivateKey, layer: bytes) -> bytes:
    key = hashlib.sha256(private.exchange(X25519PublicKey.from_public_bytes(layer[:32]))).digest()
    return ChaCha20Poly1305(key).decrypt(NONCE, layer[32:], None)


class PlainRoute:
    """The baseline: three nested X25519 + ChaCha20-Poly1305 layers, as long as a Sphinx message."""

    def __init__(self) -> None:
        self.keys = [X25519PrivateKey.generate() for _ in range(3)]
        self.publics = [key.public_key() for key in self.keys]

    def message(self) -> bytes:
        layer = DATA.ljust(MESSAGE_SIZE - 3 * LAYER, b"\0")
        for public in reversed(self.publics):
            layer = _seal(public, layer)
        assert len(layer) == MESSAGE_SIZE
        return layer


def sphinx_cases(packets: int) -> dict[str, Case]:
    route, plain = Route(), PlainRoute()
    messages = [route.message() for _ in range(packets)]
    layers = [plain.message() for _ in range(packets)]

    def peel(n: int) -> float:
        relay = OnionRelay(route.keys[0], epoch=1)  # an empty replay cache
        return timed(lambda i: relay.process(messages[i]), n)

    def peel_plain(n: int) -> float:
        return timed(lambda i: _open(plain.keys[0], layers[i]), n)

    return {
        "Sphinx peel (1st of 3 hops)": [
            ("dchat `OnionRelay.process`", packets, peel),
            ("X25519 + ChaCha20-Poly1305 open", packets, peel_plain),
        ]
    }


@dataclass
class Latency:
    label: str
    total: list[float]
    build: list[float]
    hops: list[float]

    def percentile(self, q: float) -> float:
        ordered = sorted(self.total)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def three_hops(samples: int) -> tuple[Latency, Latency]:
    """Build + peel at three hops, one message at a time, ours and the baseline alternating."""
    route, plain = Route(), PlainRoute()
    relays = route.relays()
    ours, base = (
        Latency("dchat", [], [], []),
        Latency("nested X25519 + ChaCha20-Poly1305", [], [], []),
    )
    for _ in range(samples + samples // 10):  # the first tenth is a warm-up
        start = time.process_time()
        message = route.message()
        built = time.process_time()
        for relay in relays[:-1]:
            forward = relay.process(message)
            assert isinstance(forward, Forward)
            message = forward.message
        delivered = relays[-1].process(message)
        done = time.process_time()
        assert isinstance(delivered, Deliver)
        assert read_body(delivered.body) == DATA
        ours.total.append(done - start)
        ours.build.append(built - start)
        ours.hops.append((done - built) / 3)

        start = time.process_time()
        layer = plain.message()
        built = time.process_time()
        for key in plain.keys:
            layer = _open(key, layer)
        done = time.process_time()
        assert layer.startswith(DATA)
        base.total.append(done - start)
        base.build.append(built - start)
        base.hops.append((done - built) / 3)
    for latency in (ours, base):
        for series in (latency.total, latency.build, latency.hops):
            del series[: samples // 10]
    return ours, base


# -- onion deposits over loopback ----------------------------------------------------------------


def _mailbox_of(envelope: bytes) -> bytes | None:
    return envelope[:32] if len(envelope) >= 32 else None


async def _deposits(count: int) -> tuple[Latency, Latency]:
    import trio

    from dchat_core import NodeId, RelayAddress
    from dchat_crypto import SigningKey
    from dchat_network import RelayHost, RelayServer
    from dchat_network.lowlevel import OnionPool, onion_route
    from dchat_testing import MemoryMailboxStore

    async def run(call: Callable[[], object]) -> object:
        return call()

    onion = Latency("3 hops (onion)", [], [], [])  # total: wall clock; build: CPU (all hops)
    direct = Latency("direct put", [], [], [])
    async with trio.open_nursery() as nursery:
        relays = []
        for _ in range(3):
            host = RelayHost(RelayServer(MemoryMailboxStore(), _mailbox_of), run, time.time)  # type: ignore[arg-type]
            key = SigningKey.generate()
            h, p = await nursery.start(host.serve, "127.0.0.1", 0, key)
            relays.append(RelayAddress(h, p, NodeId.derive(key.public_key.to_bytes())))
        pool = OnionPool(onion_relays=relays[:2])
        last = relays[2]
        for n in range(count + count // 10):  # the first tenth warms the links up
            box = hashlib.sha256(n.to_bytes(4, "big")).digest()
            envelope = box + bytes(len(DATA) - 32)
            start, cpu = time.perf_counter(), time.process_time()
            (stored,) = await pool.deposit(onion_route(last.hostport), [(box, envelope)])
            onion.total.append(time.perf_counter() - start)
            onion.build.append(time.process_time() - cpu)
            assert isinstance(stored, bytes), stored
            again = box + b"\x01" + bytes(len(DATA) - 33)
            start, cpu = time.perf_counter(), time.process_time()
            (stored,) = await pool.put_many(last.host, last.port, [(box, again)])
            direct.total.append(time.perf_counter() - start)
            direct.build.append(time.process_time() - cpu)
            assert isinstance(stored, bytes), stored
        await pool.aclose()
        nursery.cancel_scope.cancel()
    for latency in (onion, direct):
        del latency.total[: count // 10]
        del latency.build[: count // 10]
    return onion, direct


def deposits(count: int) -> tuple[Latency, Latency]:
    """Wall-clock latency of onion deposits (3 hops) and direct puts on loopback."""
    import trio

    return trio.run(_deposits, count)


def deposit_table(pair: tuple[Latency, Latency]) -> list[str]:
    onion, direct = pair
    added = statistics.median(onion.total) - statistics.median(direct.total)
    cpu = statistics.median(onion.build) - statistics.median(direct.build)
    lines = [
        "| deposit of one 1,000-byte envelope, loopback | wall, median (µs) | wall, p99 (µs) "
        "| CPU of all hops, median (µs) |",
        "|---|---:|---:|---:|",
    ]
    for latency in pair:
        lines.append(
            f"| {latency.label} | {_us(statistics.median(latency.total))} "
            f"| {_us(latency.percentile(0.99))} | {_us(statistics.median(latency.build))} |"
        )
    lines.append(f"| added by 3 hops (median) | {_us(added)} | | {_us(cpu)} |")
    return lines


# -- blind tokens ------------------------------------------------------------------------------


def token_cases(bits: int, tokens: int) -> dict[str, Case]:
    key = TokenIssuerKey.generate(epoch=1, bits=bits)
    issuer = TokenIssuer([key])
    public = key.public
    requests = [request_tokens(public, REDEEMER, BATCH, b"payment") for _ in range(tokens // BATCH)]
    wire = [request.to_bytes() for request, _ in requests]
    answers = [issuer.issue(request, epoch=1).to_bytes() for request, _ in requests]
    redemptions = [
        token.redemption()
        for (_, pending), answer in zip(requests, answers, strict=True)
        for token in pending.finalize(answer)
    ]
    message = b"a token message of about the size dchat signs"
    signatures = [key.private_key.sign(message, PSS, hashes.SHA384()) for _ in range(tokens)]
    plain_public = key.private_key.public_key()

    def batches(op: Callable[[int], object]) -> Callable[[int], float]:
        return lambda n: timed(op, n // BATCH)

    def redeem(n: int) -> float:
        redeemer = TokenRedeemer(REDEEMER, epoch=1)  # an empty spent set
        redeemer.add_key(public)
        return timed(lambda i: redeemer.redeem(redemptions[i]), n)

    def sign(n: int) -> float:
        return timed(lambda _: key.private_key.sign(message, PSS, hashes.SHA384()), n)

    def verify(n: int) -> float:
        return timed(lambda i: plain_public.verify(signatures[i], message, PSS, hashes.SHA384()), n)

    rsa = f"RSA-{bits}"
    return {
        f"{rsa} token request (client)": [
            (
                "dchat `request_tokens`",
                tokens,
                batches(lambda _: request_tokens(public, REDEEMER, BATCH, b"payment")),
            ),
        ],
        f"{rsa} token issue (issuer)": [
            (
                "dchat `TokenIssuer.issue`",
                tokens,
                batches(lambda i: issuer.issue(decode_token_request(wire[i]), epoch=1)),
            ),
            ("RSA-PSS sign", tokens, sign),
        ],
        f"{rsa} token finalize (client)": [
            (
                "dchat `PendingTokens.finalize`",
                tokens,
                batches(lambda i: requests[i][1].finalize(answers[i])),
            ),
            ("RSA-PSS verify", tokens, verify),
        ],
        f"{rsa} token redeem (relay)": [
            ("dchat `TokenRedeemer.redeem`", tokens, redeem),
            ("RSA-PSS verify", tokens, verify),
        ],
    }


class _MemoryTokenStore:
    """The relay database's token tables, in memory (the shop's own cost, without SQL)."""

    def __init__(self) -> None:
        self.keys: dict[int, bytes] = {}
        self.used: set[bytes] = set()

    def token_keys(self) -> list[tuple[int, bytes]]:
        return sorted(self.keys.items())

    def keep_token_key(self, epoch: int, key: bytes) -> None:
        self.keys[epoch] = key

    def use_payment(self, ref: bytes, now: float) -> bool:
        new = ref not in self.used
        self.used.add(ref)
        return new

    def spend_token(self, epoch: int, digest: bytes) -> bool:
        new = digest not in self.used
        self.used.add(digest)
        return new

    def spent_tokens(self, since_epoch: int) -> list[tuple[int, bytes]]:
        return []

    def forget_tokens(self, before_epoch: int) -> None:
        return None


def shop_cases(tokens: int) -> dict[str, Case]:
    """Paid tokens at a relay (protocol section 40): a sale and a paid deposit, RSA-2048."""
    node = SigningKey.generate()
    relay = bytes(NodeId.derive(node.public_key.to_bytes()))
    settings = TokenSettings(enabled=True, price=1, max_per_payment=BATCH)
    now = 1_000_000.0
    # One shop's key serves every round; each round gets a fresh store (a payment buys once).
    key_store = _MemoryTokenStore()
    TokenShop(settings, node, relay, key_store, now).offer(now)

    def new_shop() -> TokenShop:
        store = _MemoryTokenStore()
        store.keys = dict(key_store.keys)
        shop = TokenShop(settings, node, relay, store, now)
        shop.load(now)
        return shop

    offer = new_shop().offer(now)
    requests = [buy_request(offer.key, relay, BATCH) for _ in range(tokens // BATCH)]
    wire = [request.to_bytes() for request, _ in requests]
    answers = [new_shop().sell(w, (offer.payee, BATCH), now) for w in wire]
    redemptions = [
        auth_paid(token.redemption())
        for (_, pending), answer in zip(requests, answers, strict=True)
        for token in pending.finalize(answer)
    ]
    issuer_key = TokenIssuerKey.from_bytes(new_shop()._unseal(*next(iter(key_store.keys.items()))))
    issuer = TokenIssuer([issuer_key])
    box = bytes(32)

    def sell(n: int) -> float:
        shop = new_shop()
        return timed(lambda i: shop.sell(wire[i], (offer.payee, BATCH), now), n // BATCH)

    def issue(n: int) -> float:
        return timed(
            lambda i: issuer.issue(decode_token_request(wire[i]), epoch=issuer_key.epoch),
            n // BATCH,
        )

    def server(shop: TokenShop | None) -> RelayServer:
        limits = RelayLimits(pow_free_relay=0.0, pow_free_mailbox=0.0, mailbox_quota=1 << 40)
        relay_server = RelayServer(_Mailboxes(), lambda env: env[:32], limits=limits)
        if shop is not None:
            relay_server.tokens = shop
        return relay_server

    def paid_put(n: int) -> float:
        relay_server = server(new_shop())
        puts = [
            encode_relay_message(RelayPut(1, box, box + b"%d" % i, redemptions[i]))
            for i in range(n)
        ]
        return timed(lambda i: relay_server.handle(b"s" * 32, puts[i], now), n)

    def free_put(n: int) -> float:
        relay_server = RelayServer(_Mailboxes(), lambda env: env[:32])
        puts = [encode_relay_message(RelayPut(1, box, box + b"%d" % i)) for i in range(n)]
        return timed(lambda i: relay_server.handle(b"s" * 32, puts[i], now), n)

    return {
        "RSA-2048 paid token sale (relay)": [
            ("dchat `TokenShop.sell`", tokens, sell),
            ("`TokenIssuer.issue` alone", tokens, issue),
        ],
        "paid deposit at a busy relay (relay)": [
            ("dchat `RelayServer` put + `0x03` token", tokens, paid_put),
            ("`RelayServer` put, no authorization (quiet relay)", tokens, free_put),
        ],
    }


class _Mailboxes:
    """A minimal in-memory mailbox store (the relay server's store protocol)."""

    def __init__(self) -> None:
        self.held: dict[bytes, int] = {}

    def put(self, mailbox: bytes, envelope: bytes, received_at: float) -> tuple[bytes, bool]:
        self.held[mailbox] = self.held.get(mailbox, 0) + len(envelope)
        return hashlib.sha256(envelope).digest(), True

    def fetch(self, mailbox: bytes, limit: int = 100) -> list[object]:
        return []

    def ack(self, mailbox: bytes, entry_ids: object) -> int:
        return 0

    def total_bytes(self, mailbox: bytes) -> int:
        return self.held.get(mailbox, 0)


# -- contact proofs ----------------------------------------------------------------------------


def proof_cases(proofs: int) -> dict[str, Case]:
    context = ContactContext(b"mailbox", 1, bytes(16))
    ed_key = Ed25519PrivateKey.generate()
    ed_public = ed_key.public_key()
    ed_message = b"a contact request of about a proof's context size"
    ed_signature = ed_key.sign(ed_message)
    cases: dict[str, Case] = {}
    for size in RING_SIZES:
        secret = ContactSecret.generate()
        ring = ContactRing.padded([secret.public_key], size=size)
        proof = prove_contact(secret, ring, context)
        count = max(2, proofs * RING_SIZES[0] // size)
        ed_count = proofs * 20
        cases[f"contact proof create, ring {size}"] = [
            (
                "dchat `prove_contact`",
                count,
                partial(timed, lambda _, s=secret, r=ring: prove_contact(s, r, context)),
            ),
            ("Ed25519 sign", ed_count, partial(timed, lambda _: ed_key.sign(ed_message))),
        ]
        cases[f"contact proof verify, ring {size}"] = [
            (
                "dchat `verify_contact`",
                count,
                partial(timed, lambda _, p=proof, r=ring: verify_contact(p, r, context)),
            ),
            (
                "Ed25519 verify",
                ed_count,
                partial(timed, lambda _: ed_public.verify(ed_signature, ed_message)),
            ),
        ]
    return cases


def put_proof_cases(proofs: int) -> dict[str, Case]:
    key = SigningKey.generate()
    mailbox = bytes(MailboxId.derive(key.public_key.to_bytes()))
    token = bytes(16)
    tokens = PutAuthorizer()
    tokens.set_tokens(mailbox, [token_hash(token)])
    entry = bytes(32)

    def check_tokens(n: int) -> float:
        auth = auth_token(token)
        start = time.process_time()
        for _ in range(n):
            tokens.authorize(mailbox, entry, auth, 1000.0)
        return time.process_time() - start

    cases: dict[str, Case] = {}
    for size in RING_SIZES:
        secret = ContactSecret.generate()
        raw = ContactRing.padded([secret.public_key], size=size).to_bytes()
        signature = key.sign(ring_statement(mailbox, raw))
        book = ContactRings(max_outstanding=1 << 20)
        book.set_ring(mailbox, raw, key.public_key.to_bytes(), signature)
        count = max(2, proofs * RING_SIZES[0] // size)

        def prove(n: int, b: ContactRings = book, s: ContactSecret = secret) -> float:
            contexts = b.contexts(mailbox, n, 1000.0)
            start = time.process_time()
            for nonce in contexts.nonces:
                prove_deposits(s, mailbox, replace(contexts, nonces=(nonce,)))
            return time.process_time() - start

        def check(n: int, b: ContactRings = book, s: ContactSecret = secret) -> float:
            auths = prove_deposits(s, mailbox, b.contexts(mailbox, n, 1000.0))
            start = time.process_time()
            for auth in auths:
                b.check(mailbox, auth, 1000.0)
            return time.process_time() - start

        cases[f"put proof (sender), ring {size}"] = [
            ("dchat `prove_deposits`", min(count, 64), prove),
            ("put-token check (relay)", proofs * 200, check_tokens),
        ]
        cases[f"put proof check (relay), ring {size}"] = [
            ("dchat `ContactRings.check`", min(count, 64), check),
            ("put-token check (relay)", proofs * 200, check_tokens),
        ]
    return cases


# -- measuring and reporting -------------------------------------------------------------------


def measure(cases: dict[str, Case], repeats: int) -> dict[str, list[Row]]:
    results: dict[str, list[Row]] = {}
    for title, runs in cases.items():
        for _, count, run in runs:
            run(count)  # warm-up
        rounds = interleaved_rounds(
            {label: partial(run, count) for label, count, run in runs}, repeats
        )
        rows = [Row(label, count, rounds[label]) for label, count, _ in runs]
        for row in rows:
            print(
                f"{title:>34} {row.label:>34}: best {row.best:10,.0f}/s  "
                f"median {row.median:10,.0f}/s",
                file=sys.stderr,
            )
        results[title] = rows
    return results


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}"


def table(results: dict[str, list[Row]]) -> list[str]:
    lines = [
        "| operation | implementation | best (ops/s per core) | median (ops/s) "
        "| µs per op (best) | dchat time / baseline |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for title, rows in results.items():
        ours = rows[0]
        for row in rows:
            ratio = "" if row is ours else f"{row.best / ours.best:.1f}x"
            lines.append(
                f"| {title} | {row.label} | {row.best:,.0f} | {row.median:,.0f} "
                f"| {_us(1 / row.best)} | {ratio} |"
            )
    return lines


def latency_table(pair: tuple[Latency, Latency]) -> list[str]:
    lines = [
        "| 3 hops, one message | median (µs) | p99 (µs) | build, median (µs) "
        "| peel per hop, median (µs) |",
        "|---|---:|---:|---:|---:|",
    ]
    for latency in pair:
        lines.append(
            f"| {latency.label} | {_us(statistics.median(latency.total))} "
            f"| {_us(latency.percentile(0.99))} | {_us(statistics.median(latency.build))} "
            f"| {_us(statistics.median(latency.hops))} |"
        )
    return lines


def section(
    results: dict[str, list[Row]],
    latency: tuple[Latency, Latency],
    onion: tuple[Latency, Latency],
    args: argparse.Namespace,
    argv: list[str],
    load: str,
) -> str:
    peel = next(iter(results.values()))[0]
    verdict = "met" if peel.best >= TARGET_PEELS else "NOT met"
    lines = [
        START,
        "## Privacy libraries: Sphinx, blind tokens, contact proofs (in-process)",
        "",
        *run_lines(NAME, argv, f"load average at start {load}", load_at_end()),
        "- All rates are per CPU-second of one thread (process CPU time), i.e. per core; "
        f"implementations interleaved for {args.repeats} rounds after a warm-up round, best "
        "and median round reported. The machine was shared with other jobs (see the load "
        "averages): CPU time leaves out waiting for a core, not cache or frequency effects.",
        f"- Sphinx: {args.packets:,} pre-built 3-hop first messages ({MESSAGE_SIZE:,} bytes, "
        f"{len(DATA):,} bytes of data) peeled by the first relay per round (a new relay each "
        "round, so none is a replay); the replay cache check is included. Baseline: one "
        "X25519 exchange + SHA-256 + ChaCha20-Poly1305 open of a layer as long "
        "(`cryptography`). "
        f"Target of issue 18: >= {TARGET_PEELS:,} peels/s per relay core: **{verdict}** "
        f"({peel.best:,.0f}/s best, {peel.median:,.0f}/s median).",
        f"- 3-hop latency: {args.samples:,} messages, each built (`build_message`) and "
        "peeled by three relays in turn, CPU time per message (no network, no queueing); "
        "baseline: three nested X25519 + ChaCha20-Poly1305 layers, sealed with a fresh "
        "ephemeral key each and opened one per hop. Samples alternate with the baseline.",
        f"- Onion deposits: {args.deposits:,} deposits of a {len(DATA):,}-byte envelope, "
        "wall-clock time each, through three relay hosts on 127.0.0.1 in this process "
        "(in-memory mailboxes, pooled links, build + 3 links + 3 peels + store) against a "
        "direct `put_many` at the same relay, alternating; the hops share this process's "
        "one thread, so their CPU adds up. CPU: process time during the deposit (every hop's "
        "work); on a loaded machine the wall time is mostly waiting for a core.",
        f"- Blind tokens: RFC 9474 RSABSSA-SHA384-PSS-Randomized, {args.tokens:,} tokens per "
        f"round in requests of {BATCH}; rates per token. Issue includes decoding the "
        "request; redeem runs on a new `TokenRedeemer` each round (verify + spent set). "
        "Baseline: RSA-PSS (SHA-384, 48-byte salt) sign / verify with the same key through "
        "`cryptography` (OpenSSL). The client's request (prepare + blind) has no baseline.",
        "- Paid tokens at a relay (RSA-2048, protocol section 40): `TokenShop.sell` with its "
        "payment checks and used-payment record (in-memory store) against `TokenIssuer.issue` "
        "alone; a paid deposit (`put` with a `0x03` token on a relay asking every stranger "
        "for work: verify, spent set, store) against a `put` without authorization on a quiet "
        "relay (in-memory mailboxes, no SQL).",
        f"- Contact proofs: unlinkable mode, rings padded with decoys to {RING_SIZES}, one "
        "context; `ContactVerifier`'s nonce bookkeeping is not included. Baseline: one "
        "Ed25519 sign / verify (`cryptography`).",
        "- Put authorization by contact proof (protocol section 41), per deposit: the "
        "sender's `prove_deposits` (ring decoded, the owner's signature checked, one proof) "
        "and the relay's `ContactRings.check` (nonce consumed, proof decoded and verified). "
        "Baseline: the relay's put-token check (`PutAuthorizer.authorize` with a registered "
        "token: BLAKE2b of the token, a set lookup).",
        "",
        *table(results),
        "",
        *latency_table(latency),
        "",
        *deposit_table(onion),
        END,
    ]
    return "\n".join(lines)


# -- cover traffic ----------------------------------------------------------------------------


def cover_day(budget: int) -> dict[str, float]:
    """A simulated day of one user's cover at ``budget``: rates, no CPU."""
    size, day = envelope_size(), 86_400.0
    policy = CoverTraffic.policy(budget)  # as a node runs it
    assert policy is not None
    scheduler = CoverScheduler(policy, now=0.0, rng=random.Random(budget))
    while (at := scheduler.next_at()) <= day:
        scheduler.due(at)
    loops, drops = scheduler.counters["loops"], scheduler.counters["drops"]
    return {
        "envelopes": (loops + drops) / day,
        "up": (loops + drops) * size / day,
        "down": loops * size / day,
        "drops_day": drops * size,
        "skipped": scheduler.counters["skipped"]
        / max(1, loops + drops + scheduler.counters["skipped"]),
        "window": policy.window,
    }


def cover_cpu(count: int, repeats: int) -> dict[str, Row]:
    """CPU per cover envelope: building loops and drops, opening a loop back; bare seal."""
    now = [0.0]
    cover = CoverTraffic(MemoryMessageStore(), rng=random.Random(1))
    cover.configure(100_000, lambda: now[0])
    cover.load()
    home, key = ["127.0.0.1:1"], PrivateKey.generate().public_key
    plain = bytes(envelope_size() - 80)
    built: list[CoverDeposit] = []

    def build() -> float:  # CPU seconds for ``count`` envelopes
        built.clear()
        start = time.process_time()
        while len(built) < count:
            now[0] += cover.wait(now[0])
            built.extend(cover.due(now[0], home))
        return (time.process_time() - start) * count / len(built)

    def open_loops() -> float:  # CPU seconds for ``count`` loops opened
        loops = [d.envelope for d in built if d.loop_id is not None]
        start = time.process_time()
        for envelope in loops:
            cover.arrived(envelope, now[0])
        return (time.process_time() - start) * count / max(1, len(loops))

    runs = {  # in this order in every round: the loops opened are the round's
        "build (loops and drops)": build,
        "open a loop back": open_loops,
        "bare seal, same size": partial(timed, lambda _: seal(key, plain), count),
    }
    build()
    open_loops()
    rounds = interleaved_rounds(runs, repeats)
    assert cover.counters["loops_returned"] > 0
    return {label: Row(label, count, rounds[label]) for label in runs}


def cover_section(argv: list[str], load: str, count: int, repeats: int) -> str:
    start, end = markers(COVER_NAME)
    cpu = cover_cpu(count, repeats)
    build, back = 1 / cpu["build (loops and drops)"].best, 1 / cpu["open a loop back"].best
    lines = [
        start,
        "## Cover traffic: bandwidth and CPU per user (issue 18, item 3)",
        "",
        *run_lines(NAME, argv, f"load average at start {load}", load_at_end()),
        f"- Envelopes are {envelope_size()} bytes (a real short message's size class). "
        "Rates: the scheduler run over one simulated day per budget (fill 0.8, half loops, "
        "no real mail: real mail would take drop slots and add nothing); the budget is a hard "
        "cap over a window that holds 128 envelopes (at least 60 s), slots past it are "
        "skipped. Up: deposits; down: "
        "loops pushed back by the home relay; drops stay at a relay until it expires them "
        "(30 days by default): kept per user = 30 x the daily figure. Deposit framing over "
        "the Noise link (about 40 bytes) is not counted.",
        f"- CPU: best of {repeats} interleaved rounds of {count:,} envelopes, process time of "
        "one thread. Per hour = envelopes per hour x (build + half of them opened back); "
        "the trio task, the link's encryption and the relay's own work are not included.",
        "",
        "| budget (B/s) | envelopes/s | up (B/s) | down (B/s) | drops at a relay per day "
        "| cap window, slots skipped | CPU per hour (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for budget in COVER_BUDGETS:
        day = cover_day(budget)
        per_hour = day["envelopes"] * 3600 * (build + back / 2)
        lines.append(
            f"| {budget:,}{' (default on)' if budget == DEFAULT_COVER_BUDGET else ''} "
            f"| {day['envelopes']:.3f} | {day['up']:,.1f} | {day['down']:,.1f} "
            f"| {day['drops_day'] / 1e6:,.1f} MB | {day['window']:,.0f} s, {day['skipped']:.2%} "
            f"| {per_hour:.2f} |"
        )
    lines += [
        "",
        "| operation | µs per envelope (best) | median (µs) |",
        "|---|---:|---:|",
        *(f"| {r.label} | {_us(1 / r.best)} | {_us(1 / r.median)} |" for r in cpu.values()),
        end,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = arg_parser(__doc__)
    parser.add_argument("--packets", type=int, default=500, help="Sphinx peels per round")
    parser.add_argument("--samples", type=int, default=300, help="3-hop messages timed")
    parser.add_argument("--tokens", type=int, default=40, help=f"per round, a multiple of {BATCH}")
    parser.add_argument("--proofs", type=int, default=48, help="ring-8 proofs per round")
    parser.add_argument("--deposits", type=int, default=300, help="onion and direct deposits")
    parser.add_argument("--repeats", type=int, default=5, help="rounds per implementation")
    parser.add_argument("--case", choices=("all", "cover"), default="all", help="what to run")
    args = parser.parse_args(argv)
    if args.tokens < BATCH or args.tokens % BATCH:
        parser.error(f"--tokens must be a positive multiple of {BATCH}")
    load = load_averages()
    publish(COVER_NAME, cover_section(argv, load, 2 * args.packets, args.repeats), args)
    if args.case == "cover":
        return
    cases = sphinx_cases(args.packets)
    for bits in (2048, 3072):
        cases |= token_cases(bits, args.tokens)
    cases |= shop_cases(args.tokens)
    cases |= proof_cases(args.proofs)
    cases |= put_proof_cases(args.proofs)
    results = measure(cases, args.repeats)
    latency = three_hops(args.samples)
    onion = deposits(args.deposits)
    publish(NAME, section(results, latency, onion, args, argv, load), args)


if __name__ == "__main__":
    main()
