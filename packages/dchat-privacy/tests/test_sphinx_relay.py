"""Three relays in memory: first messages, replays, key rotation, reply blocks end to end."""

from __future__ import annotations

import contextlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_privacy import (
    InvalidPacketError,
    OnionPrivateKey,
    OnionPublicKey,
    OnionRelay,
    ReplyBook,
    SphinxError,
    build_message,
    build_reply_block,
    write_reply,
)
from dchat_privacy.lowlevel import (
    BODY_SIZE,
    MESSAGE_SIZE,
    PACKET_SIZE,
    REPLY_BLOCK_SIZE,
    Deliver,
    Forward,
    MalformedPacketError,
    ReplayCache,
    ReplayCacheFullError,
    ReplayedPacketError,
    ReplyBlock,
    SphinxUsageError,
    read_body,
)


def _keys(seed: int, count: int) -> list[OnionPrivateKey]:
    rng = random.Random(seed)
    return [OnionPrivateKey.from_bytes(rng.randbytes(32)) for _ in range(count)]


def _relays(seed: int = 1) -> list[OnionRelay]:
    return [OnionRelay(key, epoch=1) for key in _keys(seed, 3)]


def _route(seed: int = 1, last: bytes = b"mailbox") -> list[tuple[OnionPublicKey, bytes]]:
    keys = _keys(seed, 3)
    return [
        (keys[0].public_key, b"to relay 1"),
        (keys[1].public_key, b"to relay 2"),
        (keys[2].public_key, last),
    ]


def _travel(relays: list[OnionRelay], message: bytes) -> tuple[Deliver, list[bytes]]:
    """Run ``message`` through the relays; also return what each relay received."""
    seen = []
    for relay in relays:
        seen.append(message)
        action = relay.process(message)
        if isinstance(action, Deliver):
            return action, seen
        assert isinstance(action, Forward)
        message = action.message
    raise AssertionError("the route did not end")


def test_a_first_message_crosses_three_relays() -> None:
    relays = _relays()
    message, _ = build_message(_route(), b"sealed envelope", session_key=OnionPrivateKey.generate())
    delivered, seen = _travel(relays, message)
    assert delivered.payload == b"mailbox"
    assert read_body(delivered.body) == b"sealed envelope"
    assert {len(m) for m in seen} == {MESSAGE_SIZE}
    # no two relays see a common header or body: nothing to match them by
    bodies = [m[PACKET_SIZE:] for m in seen] + [delivered.body]
    headers = [m[:PACKET_SIZE] for m in seen]
    assert len(set(bodies)) == 4
    assert len(set(headers)) == 3


def test_a_replayed_message_is_refused_and_the_relay_keeps_serving() -> None:
    relays = _relays()
    message, _ = build_message(_route(), b"x", session_key=OnionPrivateKey.generate())
    first = relays[0].process(message)
    with pytest.raises(ReplayedPacketError):
        relays[0].process(message)
    other, _ = build_message(_route(), b"y", session_key=OnionPrivateKey.generate())
    assert isinstance(relays[0].process(other), Forward)
    assert isinstance(first, Forward)
    relays[1].process(first.message)
    with pytest.raises(ReplayedPacketError):
        relays[1].process(first.message)


def test_rotation_keeps_one_previous_key_and_its_replay_memory() -> None:
    relay = OnionRelay(_keys(2, 1)[0], epoch=1)
    old_key = _keys(2, 1)[0]
    message, _ = build_message(
        [(old_key.public_key, b"m")], b"x", session_key=OnionPrivateKey.generate()
    )
    relay.rotate(OnionPrivateKey.generate(), epoch=2)
    assert isinstance(relay.process(message), Deliver)  # previous key still peels
    with pytest.raises(ReplayedPacketError):
        relay.process(message)
    relay.rotate(OnionPrivateKey.generate(), epoch=3)
    with pytest.raises(InvalidPacketError):  # the epoch-1 key is gone, so is the packet
        relay.process(message)
    with pytest.raises(SphinxUsageError):
        relay.rotate(OnionPrivateKey.generate(), epoch=3)


def test_a_full_replay_cache_refuses_instead_of_forgetting() -> None:
    cache = ReplayCache(epoch=7, max_entries=2)
    assert not cache.seen(7, bytes(16))
    assert not cache.seen(7, b"\x01" * 16)
    assert cache.seen(7, bytes(16))
    with pytest.raises(ReplayCacheFullError):
        cache.seen(7, b"\x02" * 16)
    cache.rotate(8)
    assert not cache.seen(8, b"\x02" * 16)
    assert cache.seen(7, bytes(16))
    cache.rotate(9)
    assert cache.epochs == (8, 9)
    with pytest.raises(SphinxUsageError):
        cache.seen(7, bytes(16))
    assert len(cache) == 1


def test_a_relay_refuses_wrong_sizes_and_foreign_packets() -> None:
    relays = _relays()
    message, _ = build_message(_route(), b"x", session_key=OnionPrivateKey.generate())
    with pytest.raises(MalformedPacketError):
        relays[0].process(message[:-1])
    with pytest.raises(InvalidPacketError):
        relays[1].process(message)  # built for relay 0
    tampered = bytearray(message)
    tampered[700] ^= 1
    with pytest.raises(InvalidPacketError):
        relays[0].process(bytes(tampered))
    assert isinstance(relays[0].process(message), Forward)  # the forgery did not use it up


def test_a_reply_block_carries_an_answer_back_across_three_relays() -> None:
    alice_relays = _relays(seed=9)
    block, keys = build_reply_block(
        _route(seed=9, last=b"alice's mailbox"),
        session_key=OnionPrivateKey.generate(),
    )
    book = ReplyBook()
    book.add(keys)
    # Bob receives the block as bytes: the first hop's key and an opaque header
    received = ReplyBlock.from_bytes(block.to_bytes())
    assert len(block.to_bytes()) == REPLY_BLOCK_SIZE
    assert received.first_hop == _keys(9, 1)[0].public_key
    reply = write_reply(received, b"hello alice")
    assert len(reply) == MESSAGE_SIZE
    delivered, seen = _travel(alice_relays, reply)
    assert delivered.payload == b"alice's mailbox"
    assert b"hello alice" not in b"".join(seen) + delivered.body
    assert book.open(delivered.reply_id, delivered.body) == b"hello alice"
    assert len(book) == 0
    with pytest.raises(ReplayedPacketError):
        book.open(delivered.reply_id, delivered.body)


def test_a_reply_block_is_single_use_at_the_relays() -> None:
    relays = _relays(seed=10)
    block, _ = build_reply_block(_route(seed=10), session_key=OnionPrivateKey.generate())
    assert write_reply(block, b"same")[PACKET_SIZE:] != write_reply(block, b"same")[PACKET_SIZE:]
    _travel(relays, write_reply(block, b"first"))
    with pytest.raises(ReplayedPacketError):
        relays[0].process(write_reply(block, b"second"))


def test_a_forged_reply_does_not_burn_the_block() -> None:
    relays = _relays(seed=11)
    block, keys = build_reply_block(_route(seed=11), session_key=OnionPrivateKey.generate())
    book = ReplyBook()
    book.add(keys)
    delivered, _ = _travel(relays, write_reply(block, b"real"))
    forged = bytearray(delivered.body)
    forged[10] ^= 1
    with pytest.raises(InvalidPacketError):
        book.open(delivered.reply_id, bytes(forged))
    with pytest.raises(InvalidPacketError):
        book.open(bytes(16), delivered.body)
    assert book.open(delivered.reply_id, delivered.body) == b"real"


def test_sizes_are_usage_errors() -> None:
    with pytest.raises(SphinxUsageError):
        build_message(_route(), bytes(BODY_SIZE), session_key=OnionPrivateKey.generate())
    block, _ = build_reply_block(_route(), session_key=OnionPrivateKey.generate())
    with pytest.raises(SphinxUsageError):
        write_reply(block, bytes(BODY_SIZE - 31))
    with pytest.raises(SphinxUsageError):
        build_reply_block(_route(), session_key=OnionPrivateKey.generate(), reply_key=b"k")


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=REPLY_BLOCK_SIZE + 2))
def test_random_reply_blocks_give_only_typed_errors(data: bytes) -> None:
    with pytest.raises(SphinxError):
        ReplyBlock.from_bytes(data)


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=BODY_SIZE, max_size=BODY_SIZE), st.binary(min_size=16, max_size=16))
def test_random_reply_bodies_give_only_typed_errors(body: bytes, reply_id: bytes) -> None:
    _, keys = build_reply_block(_route(seed=12), session_key=_keys(13, 1)[0])
    book = ReplyBook()
    book.add(keys)
    with pytest.raises(SphinxError):
        book.open(reply_id, body)
    with pytest.raises(SphinxError):
        book.open(keys.reply_id, body)
    with contextlib.suppress(MalformedPacketError):  # all zeros is a valid empty body
        assert len(read_body(body)) < BODY_SIZE


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=MESSAGE_SIZE + 1))
def test_random_messages_give_only_typed_errors(data: bytes) -> None:
    relay = OnionRelay(_keys(14, 1)[0], epoch=1)
    with pytest.raises(SphinxError):
        relay.process(data)
