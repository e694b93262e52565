"""The anchor engine alone: Merkle root, order lists, per-device forks and gaps, settling.

No chain here: ``settle`` takes the chain's record as the node's light client
gave it; the chain end to end is dchat-testing's ``test_group_anchor.py``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import DecodeLimits, canonical_decode, canonical_encode
from dchat_crypto import SigningKey
from dchat_identity import ContactCard, Identity
from dchat_messaging._anchor_book import AnchorBook, Held, received_grace
from dchat_messaging._group_order import (
    MAX_BATCH,
    Evidence,
    OrderBatch,
    OrderEntry,
    decode_evidence,
    encode_evidence,
    order_channel,
    order_root,
)
from dchat_messaging._groups import GroupState, GroupUpdate, apply_update, read_header
from dchat_messaging.lowlevel import GroupError

S, D, G = b"s" * 32, b"d" * 32, b"g" * 32
SEQ = SigningKey(b"q" * 32)
CH = order_channel(b"o" * 32, G)


def _h(i: int) -> bytes:
    return hashlib.sha256(bytes([i])).digest()


def _held(q: int, prev: bytes, tag: bytes = b"") -> tuple[bytes, Held]:
    wire = b"wire" + bytes([q]) + tag
    return hashlib.sha256(wire).digest(), Held(S, D, q, prev, wire)


def _chain(n: int) -> list[tuple[bytes, Held]]:
    out, prev = [], bytes(32)
    for q in range(1, n + 1):
        h, m = _held(q, prev)
        out.append((h, m))
        prev = h
    return out


def _batch(entries: list[OrderEntry], first: int = 0, key: SigningKey = SEQ) -> OrderBatch:
    by = key.public_key.to_bytes()
    return OrderBatch(G, CH, first, tuple(entries), by).signed(key)


def _entries(held: list[tuple[bytes, Held]]) -> list[OrderEntry]:
    return [OrderEntry(m.sender, m.device, m.seq, h) for h, m in held]


# -- the Merkle root ---------------------------------------------------------------------


def test_the_root_commits_to_every_entry_and_its_position() -> None:
    entries = [OrderEntry(S, D, q, _h(q)) for q in range(1, 6)]
    root = order_root(entries)
    assert root != order_root(list(reversed(entries)))
    assert root != order_root(entries[:4])
    assert root != order_root([*entries[:4], replace(entries[4], seq=9)])
    assert order_root(entries[:1]) == entries[0].leaf()
    left, right = order_root(entries[:4]), order_root(entries[4:])  # RFC 6962 split: 4 + 1
    assert root == hashlib.sha256(b"\x01" + left + right).digest()
    with pytest.raises(ValueError, match="at least one"):
        order_root([])


# -- group.ord ----------------------------------------------------------------------------


def test_a_list_round_trips_and_only_its_sequencer_signed_it() -> None:
    batch = _batch([OrderEntry(S, D, 1, _h(1)), OrderEntry(S, D, 2, _h(2))], first=7)
    parsed = OrderBatch.from_bytes(batch.to_bytes())
    assert parsed == batch
    assert parsed.last == 8
    parsed.verify(SEQ.public_key)
    forged = replace(batch, entries=tuple(reversed(batch.entries)))
    with pytest.raises(GroupError) as caught:
        forged.verify(SEQ.public_key)
    assert caught.value.code == "bad_signature"
    with pytest.raises(GroupError):
        batch.verify(SigningKey(b"x" * 32).public_key)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.update(e=[]),
        lambda m: m.update(e=[m["e"][0], m["e"][0]]),  # one message twice
        lambda m: m.update(e=[[S, D, 0, _h(1)]]),  # device numbers start at 1
        lambda m: m.update(e=[[S, D, 1, b"short"]]),
        lambda m: m.update(v=2),
        lambda m: m.update(extra=1),
        lambda m: m.update(e=[[S, D, q, _h(q % 256)] for q in range(1, MAX_BATCH + 2)]),
    ],
)
def test_a_malformed_list_is_a_typed_error(mutate: object) -> None:
    batch = _batch([OrderEntry(S, D, 1, _h(1))])
    raw = {**batch._unsigned(), "sig": batch.signature}
    mutate(raw)  # type: ignore[operator]
    with pytest.raises(GroupError) as caught:
        OrderBatch.from_bytes(canonical_encode(raw))
    assert caught.value.code == "malformed"


@given(st.binary(max_size=2048))
def test_the_decoders_take_any_bytes_as_data_or_a_typed_error(data: bytes) -> None:
    for decode in (OrderBatch.from_bytes, decode_evidence):
        codes = []
        try:
            decode(data)
        except GroupError as exc:
            codes.append(exc.code)
        assert codes in ([], ["malformed"])


@given(st.lists(st.tuples(st.integers(1, 2**40), st.binary(min_size=32, max_size=32)),
                min_size=1, max_size=40, unique_by=lambda t: t[0]))  # fmt: skip
def test_any_list_round_trips(items: list[tuple[int, bytes]]) -> None:
    hashes = {h for _, h in items}
    entries = [OrderEntry(S, D, q, h) for q, h in items]
    if len(hashes) != len(entries):
        return
    batch = _batch(entries, first=3)
    assert OrderBatch.from_bytes(batch.to_bytes()) == batch


def test_a_full_list_fits_one_control_and_round_trips() -> None:
    batch = _batch([OrderEntry(S, D, q, _h(q % 256) if q < 256 else _h(0)[:31] + b"x")
                    for q in range(1, MAX_BATCH + 1)])  # fmt: skip
    assert len(batch.to_bytes()) < 48_000
    assert OrderBatch.from_bytes(batch.to_bytes()) == batch


def test_the_root_known_answer() -> None:
    entry = OrderEntry(b"s" * 32, b"d" * 32, 1, hashlib.sha256(b"\x01").digest())
    assert order_root([entry]).hex() == (
        "a92e08a2d35601ad7ce76e553e551a0f2cfe090fbe7ab6664dbfa913eddd17af"
    )


def test_evidence_round_trips_and_refuses_unknown_kinds() -> None:
    evidence = Evidence(G, "fork", b"wire")
    assert decode_evidence(encode_evidence(evidence)) == evidence
    with pytest.raises(GroupError):
        decode_evidence(canonical_encode({"v": 1, "g": G, "k": "gossip", "a": b""}))


# -- per-device checks ------------------------------------------------------------------


def test_a_gap_is_found_and_closed_when_the_message_arrives() -> None:
    book = AnchorBook()
    m1, m2, m3 = _chain(3)
    assert book.note(*m1, 0) == []
    [gap] = book.note(*m3, 0)
    assert (gap.kind, gap.detail["missing"]) == ("gap", [2])
    assert book.missing == {(S, D, 2)}
    assert book.note(*m2, 0) == []
    assert book.missing == set()


def test_two_messages_for_one_number_are_a_fork_with_both_signed_wires() -> None:
    book = AnchorBook()
    (h1, m1), _ = _chain(2)
    other = _held(1, bytes(32), b"other")
    book.note(h1, m1, 0)
    [fork] = book.note(*other, 5)
    assert fork.kind == "equivocation"
    assert fork.detail["evidence"] == "fork"
    assert fork.evidence is not None
    assert {fork.evidence["a"], fork.evidence["b"]} == {m1.wire, other[1].wire}
    assert [t for t, _ in fork.tell] == ["fork", "fork"]
    assert len(book.evidence) == 1
    book.note(*other, 6)  # seen again: no second record
    assert len(book.evidence) == 1


def test_the_sequencer_never_lists_both_versions_of_a_fork() -> None:
    book = AnchorBook()
    (h1, m1), _ = _chain(2)
    book.note(h1, m1, 0)
    book.note(*_held(1, bytes(32), b"other"), 0)
    assert [e.hash for e in book.due(10_000, 64, 1)] == [h1]


def test_a_previous_hash_that_does_not_match_is_a_fork() -> None:
    book = AnchorBook()
    (h1, m1), _ = _chain(2)
    book.note(h1, m1, 0)
    bad = _held(2, _h(99))
    [fork] = book.note(*bad, 0)
    assert fork.evidence is not None
    assert fork.evidence["why"].startswith("a message whose previous")


# -- batches and the chain ----------------------------------------------------------------


def _record(batch: OrderBatch, root: bytes | None = None) -> tuple[int, bytes, bytes, int]:
    return batch.last, root or batch.root(), batch.by, 12


def test_a_batch_matching_the_chain_anchors_and_a_missing_message_is_shown() -> None:
    book = AnchorBook()
    chain = _chain(3)
    for h, m in chain[:2]:
        book.note(h, m, 0)
    batch = _batch(_entries(chain))
    assert book.receive(batch, 0) == []
    assert book.settle(CH, 0, None, 0) == []  # not on the chain yet: it waits
    assert book.unverified
    [anchored] = book.settle(CH, 0, _record(batch), 0)
    assert anchored.kind == "anchored"
    assert anchored.detail["last"] == 2
    assert book.pending == []
    assert book.next_first() == 3
    assert {o for *_, o in book.listed.values()} == {0, 1, 2}
    assert book.missing == {(S, D, 3)}  # anchored, never received


def test_a_list_whose_root_is_not_the_chains_is_evidence_against_the_sequencer() -> None:
    book = AnchorBook()
    chain = _chain(2)
    batch = _batch(_entries(chain))
    book.receive(batch, 0)
    [found] = book.settle(CH, 0, _record(batch, root=_h(7)), 0)
    assert found.detail["evidence"] == "order"
    assert found.evidence is not None
    assert found.evidence["a"] == batch.to_bytes()
    assert found.evidence["c"] == [0, 1, _h(7), 12]
    assert book.listed == {}  # nothing anchored by a list the chain does not hold


def test_an_anchored_list_naming_another_message_is_a_fork() -> None:
    book = AnchorBook()
    chain = _chain(1)
    mine = _held(1, bytes(32), b"mine")
    book.note(*mine, 0)
    batch = _batch(_entries(chain))
    book.receive(batch, 0)
    findings = book.settle(CH, 0, _record(batch), 0)
    fork = next(f for f in findings if f.kind == "equivocation")
    assert fork.evidence is not None
    assert (fork.evidence["a"], fork.evidence["b"]) == (mine[1].wire, batch.to_bytes())
    assert [t for t, _ in fork.tell] == ["fork"]  # our message; the list everyone has


def test_two_lists_signed_for_one_range_convict_the_sequencer_at_once() -> None:
    book = AnchorBook()
    chain = _chain(2)
    one = _batch(_entries(chain))
    two = _batch(list(reversed(_entries(chain))))
    assert book.receive(one, 0) == []
    [found] = book.receive(two, 0)
    assert found.detail["evidence"] == "order"
    assert found.evidence is not None
    assert {found.evidence["a"], found.evidence["b"]} == {one.to_bytes(), two.to_bytes()}


def test_a_replayed_list_is_ignored() -> None:
    book = AnchorBook()
    batch = _batch(_entries(_chain(2)))
    book.receive(batch, 0)
    book.settle(CH, 0, _record(batch), 0)
    assert book.receive(batch, 0) == []
    assert book.unverified == []


def test_the_sequencer_batches_by_count_or_time_one_range_at_a_time() -> None:
    book = AnchorBook()
    chain = _chain(3)
    for h, m in chain:
        book.note(h, m, 1000)
    assert book.due(2000, 64, 5000) == []
    assert len(book.due(2000, 2, 5000)) == 2
    assert len(book.due(6000, 64, 5000)) == 3
    batch = _batch(book.due(6000, 64, 5000))
    book.hold(batch, 6000)
    assert book.pending == []
    assert book.due(99_000, 1, 1) == []
    book.abandon(0)
    assert len(book.pending) == 3


def test_the_book_round_trips_through_its_stored_form() -> None:
    book = AnchorBook()
    chain = _chain(3)
    book.note(*chain[0], 0)
    book.note(*chain[2], 0)
    batch = _batch(_entries(chain))
    book.receive(batch, 0)
    book.settle(CH, 0, _record(batch, root=_h(1)), 0)
    book.granted.add(os.urandom(32))
    assert AnchorBook.decode(book.encode()) == book


# -- the group setting --------------------------------------------------------------------


def test_only_an_admin_anchors_and_only_on_an_admin_channel() -> None:
    admin, member = Identity.generate(), Identity.generate()
    cards = [
        ContactCard.issue(i, name=n, relay="127.0.0.1:1") for i, n in ((admin, "a"), (member, "m"))
    ]
    ids = [bytes(c.identity_id) for c in cards]
    state = GroupState.create(G, "t", cards[0])
    state = apply_update(
        state, GroupUpdate.make(state, ids[0], "add", [cards[1].to_bytes(), 0], admin.signing_key)
    )
    with pytest.raises(GroupError) as caught:
        apply_update(state, GroupUpdate.make(state, ids[1], "anchor", ids[1], member.signing_key))
    assert caught.value.code == "not_allowed"
    with pytest.raises(GroupError):
        apply_update(state, GroupUpdate.make(state, ids[0], "anchor", ids[1], admin.signing_key))
    on = apply_update(state, GroupUpdate.make(state, ids[0], "anchor", ids[0], admin.signing_key))
    assert on.anchor == ids[0]
    assert on.sequencer() == ids[0]
    assert GroupState.from_bytes(on.to_bytes()) == on
    assert state.hash() != on.hash()
    header = read_header(canonical_decode(on.header_bytes(), DecodeLimits(max_size=4096)))
    assert header.anchor == ids[0]  # the anchor is in what the hash covers (the header)
    assert GroupState.assemble(header, on.member_rows()).hash() == on.hash()  # an invitation
    assert "a" not in canonical_decode(state.header_bytes(), DecodeLimits(max_size=4096))
    off = apply_update(on, GroupUpdate.make(on, ids[0], "anchor", b"", admin.signing_key))
    assert off.anchor is None
    assert off.to_bytes().count(b"anchor") == 0


# -- the sequencer's crashes --------------------------------------------------------------

ME = SEQ.public_key.to_bytes()


def _proposed(n: int = 3) -> tuple[AnchorBook, OrderBatch]:
    """The sequencer's book after it signed a batch of ``n`` messages, before the chain."""
    book = AnchorBook()
    for h, m in _chain(n):
        book.note(h, m, 1000)
    batch = _batch(book.due(6000, 64, 5000))
    book.hold(batch, 6000)
    return book, batch


def _restart(book: AnchorBook) -> AnchorBook:
    return AnchorBook.decode(book.encode())


def test_a_list_the_chain_never_got_is_committed_again_the_same_after_a_crash() -> None:
    book, batch = _proposed()
    raw = batch.to_bytes()
    book = _restart(book)  # crashed before commit_order reached the chain
    assert book.settle(CH, 0, None, 7000) == []
    assert book.due(99_000, 1, 1) == []  # one range in flight: nothing new meanwhile
    assert book.resends(ME, 7000, 15_000) == []  # within the grace period
    assert book.resends(ME, 7000, 15_000, restarted=True) == [(True, raw)]
    assert book.resends(ME, 21_000, 15_000) == [(True, raw)]  # or after it
    assert book.resends(b"x" * 32, 21_000, 15_000) == []  # only our own lists
    assert book.retry(raw, 0, 21_000)  # its range is still the channel's next
    assert book.resends(ME, 22_000, 15_000) == []  # tried again just now
    book = _restart(book)
    [anchored] = book.settle(CH, 0, _record(batch), 23_000)
    assert anchored.kind == "anchored"
    assert book.resends(ME, 23_000, 15_000) == [(False, raw)]  # committed, never sent
    book.sent(raw)
    assert _restart(book).resends(ME, 99_000, 15_000, restarted=True) == []


def test_a_list_whose_range_the_channel_moved_past_is_dropped_and_rebatched() -> None:
    book, batch = _proposed()
    assert not book.retry(batch.to_bytes(), 5, 30_000)  # someone else's range took it
    assert book.unverified == []
    assert book.own == {}
    assert len(book.due(30_000, 64, 5000)) == 3  # its messages go into the next batch
    assert book.retry(batch.to_bytes(), 0, 30_000) is False  # dropped: never again


def test_our_unsent_list_beaten_on_the_chain_is_no_evidence_against_us() -> None:
    book, batch = _proposed()
    other = _batch(list(reversed(batch.entries)))
    assert book.settle(CH, 0, _record(other), 30_000) == []
    assert book.evidence == []
    assert book.unverified == []
    assert len(book.pending) == 3
    sent, ours = _proposed()
    sent.sent(ours.to_bytes())  # once sent to the members, a mismatch is evidence as before
    [found] = sent.settle(CH, 0, _record(other), 30_000)
    assert found.detail["evidence"] == "order"


def test_a_resent_list_changes_nothing_on_a_member_that_holds_it() -> None:
    book = AnchorBook()
    batch = _batch(_entries(_chain(2)))
    assert book.receive(batch, 0) == []
    assert book.receive(batch, 1) == []  # before the chain is read
    assert len(book.unverified) == 1
    book.settle(CH, 0, _record(batch), 2)
    before = book.encode()
    assert book.receive(batch, 3) == []  # after
    assert book.encode() == before


def test_a_book_stored_before_the_resend_key_reads_and_recovers_its_stuck_list() -> None:
    book, batch = _proposed()
    old = canonical_decode(book.encode(), DecodeLimits(max_size=1 << 20, max_depth=4))
    del old["o"]
    restored = AnchorBook.decode(canonical_encode(old))
    assert restored.own == {}
    assert restored.resends(ME, 7000, 15_000, restarted=True) == [(True, batch.to_bytes())]
    assert restored.retry(batch.to_bytes(), 0, 7000)
    assert restored.own  # from now on it is tracked until sent


# -- another admin's list that never reaches the chain -------------------------------------

HOSTILE = SigningKey(b"h" * 32)


def _waiting(n: int = 3) -> AnchorBook:
    """The sequencer's book holding ``n`` messages that arrived at 1 s, in no batch yet."""
    book = AnchorBook()
    for h, m in _chain(n):
        book.note(h, m, 1000)
    return book


def test_a_hostile_admins_list_never_committed_stops_holding_back_the_sequencer() -> None:
    book = _waiting()
    hostile = _batch(_entries(_chain(2)), first=0, key=HOSTILE)  # signed, sent, never committed
    assert book.receive(hostile, 2000) == []
    assert received_grace(5000) == 15_000
    assert book.due(16_000, 64, 5000, me=ME) == []  # within the grace: it may still land
    entries = book.due(17_000, 64, 5000, me=ME)  # 15 s after it arrived: we sequence past it
    assert [e.seq for e in entries] == [1, 2, 3]
    ours = _batch(entries, first=0)
    book.hold(ours, 17_000)
    assert book.due(99_000, 1, 1, me=ME) == []  # our own list: one in flight, as before
    book = _restart(book)  # the arrival time is stored
    assert book.due(17_000, 1, 1, me=ME) == []
    found = book.settle(CH, 0, _record(ours), 18_000)  # the chain holds ours at 0
    assert sorted(f.kind for f in found) == ["anchored", "equivocation"]
    assert book.evidence[0]["who"] == HOSTILE.public_key.to_bytes()
    assert book.unverified == []
    assert book.got == {}
    assert {v[3] for v in book.listed.values()} == {0, 1, 2}  # anchored once, by our list
    assert book.receive(hostile, 19_000) == []  # sent back as evidence: known, not kept again
    assert book.unverified == []


def test_a_slow_honest_admins_list_that_lands_within_the_grace_is_accepted() -> None:
    book = _waiting()
    honest = _batch(_entries(_chain(3)), first=0, key=HOSTILE)
    book.receive(honest, 2000)
    assert book.settle(CH, 0, None, 10_000) == []  # not on the chain yet (a slow read)
    assert book.due(10_000, 1, 1000, me=ME) == []  # the least grace is 10 s whatever the interval
    [anchored] = book.settle(CH, 0, _record(honest), 11_000)
    assert anchored.kind == "anchored"
    assert book.evidence == []
    assert book.pending == []
    assert book.due(99_000, 1, 1, me=ME) == []  # nothing to sequence again


def test_a_received_list_inside_a_verified_range_stops_waiting_at_once() -> None:
    book = _waiting(4)
    ours = _batch(_entries(_chain(4))[:2], first=0)
    inside = _batch(_entries(_chain(4))[2:], first=1, key=HOSTILE)  # first 1: inside [0, 1]
    book.hold(ours, 2000)
    book.receive(inside, 2000)
    book.settle(CH, 0, _record(ours), 3000)
    assert book.unverified == []  # never certifiable: no record starts at 1
    assert len(book.due(9000, 64, 5000, me=ME)) == 2


def test_received_lists_never_push_our_own_list_out() -> None:
    book, ours = _proposed()
    for first in range(1, 100):
        book.receive(_batch([OrderEntry(S, D, 1, _h(1))], first=first, key=HOSTILE), 7000)
    assert ours.to_bytes() in book.unverified
    assert len(book.unverified) == 64
    assert len(book.got) == 63
    assert book.due(99_000, 1, 1, me=ME) == []  # ours still holds the next range


def test_a_book_stored_before_the_arrival_key_does_not_stall_on_a_received_list() -> None:
    book = _waiting()
    book.receive(_batch(_entries(_chain(1)), first=0, key=HOSTILE), 2000)
    old = canonical_decode(book.encode(), DecodeLimits(max_size=1 << 20, max_depth=4))
    del old["r"]
    restored = AnchorBook.decode(canonical_encode(old))
    assert restored.due(30_000, 1, 5000) == []  # no identity given: every list counts as ours
    assert len(restored.due(30_000, 1, 5000, me=ME)) == 1  # arrival unknown: overdue
