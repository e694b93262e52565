"""Broadcast channels in the messaging engine: links, posting once, receiving and refusing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_crypto import SigningKey
from dchat_crypto.hazmat import ChannelPost
from dchat_messaging.lowlevel import ChannelError, ChannelLink, Channels
from dchat_messaging.testing import MemoryMessageStore

RELAYS = ["127.0.0.1:7001", "127.0.0.1:7002"]


def book() -> tuple[Channels, MemoryMessageStore]:
    store = MemoryMessageStore()
    return Channels(store), store  # type: ignore[arg-type]


def owned(title: str = "news") -> tuple[Channels, MemoryMessageStore, str, str]:
    channels, store = book()
    made = channels.create(title, RELAYS, now=1.0)
    return channels, store, str(made["channel_id"]), str(made["link"])


def deliver(
    source: Channels, target: Channels, cid: str, relay: str = RELAYS[0], seq0: int = 0
) -> int:
    """Hand ``target`` what ``source`` queued for ``relay`` (as that relay would)."""
    queued = [(post, d) for _, post, d, r in source.pending() if r == relay]
    items = [(n, post) for n, (post, _) in enumerate(queued, start=seq0 + 1)]
    desc = next((d for _, d in reversed(queued) if d is not None), None)
    return target.receive(bytes.fromhex(cid), relay, items, desc, now=2.0)


# -- links ---------------------------------------------------------------------------------


def test_a_link_round_trips_and_subscribing_twice_is_one_subscription() -> None:
    _, _, cid, link = owned()
    decoded = ChannelLink.decode(link)
    assert decoded.title == "news"
    assert decoded.relays == tuple(RELAYS)
    reader, _ = book()
    assert reader.subscribe(link, now=1.0) == cid
    assert reader.subscribe(link, now=2.0) == cid
    assert [c["role"] for c in reader.listing()] == ["subscriber"]


@pytest.mark.parametrize(
    "text",
    ["", "dchat-channel:", "dchat-channel:!!!", "https://x", "dchat-channel:oWF2AQ", "x" * 5000],
)
def test_a_malformed_link_is_a_typed_error(text: str) -> None:
    with pytest.raises(ChannelError) as caught:
        ChannelLink.decode(text)
    assert caught.value.code == "bad_link"


@given(st.text(max_size=300))
@settings(max_examples=200)
def test_any_text_decodes_or_is_bad_link(text: str) -> None:
    code = "bad_link"  # or it decoded: a well-formed link
    try:
        ChannelLink.decode("dchat-channel:" + text)
    except ChannelError as exc:
        code = exc.code
    assert code == "bad_link"


# -- posting and receiving -----------------------------------------------------------------


def test_a_post_is_sealed_once_and_queued_once_per_relay() -> None:
    owner, store, cid, _ = owned()
    owner.post(cid, "hello subscribers", now=5.0)
    pending = owner.pending()
    assert [r for _, _, _, r in pending] == RELAYS
    assert len({p for _, p, _, _ in pending}) == 1  # the same bytes for every relay
    assert b"hello subscribers" not in pending[0][1]  # encrypted
    owner.uploaded(pending[0][1], RELAYS[0])
    assert [r for _, _, _, r in owner.pending()] == RELAYS[1:]
    assert store.events[-1][0] == "channel_post"


def test_subscribers_read_posts_once_whichever_relay_brings_them() -> None:
    owner, _, cid, link = owned()
    reader, store = book()
    reader.subscribe(link, now=1.0)
    owner.post(cid, "one", now=5.0)
    owner.post(cid, "two", now=6.0)
    assert deliver(owner, reader, cid, RELAYS[0]) == 2
    assert deliver(owner, reader, cid, RELAYS[1]) == 0  # the same posts through the other relay
    assert [p["text"] for p in reader.posts(cid)] == ["one", "two"]
    assert [e[1]["text"] for e in store.events if e[0] == "channel_post"] == ["one", "two"]
    assert reader.follows()[0][2] == 2  # the cursor moved


def test_gaps_are_seen_and_filled() -> None:
    owner, _, cid, link = owned()
    reader, _ = book()
    reader.subscribe(link, now=1.0)
    for text in ("a", "b", "c"):
        owner.post(cid, text, now=2.0)
    posts = [p for _, p, _, r in owner.pending() if r == RELAYS[0]]
    topic = bytes.fromhex(cid)
    reader.receive(topic, RELAYS[0], [(1, posts[0]), (3, posts[2])], None, now=3.0)
    assert reader.show(cid)["gaps"] == 1
    reader.receive(topic, RELAYS[1], [(2, posts[1])], None, now=3.0)
    assert reader.show(cid)["gaps"] == 0
    assert [p["text"] for p in reader.posts(cid)] == ["a", "c", "b"]


def test_forged_replayed_and_foreign_posts_are_refused_and_counted() -> None:
    owner, _, cid, link = owned()
    reader, _ = book()
    reader.subscribe(link, now=1.0)
    owner.post(cid, "real", now=2.0)
    real = owner.pending()[0][1]
    topic = bytes.fromhex(cid)
    forged = bytearray(real)
    forged[-1] ^= 1
    stranger = ChannelPost.sign(SigningKey.generate(), topic, 2, 0, b"\x00" * 40).to_bytes()
    other_owner, _, other_cid, _ = owned("other")
    other_owner.post(other_cid, "elsewhere", now=2.0)
    foreign = other_owner.pending()[0][1]
    items = [(1, bytes(forged)), (2, stranger), (3, foreign), (4, b"\xa0"), (5, real)]
    assert reader.receive(topic, RELAYS[0], items, None, now=3.0) == 1
    # The same counter with other content: the owner's key signs it, but it replays q=1.
    channel_key = owner.find(cid)[1].owner
    assert channel_key is not None
    replay = ChannelPost.sign(channel_key, topic, 1, 9, ChannelPost.from_bytes(real).body)
    assert reader.receive(topic, RELAYS[0], [(6, replay.to_bytes())], None, now=3.0) == 0
    assert reader.show(cid)["refused"] == 5
    assert [p["text"] for p in reader.posts(cid)] == ["real"]


def test_a_body_moved_under_another_counter_does_not_open() -> None:
    owner, _, cid, link = owned()
    reader, _ = book()
    reader.subscribe(link, now=1.0)
    owner.post(cid, "secret", now=2.0)
    post = ChannelPost.from_bytes(owner.pending()[0][1])
    key = owner.find(cid)[1].owner
    assert key is not None
    moved = ChannelPost.sign(key, post.topic, 7, 0, post.body).to_bytes()
    assert reader.receive(post.topic, RELAYS[0], [(1, moved)], None, now=3.0) == 0
    assert reader.show(cid)["refused"] == 1


def test_only_listed_publishers_post() -> None:
    owner, _, cid, link = owned()
    writer, _ = book()
    writer.subscribe(link, now=1.0)
    with pytest.raises(ChannelError) as caught:
        writer.post(cid, "may I?", now=2.0)
    assert caught.value.code == "not_publisher"
    with pytest.raises(ChannelError) as denied:
        writer.add_publisher(cid, "00" * 32, now=2.0)
    assert denied.value.code == "not_owner"
    assert owner.add_publisher(cid, str(writer.show(cid)["publisher_key"]), now=3.0) == 1
    deliver(owner, writer, cid)  # the notice post carries the descriptor
    assert writer.show(cid)["role"] == "publisher"
    writer.post(cid, "now I may", now=4.0)
    reader, _ = book()
    reader.subscribe(link, now=1.0)
    deliver(owner, reader, cid)
    deliver(writer, reader, cid, seq0=10)
    assert [p["text"] for p in reader.posts(cid)][-1] == "now I may"


def test_unsubscribing_forgets_the_channel() -> None:
    owner, _, cid, _ = owned()
    owner.post(cid, "x", now=2.0)
    owner.unsubscribe(cid, now=3.0)
    assert owner.listing() == []
    assert owner.pending() == []
    with pytest.raises(ChannelError):
        owner.show(cid)


def test_our_other_devices_channels_are_followed_and_dropped() -> None:
    owner, _, cid, link = owned()
    device, _ = book()
    assert owner.links() == {cid: link}
    assert device.synced({cid: link, "ab" * 32: "not a link"}, now=2.0)
    assert [c["role"] for c in device.listing()] == ["subscriber"]  # it reads; it holds no key
    assert not device.synced({cid: link}, now=3.0)  # already followed
    assert device.synced({cid: ""}, now=4.0)
    assert device.listing() == []
    assert not owner.synced({cid: ""}, now=5.0)  # our own channel is never dropped this way
    assert [c["role"] for c in owner.listing()] == ["owner"]
