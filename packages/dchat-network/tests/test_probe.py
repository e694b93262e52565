"""Relay probes: the challenge, the relay's answer, the prober's book and the trio driver."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import MailboxId, NodeId
from dchat_crypto import SigningKey
from dchat_network import (
    ProbeError,
    Prober,
    ProbeTarget,
    RelayHost,
    RelayServer,
    listing_targets,
    run_prober,
)
from dchat_network.lowlevel import (
    DeliveryReceipt,
    ProbeChallenge,
    ReceiptBook,
    RelayProbe,
    RelayProbeAnswer,
    answer_probe,
    decode_relay_message,
    encode_relay_message,
    probe_once,
)
from dchat_testing import MemoryMailboxStore, wait_until_async

VALIDATOR = SigningKey.generate()
RELAY = SigningKey.generate()
RELAY_ID = NodeId.derive(RELAY.public_key.to_bytes())
NOW = 1_800_000_000_000
ACCOUNT = b"\xa1" * 32
WAIT = 10


def target(port: int = 1, node: NodeId = RELAY_ID, account: bytes = ACCOUNT) -> ProbeTarget:
    return ProbeTarget(account, "127.0.0.1", port, node)


def nonces() -> Callable[[int], bytes]:
    counter = itertools.count()
    return lambda n: next(counter).to_bytes(n, "big")


# -- the challenge and the answer ----------------------------------------------------


def test_a_relay_answers_a_fresh_challenge_and_the_prober_counts_it() -> None:
    prober = Prober(VALIDATOR, random_bytes=nonces())
    challenge = prober.challenge(target(), 7, NOW)
    signature = answer_probe(RELAY, challenge.to_bytes(), NOW + 50_000)
    assert prober.answered(challenge, RELAY.public_key.to_bytes(), signature, NOW + 100)
    assert prober.scores(7) == [(ACCOUNT, 10_000, 0)]
    assert prober.outstanding == 0


def test_a_challenge_round_trips_and_one_changed_bit_is_refused() -> None:
    challenge = ProbeChallenge.create(VALIDATOR, RELAY_ID, 3, b"n" * 16, NOW)
    raw = challenge.to_bytes()
    assert ProbeChallenge.from_bytes(raw) == challenge
    forged = ProbeChallenge(
        challenge.relay, challenge.prober, 4, challenge.nonce, NOW, challenge.signature
    )
    with pytest.raises(ProbeError, match="signature"):
        answer_probe(RELAY, forged.to_bytes(), NOW)


def test_the_relay_refuses_a_stale_or_foreign_challenge() -> None:
    stale = ProbeChallenge.create(VALIDATOR, RELAY_ID, 3, b"n" * 16, NOW - 61_000)
    with pytest.raises(ProbeError, match="fresh"):
        answer_probe(RELAY, stale.to_bytes(), NOW)
    other = ProbeChallenge.create(VALIDATOR, NodeId(b"\x01" * 32), 3, b"n" * 16, NOW)
    with pytest.raises(ProbeError, match="another relay"):
        answer_probe(RELAY, other.to_bytes(), NOW)


@given(st.binary(max_size=300))
def test_garbage_is_a_typed_probe_error(data: bytes) -> None:
    with pytest.raises(ProbeError):
        answer_probe(RELAY, data, NOW)


# -- the prober's book -------------------------------------------------------------


def test_a_wrong_late_or_replayed_answer_does_not_count() -> None:
    prober = Prober(VALIDATOR, timeout_ms=5_000, random_bytes=nonces())
    key = RELAY.public_key.to_bytes()
    impostor = SigningKey.generate()
    wrong = prober.challenge(target(), 1, NOW)
    assert not prober.answered(wrong, key, b"\0" * 64, NOW)
    # Signed by another key whose node id is not the directory's: fails.
    late_sig_challenge = prober.challenge(target(), 1, NOW)
    impostor_sig = impostor.sign(b"dchat-probe-answer-v1\x00" + late_sig_challenge.to_bytes())
    assert not prober.answered(
        late_sig_challenge, impostor.public_key.to_bytes(), impostor_sig, NOW
    )
    late = prober.challenge(target(), 1, NOW)
    good = answer_probe(RELAY, late.to_bytes(), NOW)
    assert not prober.answered(late, key, good, NOW + 5_001)
    # The same (good) answer again: the challenge is no longer outstanding.
    assert not prober.answered(late, key, good, NOW + 10)
    passed = prober.challenge(target(), 1, NOW)
    assert prober.answered(passed, key, answer_probe(RELAY, passed.to_bytes(), NOW), NOW + 10)
    assert not prober.answered(passed, key, answer_probe(RELAY, passed.to_bytes(), NOW), NOW)
    assert prober.scores(1) == [(ACCOUNT, 10_000 * 1 // 4, 0)]


def test_the_report_is_due_once_late_in_the_epoch_and_a_convicted_relay_scores_zero() -> None:
    prober = Prober(VALIDATOR, random_bytes=nonces())
    key = RELAY.public_key.to_bytes()
    other = b"\x02" * 32
    for account in (ACCOUNT, other):
        c = prober.challenge(target(account=account), 5, NOW)
        prober.answered(c, key, answer_probe(RELAY, c.to_bytes(), NOW), NOW)
    prober.failed(prober.challenge(target(account=other), 5, NOW))
    assert prober.take_report(5, 14, 20) is None  # before three quarters of the epoch
    prober.convict(5, ACCOUNT)
    assert prober.take_report(5, 15, 20) == [(other, 5_000, 0), (ACCOUNT, 0, 0)]
    assert prober.take_report(5, 19, 20) is None  # once only
    assert prober.take_report(6, 19, 20) is None  # nothing probed


def _claimed(receipted: int, claimed: int) -> tuple[ProbeTarget, ReceiptBook]:
    """A relay's book holding ``receipted`` receipted envelopes, claimed as ``claimed``."""
    book = ReceiptBook(bytes(RELAY_ID))
    owner = SigningKey(b"\x05" * 32)
    mailbox = bytes(MailboxId.derive(owner.public_key.to_bytes()))
    ids = [bytes([i]) * 32 for i in range(receipted)]
    book.handed(mailbox, ids)
    book.take(mailbox, DeliveryReceipt.sign(owner, bytes(RELAY_ID), ids).to_bytes())
    batch = book.seal()
    assert batch is not None
    return ProbeTarget(ACCOUNT, "127.0.0.1", 1, RELAY_ID, (batch.root, claimed)), book


def _audit(prober: Prober, relay: ProbeTarget, book: ReceiptBook, epoch: int) -> bool:
    c = prober.challenge(relay, epoch, NOW)
    prober.answered(c, RELAY.public_key.to_bytes(), answer_probe(RELAY, c.to_bytes(), NOW), NOW)
    index = prober.audit_index(relay)
    assert index is not None
    assert relay.batch is not None
    return prober.audited(relay, epoch, index, book.answer(relay.batch[0], index))


def test_a_batch_counts_as_delivered_after_enough_audits_once_in_the_epoch_it_is_proven() -> None:
    prober = Prober(VALIDATOR, audits=3, random_bytes=nonces())
    relay, book = _claimed(7, 7)
    for _ in range(2):
        assert _audit(prober, relay, book, 4)
    assert prober.scores(4) == [(ACCOUNT, 10_000, 0)]  # two audits: not proven yet
    assert _audit(prober, relay, book, 5)
    assert _audit(prober, relay, book, 5)
    assert prober.scores(5) == [(ACCOUNT, 10_000, 7)]  # proven in epoch 5, counted once
    assert _audit(prober, relay, book, 6)
    assert prober.scores(6) == [(ACCOUNT, 10_000, 0)]  # the same root is not counted again


def test_a_batch_proven_after_the_report_counts_in_the_next_epoch() -> None:
    prober = Prober(VALIDATOR, audits=1, random_bytes=nonces())
    relay, book = _claimed(3, 3)
    earlier, earlier_book = _claimed(1, 1)
    assert _audit(prober, earlier, earlier_book, 8)  # an earlier batch, proven in epoch 8
    assert prober.take_report(8, 15, 20) == [(ACCOUNT, 10_000, 1)]
    assert _audit(prober, relay, book, 8)  # proven late in epoch 8: after its report
    assert prober.take_report(9, 15, 20) is None  # nothing probed in 9 yet
    assert _audit(prober, relay, book, 9)  # counted once only
    assert prober.take_report(9, 15, 20) == [(ACCOUNT, 10_000, 3)]


def test_a_padded_batch_is_convicted_and_delivers_nothing() -> None:
    prober = Prober(VALIDATOR, audits=1, random_bytes=nonces())
    relay, book = _claimed(4, 64)  # 60 of its 64 claimed leaves are not backed
    held = [_audit(prober, relay, book, 2) for _ in range(8)]
    assert not all(held)
    assert prober.scores(2) == [(ACCOUNT, 0, 0)]


def test_a_directory_listing_yields_one_target_per_account() -> None:
    endpoint = f"{RELAY_ID}@127.0.0.1:7000"
    one = ProbeTarget.from_directory(ACCOUNT, endpoint)
    assert (one.host, one.port, one.node) == ("127.0.0.1", 7000, RELAY_ID)
    prober = Prober(VALIDATOR)
    assert prober.targets_of([one, target(port=9)]) == [one]
    for bad in ("127.0.0.1:7000", f"{RELAY_ID}@127.0.0.1:x", "nd-zz@h:1", f"{RELAY_ID}@h:0"):
        with pytest.raises(ProbeError):
            ProbeTarget.from_directory(ACCOUNT, bad)


# -- the relay server and the codec -------------------------------------------------


def test_the_server_answers_probes_only_with_a_node_key() -> None:
    server = RelayServer(MemoryMailboxStore(), lambda env: None)
    challenge = ProbeChallenge.create(VALIDATOR, RELAY_ID, 1, b"n" * 16, NOW)
    request = encode_relay_message(RelayProbe(9, challenge.to_bytes()))
    reply = server.handle(b"\0" * 32, request, NOW / 1000)
    assert reply.close
    assert getattr(reply.message, "code", "") == "unsupported"
    server.node_key = RELAY
    reply = server.handle(b"\0" * 32, request, NOW / 1000)
    assert isinstance(reply.message, RelayProbeAnswer)
    assert reply.message.rid == 9
    assert decode_relay_message(reply.data) == reply.message
    assert server.probes == 1
    stale = server.handle(b"\0" * 32, request, NOW / 1000 + 120)
    assert stale.close
    assert getattr(stale.message, "code", "") == "bad_probe"


# -- over trio ---------------------------------------------------------------------


@asynccontextmanager
async def relay_host(key: SigningKey, clock: list[float]) -> AsyncIterator[int]:
    server = RelayServer(MemoryMailboxStore(), lambda env: None)

    async def run(call: Callable[[], object]) -> object:
        return call()

    host = RelayHost(server, run, lambda: clock[0])  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            _, port = await nursery.start(host.serve, "127.0.0.1", 0, key)
        yield port
        nursery.cancel_scope.cancel()


async def test_probe_once_passes_against_a_live_relay_and_fails_against_an_impostor() -> None:
    clock = [NOW / 1000]
    prober = Prober(VALIDATOR)
    async with relay_host(RELAY, clock) as port:
        with trio.fail_after(WAIT):
            assert await probe_once(prober, target(port), 0, lambda: NOW, 5.0)
    async with relay_host(SigningKey.generate(), clock) as port:
        with trio.fail_after(WAIT):  # the link proves another node id: no probe is sent
            assert not await probe_once(prober, target(port), 0, lambda: NOW, 5.0)
    with trio.fail_after(WAIT):  # nothing listens any more
        assert not await probe_once(prober, target(port), 0, lambda: NOW, 2.0)
    assert prober.scores(0) == [(ACCOUNT, 10_000 // 3, 0)]


class Book:
    """A validator book stand-in: the epoch moves one block per look; reports are kept."""

    def __init__(self) -> None:
        self.offsets = iter(range(100))
        self.reports: list[tuple[int, list[tuple[bytes, int]]]] = []

    def probe_position(self) -> tuple[int, int, int] | None:
        return (2, next(self.offsets), 8)

    def file_uptime(self, epoch: int, scores: list[tuple[bytes, int, int]]) -> list[Exception]:
        self.reports.append((epoch, scores))
        return [ValueError("refused")]  # logged, not fatal


async def test_run_prober_files_a_report_late_in_the_epoch() -> None:
    clock = [NOW / 1000]
    book = Book()

    async def targets(port: int) -> list[ProbeTarget]:
        return [target(port)]

    async def broken() -> list[ProbeTarget]:
        raise KeyError("token")

    async with relay_host(RELAY, clock) as port:
        with trio.fail_after(WAIT):
            async with trio.open_nursery() as nursery:
                prober = Prober(VALIDATOR)
                nursery.start_soon(
                    lambda: run_prober(
                        prober, lambda: targets(port), book, lambda: NOW, interval=0.01
                    )
                )
                await wait_until_async(lambda: book.reports, timeout=WAIT, what="a report")
                nursery.cancel_scope.cancel()
    assert book.reports == [(2, [(ACCOUNT, 10_000, 0)])]
    other = Book()
    with trio.move_on_after(0.2):  # a reader that fails: nothing listed, nothing reported
        await run_prober(Prober(VALIDATOR), broken, other, lambda: NOW, interval=0.01)
    assert other.reports == []


def test_a_listing_yields_the_probeable_entries_only() -> None:
    listing = {
        "height": 9,
        "relays": [
            {
                "identity": "00" * 32,
                "endpoint": f"{RELAY_ID}@127.0.0.1:7000",
                "stake_ref": "a1" * 32,
            },
            {"identity": "01" * 32, "endpoint": "127.0.0.1:7001", "stake_ref": "a2" * 32},
            {"identity": "02" * 32, "endpoint": f"{RELAY_ID}@h:1", "stake_ref": "zz"},
            {"identity": "03" * 32},
            "junk",
        ],
    }
    assert listing_targets(listing) == [ProbeTarget(ACCOUNT, "127.0.0.1", 7000, RELAY_ID)]
    assert listing_targets(["not", "a", "listing"]) == []
    assert listing_targets({"relays": 5}) == []
