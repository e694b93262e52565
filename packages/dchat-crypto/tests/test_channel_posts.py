"""Broadcast channels' signed records: descriptors, posts, topics."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import canonical_decode, canonical_encode
from dchat_crypto import SigningKey
from dchat_crypto.hazmat import (
    MAX_POST_BODY,
    ChannelDescriptor,
    ChannelPost,
    ChannelRecordError,
    topic_of,
)

KEY = SigningKey.generate()
TOPIC = topic_of(KEY.public_key.to_bytes())


def test_the_topic_known_answer() -> None:
    # docs/protocol.md, section 31: BLAKE2b-256 personalised "dchat-topic".
    expected = "93f3092aee0f5d2fd7c8119f1b0da5e1cffbc3b3f5907324f0fd6d7a6362383e"
    assert topic_of(bytes(range(32))).hex() == expected


def test_a_post_round_trips_and_names_its_publisher() -> None:
    post = ChannelPost.sign(KEY, TOPIC, 3, 1234, b"body")
    again = ChannelPost.from_bytes(post.to_bytes())
    assert again == post
    assert again.publisher == KEY.public_key.to_bytes()
    assert len(post.post_id) == 32


def test_every_field_is_covered_by_the_signature() -> None:
    data = canonical_decode(ChannelPost.sign(KEY, TOPIC, 3, 1234, b"body").to_bytes())
    for name, other in (("tp", bytes(32)), ("q", 4), ("ts", 1), ("body", b"other")):
        changed = canonical_encode({**data, name: other})
        with pytest.raises(ChannelRecordError):
            ChannelPost.from_bytes(changed)


def test_out_of_range_posts_are_refused() -> None:
    with pytest.raises(ChannelRecordError):
        ChannelPost.sign(KEY, TOPIC, 0, 0, b"")  # counters start at 1
    with pytest.raises(ChannelRecordError):
        ChannelPost.sign(KEY, TOPIC, 1, 0, bytes(MAX_POST_BODY + 1))


def test_a_descriptor_lists_publishers_under_the_channel_key() -> None:
    other = SigningKey.generate().public_key.to_bytes()
    desc = ChannelDescriptor.sign(KEY, 2, (other,))
    again = ChannelDescriptor.from_bytes(desc.to_bytes())
    assert again == desc
    assert again.topic == TOPIC
    assert again.allows(other)
    assert again.allows(KEY.public_key.to_bytes())
    assert not again.allows(bytes(32))
    forged = canonical_decode(desc.to_bytes())
    forged["pubs"] = [other, SigningKey.generate().public_key.to_bytes()]
    with pytest.raises(ChannelRecordError):
        ChannelDescriptor.from_bytes(canonical_encode(forged))
    with pytest.raises(ChannelRecordError):
        ChannelDescriptor.sign(KEY, 1, (other, other))  # listed twice
    with pytest.raises(ChannelRecordError):
        ChannelDescriptor.sign(KEY, 1, tuple(bytes([i]) * 32 for i in range(17)))


@given(st.binary(max_size=512))
@settings(max_examples=300)
def test_hostile_bytes_are_a_typed_error(data: bytes) -> None:
    for parse in (ChannelPost.from_bytes, ChannelDescriptor.from_bytes):
        with contextlib.suppress(ChannelRecordError):
            parse(data)
