"""Relay topics (broadcast channels): who may publish, cursor reads, limits, pushes on a link."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_crypto import SigningKey
from dchat_crypto.hazmat import ChannelDescriptor, ChannelPost, topic_of
from dchat_network import (
    RelayClient,
    RelayError,
    RelayHost,
    RelayLimits,
    RelayPool,
    RelayProtocolError,
    RelayReply,
    RelayServer,
    connect,
    serve_links,
)
from dchat_network.lowlevel import (
    MAX_POST,
    MemoryTopicStore,
    RelayBusy,
    RelayGuard,
    TopicPosts,
    TopicPublish,
    TopicPublished,
    TopicRead,
    TopicSync,
    decode_relay_message,
    encode_relay_message,
)
from dchat_testing import MemoryMailboxStore, hostile_bytes, wait_until_async

CHANNEL = SigningKey.generate()
TOPIC = topic_of(CHANNEL.public_key.to_bytes())
OWNER = bytes(32)  # the reader's link: any mailbox, reading needs none
WAIT = 15


def new_server(store: MemoryTopicStore | None = None, **limits: float) -> RelayServer:
    return RelayServer(
        MemoryMailboxStore(),
        lambda e: None,
        topics=MemoryTopicStore() if store is None else store,
        limits=RelayLimits(pow_max_bits=0, **limits),  # type: ignore[arg-type]
    )


def post(seq: int, body: bytes = b"ciphertext", key: SigningKey = CHANNEL, topic: bytes = TOPIC):
    return ChannelPost.sign(key, topic, seq, 1000 * seq, body).to_bytes()


def ask(server: RelayServer, message: object, now: float = 0.0) -> object:
    data = encode_relay_message(message)  # type: ignore[arg-type]
    return server.handle(OWNER, data, now).message


def publish(server: RelayServer, data: bytes, desc: bytes | None = None, now: float = 0.0):
    return ask(server, TopicPublish(1, TOPIC, data, desc), now)


def read(server: RelayServer, after: int = 0, limit: int = 64, dn: int = 0) -> TopicPosts:
    answer = ask(server, TopicRead(2, TOPIC, after, limit, 0, dn))
    assert isinstance(answer, TopicPosts)
    return answer


def code(answer: object) -> str:
    assert isinstance(answer, RelayError), answer
    return answer.code


# -- the wire ------------------------------------------------------------------------------


def test_topic_messages_round_trip_through_the_codec() -> None:
    for message in (
        TopicPublish(1, TOPIC, b"p"),
        TopicPublish(2, TOPIC, b"p", b"d"),
        TopicPublished(3, 7, True),
        TopicRead(4, TOPIC, 5, 64, 30_000, 2),
        TopicPosts(5, ((1, b"a"), (2, b"b"))),
        TopicPosts(6, (), b"desc"),
    ):
        assert decode_relay_message(encode_relay_message(message)) == message


def test_the_examples_of_the_protocol_document() -> None:
    # docs/protocol.md, section 31, "Relay topics".
    read = "a7 6174 67 74705f72656164 62646e 00 627470 5820 {z} 636d6178 1840 63726964 09"
    read += " 6477616974 194e20 656166746572 00"
    expected = bytes.fromhex(read.format(z="00" * 32).replace(" ", ""))
    assert encode_relay_message(TopicRead(9, bytes(32), 0, 64, 20000, 0)) == expected
    ok = "a4 6174 65 74705f6f6b 636e6577 01 63726964 03 63736571 07"
    assert encode_relay_message(TopicPublished(3, 7, True)) == bytes.fromhex(ok.replace(" ", ""))
    assert topic_of(bytes(range(32))).hex().startswith("93f3092aee0f5d2f")


@given(hostile_bytes())
@settings(max_examples=200)
def test_hostile_bytes_never_crash_the_decoder(data: bytes) -> None:
    with suppress(RelayProtocolError):
        decode_relay_message(data)


def test_an_oversized_post_is_malformed() -> None:
    big = TopicPublish(1, TOPIC, bytes(MAX_POST + 1))
    answer = new_server().handle(OWNER, encode_relay_message(big), 0.0)
    assert code(answer.message) == "malformed"
    assert answer.close


# -- who may publish -----------------------------------------------------------------------


def test_the_channel_key_publishes_and_a_duplicate_is_stored_once() -> None:
    server, first = new_server(), post(1)
    assert publish(server, first) == TopicPublished(1, 1, True)
    assert publish(server, first) == TopicPublished(1, 1, False)
    assert server.posts_stored == 1
    assert server.post_uploads == 2
    assert read(server).items == ((1, first),)


def test_a_forged_or_misdirected_post_is_refused() -> None:
    server, good = new_server(), bytearray(post(1))
    good[-1] ^= 1  # the signature's last byte
    assert code(publish(server, bytes(good))) == "bad_post"
    other = post(1, topic=topic_of(SigningKey.generate().public_key.to_bytes()))
    assert code(publish(server, other)) == "bad_post"  # signed, but for another topic
    assert code(publish(server, b"\xa0")) == "bad_post"
    assert read(server).items == ()


def test_a_stranger_cannot_fill_the_topic() -> None:
    server, stranger = new_server(), SigningKey.generate()
    assert code(publish(server, post(1, key=stranger))) == "not_publisher"
    # Nor with a descriptor of its own making: it is not signed by the channel key.
    own = ChannelDescriptor.sign(stranger, 1, (stranger.public_key.to_bytes(),)).to_bytes()
    assert code(publish(server, post(1, key=stranger), own)) == "bad_post"


def test_a_publisher_listed_by_the_channel_publishes_until_removed() -> None:
    server, alice = new_server(), SigningKey.generate()
    pk = alice.public_key.to_bytes()
    desc = ChannelDescriptor.sign(CHANNEL, 1, (pk,)).to_bytes()
    assert isinstance(publish(server, post(1, key=alice), desc), TopicPublished)
    assert isinstance(publish(server, post(2, key=alice)), TopicPublished)  # the relay keeps it
    assert read(server, dn=0).desc == desc
    assert read(server, dn=1).desc is None
    removed = ChannelDescriptor.sign(CHANNEL, 2, ()).to_bytes()
    assert isinstance(publish(server, post(1), removed), TopicPublished)
    assert code(publish(server, post(3, key=alice), desc)) == "not_publisher"  # older: ignored


def test_a_reused_counter_is_refused() -> None:
    server = new_server()
    publish(server, post(1, b"first"))
    assert code(publish(server, post(1, b"second"))) == "seq_taken"
    assert [p for _, p in read(server).items] == [post(1, b"first")]


# -- reads ---------------------------------------------------------------------------------


def test_reads_page_from_a_cursor_oldest_first() -> None:
    server = new_server()
    posts = [post(q) for q in range(1, 11)]
    for p in posts:
        publish(server, p)
    first = read(server, 0, limit=4).items
    assert [s for s, _ in first] == [1, 2, 3, 4]
    rest = read(server, first[-1][0]).items
    assert [p for _, p in first + rest] == posts


def test_an_empty_read_with_a_wait_is_held_and_resumed() -> None:
    server = new_server()
    reply = server.handle(OWNER, encode_relay_message(TopicRead(3, TOPIC, 0, 8, 1000, 0)), 0.0)
    assert reply.park == TopicRead(3, TOPIC, 0, 8, 1000, 0)
    stored = server.handle(OWNER, encode_relay_message(TopicPublish(4, TOPIC, post(1))), 0.0)
    assert stored.notify == (TOPIC,)
    resumed = server.resume(reply.park)
    assert isinstance(resumed.message, TopicPosts)
    assert len(resumed.message.items) == 1


def test_a_relay_without_topics_says_unsupported() -> None:
    server = RelayServer(MemoryMailboxStore(), lambda e: None)
    assert code(publish(server, post(1))) == "unsupported"


# -- limits --------------------------------------------------------------------------------


def test_the_topic_quota_evicts_the_oldest_posts() -> None:
    store = MemoryTopicStore()
    size = len(post(1, bytes(1000)))
    server = new_server(store, topic_quota=3 * size)
    for q in range(1, 6):
        publish(server, post(q, bytes(1000)))
    assert [s for s, _ in read(server).items] == [3, 4, 5]
    assert store.held_bytes(TOPIC) <= 3 * size
    assert publish(server, post(1, bytes(1000))) == TopicPublished(1, 1, False)  # not again


def test_posts_older_than_the_retention_are_dropped() -> None:
    server = new_server(topic_retention=100.0)
    publish(server, post(1), now=0.0)
    publish(server, post(2), now=150.0)
    assert [s for s, _ in read(server).items] == [2]


def test_publishing_is_a_rate_limited_deposit() -> None:
    limits = RelayLimits(link_puts=1.0, source_puts=100.0, burst=1.0, pow_max_bits=0)
    server = RelayServer(MemoryMailboxStore(), lambda e: None, topics=MemoryTopicStore())
    budget = RelayGuard(limits).budget("10.0.0.1", 0.0)
    first = server.handle(OWNER, encode_relay_message(TopicPublish(1, TOPIC, post(1))), 0.0, budget)
    again = server.handle(OWNER, encode_relay_message(TopicPublish(2, TOPIC, post(2))), 0.0, budget)
    assert isinstance(first.message, TopicPublished)
    assert isinstance(again.message, RelayBusy)
    assert again.message.reason == "rate"
    reads = [encode_relay_message(TopicRead(3 + i, TOPIC, 0, 1, 0, 0)) for i in range(5)]
    assert all(isinstance(server.handle(OWNER, r, 0.0, budget).message, TopicPosts) for r in reads)


def test_posts_count_against_the_relays_disk_budget() -> None:
    store = MemoryTopicStore()
    server = RelayServer(
        MemoryMailboxStore(),
        lambda e: None,
        topics=store,
        limits=RelayLimits(pow_max_bits=0, disk_budget=2500),
        usage=lambda: (0, 0),  # no mail: only the posts fill the budget
    )
    results = [publish(server, post(q, bytes(1000)), now=10.0 * q) for q in range(1, 4)]
    assert isinstance(results[1], TopicPublished)
    assert isinstance(results[2], RelayBusy)
    assert results[2].reason == "disk"
    assert store.topic_total() == 2 * len(post(1, bytes(1000)))


@given(st.lists(st.integers(1, 20), max_size=30))
@settings(max_examples=50, deadline=None)
def test_each_post_is_held_once_in_arrival_order(counters: list[int]) -> None:
    server = new_server()
    for q in counters:
        publish(server, post(q))
    expected = list(dict.fromkeys(counters))
    assert [p for _, p in read(server).items] == [post(q) for q in expected]


# -- pushes on real links ------------------------------------------------------------------


@asynccontextmanager
async def relay(server: RelayServer) -> AsyncIterator[tuple[RelayHost, str, int]]:
    async def run(call: Callable[[], RelayReply]) -> RelayReply:
        return call()

    host = RelayHost(server, run, trio.current_time)
    node_key = SigningKey.generate()
    async with trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):
            h, p = await nursery.start(
                lambda task_status: serve_links(
                    host.handle, "127.0.0.1", 0, node_key=node_key, task_status=task_status
                )
            )
        yield host, h, p
        nursery.cancel_scope.cancel()


async def test_a_post_is_pushed_to_every_held_read_after_one_upload() -> None:
    server = new_server()
    got: list[list[bytes]] = [[], []]

    async def subscriber(i: int, h: str, p: int) -> None:
        link, client = await connect(h, p, node_key=SigningKey.generate()), RelayClient()
        await link.send(client.read_topic(TOPIC, 0, wait_ms=30_000))
        answer = client.receive(await link.receive(timeout=WAIT))
        assert isinstance(answer, TopicPosts)
        got[i] = [p for _, p in answer.items]
        await link.aclose()

    async with relay(server) as (host, h, p), trio.open_nursery() as nursery:
        with trio.fail_after(WAIT):  # far less than the read's 30 s wait: it was pushed
            nursery.start_soon(subscriber, 0, h, p)
            nursery.start_soon(subscriber, 1, h, p)
            await wait_until_async(lambda: host.parked == 2, what="both reads held")
            link, client = await connect(h, p, node_key=SigningKey.generate()), RelayClient()
            await link.send(client.publish(TOPIC, post(1)))
            assert client.receive(await link.receive(timeout=WAIT)) == TopicPublished(1, 1, True)
            await link.aclose()
    assert got == [[post(1)], [post(1)]]
    assert server.posts_stored == 1
    assert server.topic_reads == 2
    assert host.parked == 0


async def _nothing() -> list[tuple[bytes, str, int, int]]:
    return []


async def test_topic_sync_uploads_once_and_keeps_reads_standing() -> None:
    server, pool = new_server(), RelayPool()
    queued: list[tuple[bytes, bytes, bytes | None, str]] = []
    got: dict[int, list[bytes]] = {0: [], 1: []}

    async def pending() -> list[tuple[bytes, bytes, bytes | None, str]]:
        return list(queued)

    async def uploaded(data: bytes, relay: str) -> None:
        queued[:] = [q for q in queued if q[1] != data or q[3] != relay]

    async def receive(topic: bytes, r: str, items: list[tuple[int, bytes]], d: object) -> None:
        got[int(r.startswith("localhost"))].extend(p for _, p in items)

    def follower(relay: str) -> TopicSync:
        async def follows() -> list[tuple[bytes, str, int, int]]:
            return [(TOPIC, relay, 0, 0)]

        nothing = _nothing  # no uploads
        return TopicSync(pool, pending=nothing, uploaded=uploaded, follows=follows, receive=receive)  # type: ignore[arg-type]

    async with relay(server) as (host, h, p), trio.open_nursery() as nursery:
        for name in (h, "localhost"):  # two subscribers (two names for the relay)
            nursery.start_soon(follower(f"{name}:{p}").run)
        with trio.fail_after(WAIT):
            await wait_until_async(lambda: host.parked == 2, what="both reads held")
            queued.append((TOPIC, post(1), None, f"{h}:{p}"))
            publisher = TopicSync(
                pool, pending=pending, uploaded=uploaded, follows=_nothing, receive=receive
            )
            nursery.start_soon(publisher.run)
            await wait_until_async(lambda: got[0] and got[1], what="the post pushed to both")
        nursery.cancel_scope.cancel()
    await pool.aclose()
    assert got == {0: [post(1)], 1: [post(1)]}
    assert publisher.uploads == 1
    assert not queued
    assert server.posts_stored == 1
