"""Broadcast channel topics on a relay, sans-IO: who may publish, what a read returns.

Theory of operation
-------------------
A topic is one channel's stream of posts on this relay, named by
:func:`dchat_crypto.topic_of` of the channel's key. The relay stores each post
once, whoever reads it: fan-out is the readers', not the publisher's. What it
checks before storing (:func:`publish`):

* the post parses and its signature verifies by the key it names
  (:class:`~dchat_crypto.ChannelPost`), and it names this topic;
* that key may publish here: it is the channel key itself (its topic is this
  one), or it is listed by the newest descriptor the relay holds for the topic
  (a :class:`~dchat_crypto.ChannelDescriptor` signed by the channel key; a
  request may bring a newer one, which replaces it);
* the publisher's counter ``q`` is not taken by another post (a replayed or
  equivocating counter is refused ``seq_taken``; the same post again is
  answered with its sequence number, ``new`` 0, and stored once).

Refusals are error codes (``bad_post``, ``not_publisher``, ``seq_taken``,
``unsupported`` without a store), which end the link like every error. After
storing, the topic is trimmed to the limits (``topic_quota`` bytes, oldest
evicted first; posts older than ``topic_retention``). Reading
(:func:`read`) needs no identity: posts after a sequence number, oldest
first, at most :data:`MAX_BATCH` and :data:`MAX_BATCH_BYTES`, with the held
descriptor when it is newer than the reader's. :class:`MemoryTopicStore` is
the store of tests and the simulator; the relay node keeps topics in its
database (``dchat_storage``'s topic repository, the same protocol).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from dchat_crypto.hazmat import ChannelDescriptor, ChannelPost, ChannelRecordError, topic_of

from ._relay import MAX_BATCH_BYTES, RelayError
from ._relay_topic_wire import TopicPosts, TopicPublish, TopicPublished, TopicRead

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._relay import RelayMessage
    from ._relay_limits import RelayLimits

__all__ = ("MemoryTopicStore", "TopicStore", "publish", "read")


class TopicStore(Protocol):
    """Durable topics: posts numbered per topic, and each topic's newest descriptor."""

    def topic_publish(
        self, topic: bytes, post_id: bytes, publisher: bytes, pseq: int, post: bytes, now: float
    ) -> tuple[int, bool] | None:
        """Store a post once: ``(seq, created)``; None if ``(publisher, pseq)`` is another's."""
        ...

    def topic_read(self, topic: bytes, after: int, limit: int) -> Sequence[tuple[int, bytes]]:
        """Up to ``limit`` posts with ``seq > after``, oldest first."""
        ...

    def topic_descriptor(self, topic: bytes) -> tuple[int, bytes] | None:
        """The held descriptor's version and bytes, if any."""
        ...

    def topic_set_descriptor(self, topic: bytes, version: int, descriptor: bytes) -> None:
        """Replace the held descriptor."""
        ...

    def topic_trim(self, topic: bytes, max_bytes: int, before: float) -> int:
        """Drop the oldest posts past ``max_bytes`` (0: none) or stored before ``before``."""
        ...

    def topic_total(self) -> int:
        """The post bytes all topics hold (for the relay's disk budget)."""
        ...


def publish(
    store: TopicStore | None, request: TopicPublish, now: float, limits: RelayLimits | None
) -> RelayMessage:
    """The answer to a ``tp_pub`` (stored when it is :class:`TopicPublished` with ``new``)."""
    if store is None:
        return RelayError(request.rid, "unsupported", "this relay hosts no topics")
    try:
        post = ChannelPost.from_bytes(request.post)
        desc = _descriptor(store, request)
    except ChannelRecordError as exc:
        return RelayError(request.rid, "bad_post", str(exc)[:512])
    if post.topic != request.topic:
        return RelayError(request.rid, "bad_post", "the post names another topic")
    allowed = topic_of(post.publisher) == request.topic or (
        desc is not None and desc.allows(post.publisher)
    )
    if not allowed:
        return RelayError(request.rid, "not_publisher", "the key may not publish here")
    held = store.topic_publish(
        request.topic, post.post_id, post.publisher, post.seq, request.post, now
    )
    if held is None:
        return RelayError(request.rid, "seq_taken", "another post has this counter")
    if limits is not None and held[1]:
        retention = limits.topic_retention
        store.topic_trim(request.topic, limits.topic_quota, now - retention if retention else 0.0)
    return TopicPublished(request.rid, held[0], held[1])


def _descriptor(store: TopicStore, request: TopicPublish) -> ChannelDescriptor | None:
    """The topic's newest descriptor, storing the request's if it is newer."""
    held = store.topic_descriptor(request.topic)
    if request.desc is not None:
        offered = ChannelDescriptor.from_bytes(request.desc)
        if offered.topic != request.topic:
            raise ChannelRecordError("the descriptor is another channel's")
        if held is None or offered.version > held[0]:
            store.topic_set_descriptor(request.topic, offered.version, request.desc)
            return offered
    return None if held is None else ChannelDescriptor.from_bytes(held[1])


def read(store: TopicStore | None, request: TopicRead) -> RelayMessage:
    """The answer to a ``tp_read``: posts after ``request.after``, within the batch bounds."""
    if store is None:
        return RelayError(request.rid, "unsupported", "this relay hosts no topics")
    items: list[tuple[int, bytes]] = []
    size = 0
    for seq, post in store.topic_read(request.topic, request.after, request.limit):
        size += len(post) + 16
        if items and size > MAX_BATCH_BYTES:
            break
        items.append((seq, post))
    held = store.topic_descriptor(request.topic)
    desc = held[1] if held is not None and held[0] > request.desc_version else None
    return TopicPosts(request.rid, tuple(items), desc)


@dataclass(slots=True)
class _Topic:
    posts: dict[int, tuple[bytes, bytes, float]] = field(default_factory=dict)  # seq -> id, post, t
    ids: dict[bytes, int] = field(default_factory=dict)  # post id -> seq
    counters: dict[tuple[bytes, int], bytes] = field(default_factory=dict)  # (pk, q) -> post id
    last: int = 0
    held: int = 0
    desc: tuple[int, bytes] | None = None


class MemoryTopicStore:
    """A :class:`TopicStore` in memory (tests, the simulator)."""

    def __init__(self) -> None:
        self._topics: dict[bytes, _Topic] = {}

    def topic_publish(
        self, topic: bytes, post_id: bytes, publisher: bytes, pseq: int, post: bytes, now: float
    ) -> tuple[int, bool] | None:
        t = self._topics.setdefault(topic, _Topic())
        if post_id in t.ids:
            return t.ids[post_id], False
        if t.counters.get((publisher, pseq), post_id) != post_id:
            return None
        t.last += 1
        t.posts[t.last] = (post_id, post, now)
        t.ids[post_id], t.counters[(publisher, pseq)] = t.last, post_id
        t.held += len(post)
        return t.last, True

    def topic_read(self, topic: bytes, after: int, limit: int) -> list[tuple[int, bytes]]:
        t = self._topics.get(topic)
        if t is None:
            return []
        return [(seq, p[1]) for seq, p in sorted(t.posts.items()) if seq > after][:limit]

    def topic_descriptor(self, topic: bytes) -> tuple[int, bytes] | None:
        t = self._topics.get(topic)
        return None if t is None else t.desc

    def topic_set_descriptor(self, topic: bytes, version: int, descriptor: bytes) -> None:
        self._topics.setdefault(topic, _Topic()).desc = (version, descriptor)

    def topic_trim(self, topic: bytes, max_bytes: int, before: float) -> int:
        t = self._topics.get(topic)
        dropped = 0
        for seq in sorted(t.posts) if t is not None else ():
            assert t is not None
            _, post, at = t.posts[seq]
            if not ((max_bytes and t.held > max_bytes) or at < before):
                break
            del t.posts[seq]  # ids and counters stay: a dropped post is not stored again
            t.held -= len(post)
            dropped += 1
        return dropped

    def topic_total(self) -> int:
        return sum(t.held for t in self._topics.values())

    def held_bytes(self, topic: bytes) -> int:
        """The post bytes ``topic`` holds."""
        t = self._topics.get(topic)
        return 0 if t is None else t.held

    def all_posts(self) -> list[bytes]:
        """Every post held, in all topics (tests look at what a relay keeps)."""
        return [p[1] for t in self._topics.values() for p in t.posts.values()]
