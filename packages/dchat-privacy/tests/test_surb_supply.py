"""Reply-block supplies and the owner's persisted book (protocol §45)."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import NodeId, RelayAddress, canonical_encode
from dchat_privacy import (
    InvalidPacketError,
    OnionPrivateKey,
    OnionRelay,
    ReplyBook,
    build_reply_block,
    write_reply,
)
from dchat_privacy.lowlevel import (
    MAX_SUPPLY,
    Deliver,
    ExpiredReplyError,
    Forward,
    MalformedPacketError,
    ReplayedPacketError,
    ReplyGift,
    book_from_bytes,
    book_to_bytes,
    decode_supply,
    encode_supply,
)

FIRST = RelayAddress("127.0.0.1", 7000, NodeId.derive(bytes(32)))


def _keys(seed: int) -> list[OnionPrivateKey]:
    rng = random.Random(seed)
    return [OnionPrivateKey.from_bytes(rng.randbytes(32)) for _ in range(3)]


def _block(seed: int, until: float = 10_000.0) -> tuple[list[OnionRelay], ReplyGift, ReplyBook]:
    keys = _keys(seed)
    route = [(k.public_key, b"hop %d" % n) for n, k in enumerate(keys)]
    block, kept = build_reply_block(route, session_key=OnionPrivateKey.generate(), until=until)
    book = ReplyBook()
    book.add(kept)
    relays = [OnionRelay(k, epoch=1) for k in keys]
    return relays, ReplyGift(FIRST, block, int(until)), book


def _deliver(relays: list[OnionRelay], message: bytes) -> Deliver:
    for relay in relays:
        step = relay.process(message)
        if isinstance(step, Deliver):
            return step
        assert isinstance(step, Forward)
        message = step.message
    raise AssertionError("no delivery")


def test_a_supply_round_trips_and_its_blocks_carry_replies() -> None:
    relays, gift, book = _block(1)
    (received,) = decode_supply(encode_supply([gift]))
    assert received.first_relay == FIRST
    assert received.until == 10_000
    delivered = _deliver(relays, write_reply(received.block, b"receipt"))
    assert book.open(delivered.reply_id, delivered.body, now=5.0) == b"receipt"


def test_a_persisted_book_still_opens_once_and_refuses_the_replay() -> None:
    relays, gift, book = _block(2)
    delivered = _deliver(relays, write_reply(gift.block, b"answer"))
    restored = book_from_bytes(book_to_bytes(book))  # as after a restart
    assert restored.open(delivered.reply_id, delivered.body) == b"answer"
    again = book_from_bytes(book_to_bytes(restored))
    assert len(again) == 0
    with pytest.raises(ReplayedPacketError):
        again.open(delivered.reply_id, delivered.body)


def test_a_reply_under_an_expired_block_is_refused_and_dropped() -> None:
    relays, gift, book = _block(3, until=100.0)
    delivered = _deliver(relays, write_reply(gift.block, b"late"))
    with pytest.raises(ExpiredReplyError):
        book.open(delivered.reply_id, delivered.body, now=100.0)
    assert len(book) == 0
    _, _, other = _block(4, until=100.0)
    assert other.expire(99.0) == 0
    assert other.expire(100.0) == 1


def test_a_tampered_reply_fails_with_one_opaque_error() -> None:
    relays, gift, book = _block(5)
    delivered = _deliver(relays, write_reply(gift.block, b"real"))
    for index in (0, 20, len(delivered.body) - 1):
        forged = bytearray(delivered.body)
        forged[index] ^= 0x40
        with pytest.raises(InvalidPacketError) as caught:
            book.open(delivered.reply_id, bytes(forged))
        assert str(caught.value) == "reply failed authentication"
    assert book.open(delivered.reply_id, delivered.body) == b"real"


def test_a_full_supply_decodes() -> None:
    gifts = [_block(seed)[1] for seed in range(MAX_SUPPLY)]
    assert len(decode_supply(encode_supply(gifts))) == MAX_SUPPLY


def test_supplies_refuse_unpinned_relays_and_too_many_blocks() -> None:
    _, gift, _ = _block(6)
    with pytest.raises(ValueError, match="at most"):
        encode_supply([gift] * (MAX_SUPPLY + 1))
    unpinned = canonical_encode({"v": 1, "s": [["127.0.0.1:7000", gift.block.to_bytes(), 5]]})
    with pytest.raises(MalformedPacketError):
        decode_supply(unpinned)
    many = canonical_encode({"v": 1, "s": [gift.as_list()] * (MAX_SUPPLY + 1)})
    with pytest.raises(MalformedPacketError):
        decode_supply(many)


_ITEM = st.lists(
    st.one_of(st.binary(max_size=40), st.integers(-5, 2**41), st.text(max_size=30), st.none()),
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.builds(lambda s: canonical_encode({"v": 1, "s": s}), st.lists(_ITEM, max_size=3)),
    )
)
def test_random_supplies_give_only_typed_errors(data: bytes) -> None:
    with contextlib.suppress(MalformedPacketError):
        decode_supply(data)


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.builds(
            lambda p, u: canonical_encode({"v": 1, "p": p, "u": u}),
            st.lists(_ITEM, max_size=3),
            st.lists(st.binary(max_size=20), max_size=3),
        ),
    )
)
def test_random_books_give_only_typed_errors(data: bytes) -> None:
    with contextlib.suppress(MalformedPacketError):  # and no other error
        book_from_bytes(data)
