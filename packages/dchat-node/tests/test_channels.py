"""A broadcast channel across real processes: a publisher and two subscribers on one relay.

Alice creates a channel and posts; bob subscribes with the command line,
carol through the SDK after the first post, and both read every post,
pushed by the relay. The relay is asked one upload
per post whatever the number of subscribers (its counters), holds the posts
once, and holds no plaintext: neither in what it serves to any reader (the
test reads the topic as a stranger) nor in its files. Carol's device linked later
follows the channel through the device sync. Nothing bob's node is
handed names carol: no key, identity or mailbox of hers is in the topic's
bytes. A subscriber cannot post until the owner lists its key; then its post
reaches the others. ``channel_post`` is on the event stream.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from dchat_core import RelayAddress
from dchat_crypto.hazmat import ChannelPost, topic_of
from dchat_network import relay_session
from dchat_node.cli import app
from dchat_sdk import ApiError
from dchat_testing import link_device

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_node import NodeProcess
    from dchat_sdk import RemoteClient

pytestmark = pytest.mark.slow


def _relay_counter(relay: NodeProcess, name: str) -> float:
    headers = {"Authorization": f"Bearer {relay.info['token']}"}
    text = httpx.get(relay.info["url"] + "/metrics", headers=headers, timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return -1.0


def _texts(client: RemoteClient, channel: str) -> list[str]:
    return [p["text"] for p in client.channel_posts(channel)]


def _dchat(node: NodeProcess, *args: str) -> str:
    result = CliRunner().invoke(app, ["--data-dir", str(node.data_dir), "channel", *args])
    assert result.exit_code == 0, result.output
    return result.output


async def _topic_as_stranger(relay: str, topic: bytes) -> tuple[list[bytes], bytes | None]:
    """Every post the relay serves for ``topic`` to anyone (a fresh random key); its descriptor."""
    address = RelayAddress.parse(relay)
    with trio.fail_after(20):
        async with relay_session(address.host, address.port) as session:
            answer = await session.read_topic(topic, 0)
    return [post for _, post in answer.items], answer.desc


def test_a_channel_with_a_publisher_and_two_subscribers(
    make_user: Callable[[str], NodeProcess],
    relay: NodeProcess,
    wait_until: Callable[..., None],
) -> None:
    nodes = [make_user(n) for n in ("alice", "bob", "carol")]
    a, b, c = clients = [node.client() for node in nodes]
    try:
        carol_id = c.create_identity("carol")  # bob reads without one: reading needs none
        a.create_identity("alice")
        made = a.create_channel("news")
        cid, link = made["channel_id"], made["link"]
        assert cid in _dchat(nodes[1], "subscribe", link)
        a.post_to_channel(cid, "first post: the plaintext alpha")
        wait_until(lambda: _texts(b, cid) == ["first post: the plaintext alpha"], timeout=30)
        assert c.subscribe_channel(link) == cid  # a second subscriber, later
        a.post_to_channel(cid, "second post: the plaintext beta")
        want = ["first post: the plaintext alpha", "second post: the plaintext beta"]
        for client in (b, c):
            wait_until(lambda client=client: _texts(client, cid) == want, timeout=30)
        # One upload per post at the one relay, with one subscriber or two; stored once.
        assert _relay_counter(relay, "dchat_relay_channel_uploads_total") == 2
        assert _relay_counter(relay, "dchat_relay_channel_posts_stored_total") == 2

        # What the relay holds and serves is ciphertext, and names no subscriber.
        topic = topic_of(bytes.fromhex(a.channel(cid)["channel_key"]))
        assert topic.hex() == cid
        served, desc = trio.run(_topic_as_stranger, relay.info["link"], topic)
        assert len(served) == 2
        assert desc is None
        carol = c.channel(cid)
        channel_key = bytes.fromhex(carol["channel_key"])
        for post in served:
            assert b"plaintext" not in post
            assert ChannelPost.from_bytes(post).publisher == channel_key  # alice's, signed once
            assert bytes.fromhex(carol["publisher_key"]) not in post
            assert carol_id.encode() not in post
        for path in relay.data_dir.rglob("*"):
            if path.is_file():
                assert b"plaintext alpha" not in path.read_bytes(), path

        # Carol's new device follows her channels (device sync) and reads the posts.
        laptop = make_user("carol-laptop").client()
        clients.append(laptop)
        link_device(c, laptop, wait_until)
        wait_until(lambda: _texts(laptop, cid)[:2] == want, timeout=40)
        assert laptop.channel(cid)["role"] == "subscriber"

        # A subscriber may not post until the owner lists its key.
        with pytest.raises(ApiError) as refused:
            b.post_to_channel(cid, "may I?")
        assert (refused.value.status, refused.value.code) == (403, "not_publisher")
        bob_key = json.loads(_dchat(nodes[1], "show", "news", "--json"))["publisher_key"]
        assert "version 1" in _dchat(nodes[0], "add-publisher", "news", bob_key)
        wait_until(lambda: b.channel(cid)["role"] == "publisher", timeout=30)
        _dchat(nodes[1], "post", cid[:10], "bob publishes too")
        for client in (a, c):
            wait_until(lambda client=client: "bob publishes too" in _texts(client, cid), timeout=30)
        assert carol["gaps"] == 0
        assert c.channel(cid)["refused"] == 0
        kinds = {e.kind for e in c.event_page(after=0, limit=200)[0]}
        assert "channel_post" in kinds
        listed = json.loads(_dchat(nodes[1], "posts", "news", "--json"))
        assert [(p["text"], p["dir"]) for p in listed][-1] == ("bob publishes too", "out")
        with pytest.raises(ApiError) as unknown:
            c.channel("no such channel")
        assert (unknown.value.status, unknown.value.code) == (404, "unknown_channel")
    finally:
        for client in clients:
            client.close()
