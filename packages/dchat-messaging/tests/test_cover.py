"""Cover traffic in UserMessaging: envelopes like real ones, loops recognised, books kept."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_messaging import Content, SealedEnvelope
from dchat_messaging.lowlevel import (
    LOOP_TIMEOUT,
    CoverDeposit,
    CoverTraffic,
    decode_cover,
    encode_cover,
    envelope_size,
)
from dchat_messaging.testing import MemoryMessageStore
from dchat_privacy.lowlevel import CoverInputError
from dchat_testing import AGENT_T0, AgentNode, agent_pair

T0 = AGENT_T0
HOME = ["127.0.0.1:7400"]
BUDGET = 2000  # bytes/s: about 1.3 envelopes a second at the default fill


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _cover(budget: int = BUDGET, store: MemoryMessageStore | None = None) -> CoverTraffic:
    cover = CoverTraffic(store or MemoryMessageStore(), rng=random.Random(4))
    cover.configure(budget, Clock())
    cover.load()
    return cover


def _until_due(cover: CoverTraffic, kind: str) -> list[CoverDeposit]:
    """Step the clock to each slot until one of ``kind`` is built; everything built."""
    built: list[CoverDeposit] = []
    clock = cover.clock
    assert isinstance(clock, Clock)
    while True:
        clock.now += cover.wait(clock.now)
        out = cover.due(clock.now, HOME)
        built += out
        if any((d.loop_id is not None) == (kind == "loop") for d in out):
            return built


def _send(node: AgentNode, to: str, text: str, at: float) -> list[tuple[bytes, bytes]]:
    content = Content.text_message(text, now_ms=int(at * 1000))
    node.agent.send_as(node.agent.contacts.find(to), content, now=at)
    for engine, device in node.agent.bundles_due(at):
        node.agent.bundle_received(engine, device, node.bundles[bytes(device.mailbox)], now=at)
    entries = list(node.agent.outbox.due(at + 1, 1000))
    for entry in entries:
        node.agent.delivered(entry.message_id)
    return node.agent.route(entries, at)


def test_cover_envelopes_are_exactly_as_long_as_a_real_short_message() -> None:
    alice, bob = agent_pair()
    first = _send(bob, "alice", "hello", T0)  # session setup: larger, and rare
    assert {len(e) for _, e in first} != {envelope_size()}
    alice.agent.accept_many(alice.engine, [e for _, e in first], now=T0)
    real = _send(alice, "bob", "a short text in the session", T0)  # with its token and tag gifts
    assert len(real) == 4
    assert {len(e) for _, e in real} == {envelope_size()}
    cover = _cover()
    built = _until_due(cover, "loop") + _until_due(cover, "drop")
    assert {len(d.envelope) for d in built} == {envelope_size()}


def test_a_loop_goes_to_our_cover_tag_and_a_drop_to_a_fresh_mailbox() -> None:
    cover = _cover()
    built = _until_due(cover, "loop") + _until_due(cover, "drop") + _until_due(cover, "drop")
    watched = {tag.mailbox for tag in cover.watch(cover.clock())}
    assert len(watched) == 3  # epochs e-1, e, e+1
    loops = [d for d in built if d.loop_id is not None]
    drops = [d for d in built if d.loop_id is None]
    for deposit in loops:
        assert deposit.mailbox == cover.tag(cover.clock()).mailbox
        assert deposit.relay in HOME
        sealed = SealedEnvelope.from_bytes(deposit.envelope)
        assert bytes(sealed.mailbox) == deposit.mailbox
    mailboxes = [d.mailbox for d in drops]
    assert len(set(mailboxes)) == len(mailboxes)  # a throwaway tag each
    assert not set(mailboxes) & watched
    assert cover.token_for(next(iter(watched))) is not None  # a loop may carry the tag's token


def test_a_loop_that_comes_back_is_timed_and_one_that_does_not_is_missing() -> None:
    cover = _cover()
    clock = cover.clock
    assert isinstance(clock, Clock)
    loops = [d for d in _until_due(cover, "loop") if d.loop_id is not None]
    clock.now += 0.25
    cover.arrived(loops[0].envelope, clock.now)
    status = cover.status()
    assert status["loops_returned"] == 1
    assert status["loop_rtt_last_ms"] == pytest.approx(250.0)
    cover.arrived(loops[0].envelope, clock.now)  # a relay replays it: not a second return
    assert cover.status()["loops_unknown"] == 1
    lost = [d for d in _until_due(cover, "loop") if d.loop_id is not None]
    assert lost
    clock.now += LOOP_TIMEOUT + 1
    cover.due(clock.now, HOME)
    assert cover.status()["loops_missing"] == len(lost)
    assert cover.status()["loops_returned"] == 1


def test_a_loop_the_relay_refused_is_not_counted_missing() -> None:
    cover = _cover()
    clock = cover.clock
    assert isinstance(clock, Clock)
    loops = [d for d in _until_due(cover, "loop") if d.loop_id is not None]
    cover.settled(loops, ["RelayUnavailableError"] * len(loops))
    clock.now += LOOP_TIMEOUT + 1
    cover.due(clock.now, HOME)
    assert cover.status()["loops_missing"] == 0
    assert cover.status()["failed"] == len(loops)


def test_foreign_and_malformed_arrivals_are_counted_not_raised() -> None:
    cover = _cover()
    tag = cover.tag(cover.clock()).mailbox
    other = _cover()  # another node's loop, to a tag of ours
    (loop,) = [d for d in _until_due(other, "loop") if d.loop_id is not None][:1]
    forged = SealedEnvelope.from_bytes(loop.envelope)
    for data in (b"", b"\xff" * 40, SealedEnvelope(forged.mailbox, forged.ciphertext).to_bytes()):
        cover.arrived(data, cover.clock())
    cover.arrived(SealedEnvelope(type(forged.mailbox)(tag), b"x" * 300).to_bytes(), cover.clock())
    assert cover.status()["loops_unknown"] == 4
    assert cover.status()["loops_returned"] == 0


def test_real_mail_takes_drop_slots_through_route() -> None:
    _alice, bob = agent_pair()
    bob.agent.cover.configure(BUDGET, Clock())
    bob.agent.cover.load()
    _send(bob, "alice", "hello", T0)
    status = bob.agent.cover.status()
    assert status["on"] is True
    scheduler = bob.agent.cover.scheduler
    assert scheduler is not None
    assert scheduler.counters["real"] >= 1  # the text (and the token and tag gifts)


def test_the_budget_set_at_run_time_is_kept_and_wins_over_the_setting() -> None:
    store = MemoryMessageStore()
    cover = _cover(0, store)
    assert cover.status()["on"] is False
    assert cover.watch(T0) == []
    assert cover.wait(T0) == float("inf")
    cover.set_budget(5000)
    cover.save()
    assert (cover.status()["on"], cover.status()["source"]) == (True, "set")
    tags = [t.mailbox for t in cover.watch(T0)]
    again = _cover(0, store)  # a restart: the node's setting is still off
    assert (again.budget, again.status()["on"]) == (5000, True)
    assert [t.mailbox for t in again.watch(T0)] == tags  # the same secret
    again.set_budget(0)
    again.save()
    assert _cover(9000, store).budget == 0  # "off" set by the user stays off


@pytest.mark.parametrize("budget", [-1, 5, 200_000, True])
def test_a_bad_budget_is_a_typed_error(budget: int) -> None:
    cover = _cover(0)
    with pytest.raises(CoverInputError):
        cover.set_budget(budget)
    with pytest.raises(CoverInputError):
        CoverTraffic(MemoryMessageStore()).configure(budget, Clock())


def test_cover_tags_are_drained_at_every_home_relay() -> None:
    node = AgentNode("carol", {})
    node.agent.cover.configure(BUDGET, Clock())
    node.agent.cover.load()
    relays = ["127.0.0.1:7400", "127.0.0.1:7401"]
    links = node.agent.mailbox_links(relays, now=T0)
    cover = {t.mailbox for t in node.agent.cover.watch(T0)}
    boxes = {(box.mailbox, relay) for box, relay in links.values() if hasattr(box, "handler")}
    assert {(m, r) for m in cover for r in relays} <= boxes


def test_the_cover_payload_round_trips_and_refuses_other_shapes() -> None:
    assert decode_cover(encode_cover(1, b"i" * 16, 10)) == (1, b"i" * 16)
    bad = [
        canonical_encode({"v": 1, "cov": 1, "id": b"i" * 16, "pad": b"\x01"}),  # pad not zero
        canonical_encode({"v": 2, "cov": 1, "id": b"i" * 16, "pad": b""}),
        canonical_encode({"v": 1, "cov": 3, "id": b"i" * 16, "pad": b""}),
        canonical_encode({"v": 1, "cov": 1, "id": b"i" * 15, "pad": b""}),
        canonical_encode({"v": 1, "cov": 1, "id": b"i" * 16}),
    ]
    assert [decode_cover(b) for b in bad] == [None] * len(bad)


@given(st.binary(max_size=300))
def test_decode_cover_never_raises(data: bytes) -> None:
    assert decode_cover(data) is None or isinstance(decode_cover(data), tuple)
